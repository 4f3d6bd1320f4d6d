// The queue page's live updates and bulk bar: a small script, no framework (CSP script-src 'self').
//
// The base layout re-fetches the whole #live part on every `changed` message
// of the /live stream. Here that request is cancelled and, instead, the same
// page (same filters and page number) is fetched and only what changed is
// patched in: rows still pending and unchanged (same data-stamp) are left
// alone, so their ticked boxes, open diffs and typed text stay; a row that
// left the pending state stays where it is, greyed, saying what became of it;
// new rows are inserted where the server puts them; counts, pagers and the
// recent list are replaced unless they hold the focus. The element at the
// top of the viewport is measured before and after, and the page scrolled by
// the difference, so nothing moves under the operator's eyes. On the
// delete-confirmation page the refresh is just cancelled (its POST re-checks).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var list = document.getElementById("pending-list");
  var busy = false;
  var again = false;
  var carry = 0;
  document.documentElement.classList.add("script-anchored");

  live.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt !== live) return;
    event.preventDefault();
    if (list) refresh();
  });

  // ---- the bulk bar -------------------------------------------------------
  var bulk = document.getElementById("bulk");
  var count = document.getElementById("picked-count");
  var pickAll = document.getElementById("pick-all");

  function boxes() {
    return list ? list.querySelectorAll("article:not(.gone) input.pick") : [];
  }

  function updateBar() {
    if (!bulk) return;
    var n = 0;
    boxes().forEach(function (box) { if (box.checked) n += 1; });
    count.textContent = n ? n + " selected" : "Tick rows to approve or reject them together";
    bulk.querySelector("[data-testid=bulk-approve]").textContent =
      n ? "Approve " + n + " selected" : "Approve selected";
    bulk.querySelector("[data-testid=bulk-reject]").textContent =
      n ? "Reject " + n + " selected" : "Reject selected";
    bulk.classList.toggle("active", n > 0);
    if (pickAll) pickAll.checked = n > 0 && n === boxes().length;
  }

  if (bulk && list) {
    if (pickAll) {
      pickAll.parentElement.hidden = false;
      pickAll.addEventListener("change", function () {
        boxes().forEach(function (box) { box.checked = pickAll.checked; });
        updateBar();
      });
    }
    list.addEventListener("change", function (event) {
      if (event.target.classList.contains("pick")) updateBar();
    });
    updateBar();
  }

  // ---- live patching -------------------------------------------------------
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    patchOnce().catch(function () { /* offline for a moment: the next message retries */ })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  function anchorOf() {
    var rows = list.children;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getBoundingClientRect().bottom > 0) return rows[i];
    }
    return list;
  }

  function holdsFocus(el) {
    return el.contains(document.activeElement) && document.activeElement !== document.body;
  }

  function patchOnce() {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok || response.redirected) return null; // logged out: leave the page be
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("pending-list");
        if (!fresh) return;
        var anchor = anchorOf();
        var before = anchor.getBoundingClientRect().top;
        patchRows(fresh, doc);
        ["pending-total", "pager-top", "pager-bottom", "recent"].forEach(function (id) {
          var mine = document.getElementById(id);
          var theirs = doc.getElementById(id);
          if (mine && theirs && !holdsFocus(mine) && mine.innerHTML !== theirs.innerHTML) {
            mine.replaceChildren.apply(mine, Array.from(theirs.childNodes).map(adopt));
          }
        });
        if (anchor.isConnected) {
          // Scroll offsets snap to whole pixels while rows are fractionally tall: carry the
          // rest to the next patch so a burst of updates does not add up to a visible drift.
          var wanted = anchor.getBoundingClientRect().top - before + carry;
          var y = window.scrollY;
          if (wanted) window.scrollBy(0, wanted);
          carry = wanted - (window.scrollY - y);
        }
        updateBar();
        document.dispatchEvent(new CustomEvent("homelab:patched")); // app.js re-words times
      });
  }

  function adopt(node) {
    return document.importNode(node, true);
  }

  function rowsById(container) {
    var out = new Map();
    container.querySelectorAll(":scope > article[data-action]").forEach(function (row) {
      out.set(row.dataset.action, row);
    });
    return out;
  }

  function stateIn(doc, id) {
    var cell = doc.querySelector('#recent tr[data-action="' + id + '"] .badge');
    return cell ? cell.textContent.trim() : "";
  }

  function markGone(row, doc) {
    var state = stateIn(doc, row.dataset.action);
    var note = row.querySelector("[data-testid=decided]");
    note.textContent = state ? "No longer pending: " + state + "." : "No longer pending.";
    note.hidden = false;
    row.classList.add("gone");
    var box = row.querySelector("input.pick");
    if (box) {
      box.checked = false; // a decided row is never part of a bulk decision
      if (box !== document.activeElement) box.disabled = true;
    }
    var decide = row.querySelector(".decide");
    if (decide && !holdsFocus(decide)) decide.hidden = true;
  }

  function patchRows(fresh, doc) {
    var mine = rowsById(list);
    var theirs = rowsById(fresh);
    mine.forEach(function (row, id) {
      if (!theirs.has(id) && !row.classList.contains("gone")) markGone(row, doc);
    });
    var previous = null;
    theirs.forEach(function (row, id) {
      var current = mine.get(id);
      if (current && current.dataset.stamp !== row.dataset.stamp && !holdsFocus(current)) {
        var replacement = adopt(row);
        var box = current.querySelector("input.pick");
        if (box && box.checked) replacement.querySelector("input.pick").checked = true;
        current.replaceWith(replacement);
        current = replacement;
      } else if (!current) {
        current = adopt(row);
        if (previous) previous.after(current);
        else list.prepend(current);
      }
      previous = current;
    });
    var empty = list.querySelector(":scope > p.empty");
    if (empty && theirs.size) empty.remove();
    if (!list.querySelector(":scope > article") && !theirs.size) {
      var freshEmpty = fresh.querySelector(":scope > p.empty");
      if (freshEmpty && !empty) list.append(adopt(freshEmpty));
    }
  }
})();
