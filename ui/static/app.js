// Every signed-in page: relative times kept fresh and the "connection lost" banner.
// A small script, no framework (CSP script-src 'self'; nothing inline).
//
// Relative times: every element with data-ago="ISO time" shows "3 min ago" (the
// server renders the same words; reconciler/api/event_format.py `relative`), its
// <time> carries the absolute date-time in datetime= and title= (hover). They are
// re-worded every 20 s and after each live swap.
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

  reword();
  window.setInterval(reword, 20000);
  document.addEventListener("htmx:afterSettle", function () { reword(); });

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
