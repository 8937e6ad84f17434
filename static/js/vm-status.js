/* My VMs: the live status dots. Every few seconds asks /vms/status/?id=... for the VMs on the
 * page (the server answers only for VMs the user may see) and updates each dot and its text. */
(function () {
  "use strict";
  var table = document.querySelector("[data-vm-list]");
  if (!table) return;
  var live = document.querySelector("[data-live-status]");
  var ids = Array.prototype.map.call(table.querySelectorAll("[data-vm-status]"), function (el) { return el.dataset.vmStatus; });
  if (!ids.length) return;
  var url = table.dataset.statusUrl + "?" + ids.map(function (i) { return "id=" + encodeURIComponent(i); }).join("&");

  function setLive(text, cls) { if (live) { live.textContent = text; live.className = "live-status " + cls; } }

  function apply(vms) {
    Object.keys(vms).forEach(function (id) {
      var dot = table.querySelector('[data-vm-status="' + id + '"]');
      var text = table.querySelector('[data-vm-status-text="' + id + '"]');
      if (dot) dot.className = "dot " + vms[id];
      if (text) text.textContent = vms[id] || "unknown";
    });
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) { apply(data.vms || {}); setLive("status: live", "ok"); })
      .catch(function () { setLive("status: reconnecting…", "warn"); });
  }
  poll();
  setInterval(poll, 5000);
})();
