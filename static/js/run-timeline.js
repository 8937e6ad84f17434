/* The patch run's timeline (templates/ops/runs/_timeline.html) grows live: when run-live.js has
 * applied new step states ("slipway:steps") or the run changed, fetch the server's SVG again, at
 * most once a second, and once more a second later so the growing segment keeps moving. */
(function () {
  var root = document.getElementById("run-live");
  var box = document.querySelector("[data-timeline-url]");
  if (!root || !box) return;
  var busy = false, again = false, tick = null;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(box.dataset.timelineUrl, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () { /* the next change tries again */ })
      .finally(function () {
        setTimeout(function () { busy = false; if (again) { again = false; refresh(); } }, 1000);
      });
  }
  root.addEventListener("slipway:steps", refresh);
  tick = setInterval(function () {
    if (root.dataset.runActive === "true") refresh(); else { clearInterval(tick); refresh(); }
  }, 3000);
})();
