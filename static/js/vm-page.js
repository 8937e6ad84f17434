/* A VM's page: when the run acting on the VM ends (run-live.js sets data-run-active="false" on
 * #run-live), reload the checkpoints section and the status badge, so the new checkpoint shows
 * without reloading the page. */
(function () {
  "use strict";
  var live = document.getElementById("run-live");
  if (!live) return;

  function reloadCheckpoints() {
    var section = document.getElementById("vm-checkpoints");
    if (!section) return;
    fetch(section.dataset.checkpointsUrl, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        var tpl = document.createElement("template");
        tpl.innerHTML = html.trim();
        var fresh = tpl.content.firstElementChild;
        if (fresh) section.replaceWith(fresh);
        var head = document.querySelector("[data-vm-status-badge]");
        var status = fresh && fresh.dataset.vmStatus;
        if (head && status) { head.textContent = status; head.className = "badge big " + status; }
      })
      .catch(function () { /* the next visit shows it */ });
  }

  var ended = live.dataset.runActive !== "true";
  new MutationObserver(function () {
    var nowEnded = live.dataset.runActive !== "true";
    if (nowEnded && !ended) reloadCheckpoints();
    ended = nowEnded;
  }).observe(live, { attributes: true, attributeFilter: ["data-run-active"] });
})();
