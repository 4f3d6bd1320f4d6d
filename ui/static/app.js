// Every signed-in page: relative times kept fresh and the "connection lost" banner.
// A small script, no framework (CSP script-src 'self'; nothing inline).
//
// Relative times: every element with data-ago="ISO time" shows "3 min ago" (the
// server renders the same words; reconciler/api/event_format.py `relative`), its
// <time> carries the absolute date-time in datetime= and title= (hover). They are
// re-worded every 20 s and after each live swap.
//
// A <pre> that scrolls sideways gets tabindex=0 (keyboard users can scroll it).
//
// The live stream: the base layout listens to /live (htmx's SSE extension, which
// reconnects by itself). When the stream errors, the banner #conn-lost says so; when
// it opens again the banner goes and the page's live part is refreshed once, so what
// changed while it was away shows up.
(function () {
  "use strict";

  function relative(seconds) {
    var ago = seconds >= 0;
    var s = Math.abs(seconds);
    if (s < 5) return "just now";
    var text;
    if (s < 60) text = Math.round(s) + " s";
    else if (s < 3600) text = Math.round(s / 60) + " min";
    else if (s < 86400) text = Math.round(s / 3600) + " h";
    else text = Math.round(s / 86400) + " d";
    return ago ? text + " ago" : "in " + text;
  }

  function reword(root) {
    var now = Date.now();
    (root || document).querySelectorAll("[data-ago]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-ago"));
      if (isNaN(at)) return;
      var words = relative((now - at) / 1000);
      if (el.textContent !== words) el.textContent = words;
    });
  }

  // A block that scrolls sideways (a long diff line, a YAML document) must be reachable
  // by keyboard to be scrolled: it gets a tab stop while, and only while, it overflows.
  function tabStop(pre) {
    var scrolls = pre.scrollWidth > pre.clientWidth || pre.scrollHeight > pre.clientHeight;
    if (scrolls && pre.tabIndex < 0) pre.tabIndex = 0;
    else if (!scrolls && pre.getAttribute("tabindex") === "0") pre.removeAttribute("tabindex");
  }

  function scrollables() {
    document.querySelectorAll("pre").forEach(tabStop);
  }

  // Blocks swapped in live (htmx, queue.js) get theirs as soon as they are in the page.
  new MutationObserver(function (records) {
    records.forEach(function (record) {
      record.addedNodes.forEach(function (node) {
        if (node.nodeType !== 1) return;
        if (node.tagName === "PRE") tabStop(node);
        else node.querySelectorAll("pre").forEach(tabStop);
      });
    });
  }).observe(document.body, { childList: true, subtree: true });

  function refreshed() { reword(); scrollables(); }

  refreshed();
  window.setInterval(reword, 20000);
  document.addEventListener("htmx:afterSettle", refreshed);
  document.addEventListener("homelab:patched", refreshed); // queue.js patched rows in
  document.addEventListener("toggle", scrollables, true); // a <details> diff opened
  window.addEventListener("resize", scrollables);

  // ---- the live stream's banner -------------------------------------------
  var banner = document.getElementById("conn-lost");
  var lost = false;
  if (!banner) return;

  document.addEventListener("htmx:sseError", function () {
    lost = true;
    banner.hidden = false;
  });
  document.addEventListener("htmx:sseOpen", function () {
    banner.hidden = true;
    if (!lost) return;
    lost = false;
    var live = document.getElementById("live");
    // What changed while the stream was away: the same refresh a `changed` message makes.
    if (live && window.htmx) window.htmx.trigger(live, "sse:changed");
  });
})();
