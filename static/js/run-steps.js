/* The run page's steps, grouped by phase (templates/ops/runs/detail.html):
 * each group's counts by state, a group opened when one of its steps fails, runs or
 * waits and folded once all went well (unless the operator opened or closed it), and
 * the filter by state and target. run-live.js fires "slipway:steps" after each update.
 */
(function () {
  "use strict";
  var root = document.getElementById("run-live");
  if (!root) return;
  var groups = root.querySelector("[data-steps]");
  var form = root.querySelector("[data-step-filter]");
  if (!groups || !form) return;
  var stateSel = form.querySelector("[data-filter-state]");
  var targetIn = form.querySelector("[data-filter-target]");
  var shown = form.querySelector("[data-filter-shown]");
  var ATTENTION = { failed: 1, running: 1, waiting: 1 };
  var LABELS = {};
  Array.prototype.forEach.call(stateSel.options, function (o) { if (o.value) LABELS[o.value] = o.textContent.toLowerCase(); });
  var ORDER = Object.keys(LABELS);

  function rows(group) { return group.querySelectorAll("tr[data-step-id]"); }

  function counts(group) {
    var n = {};
    rows(group).forEach(function (r) { n[r.dataset.state] = (n[r.dataset.state] || 0) + 1; });
    var box = group.querySelector("[data-group-counts]");
    box.textContent = "";
    ORDER.forEach(function (st) {
      if (!n[st]) return;
      var b = document.createElement("span");
      b.className = "badge " + st;
      b.textContent = n[st] + " " + LABELS[st];
      box.append(b, " ");
    });
    return n;
  }

  function matches(row, st, text) {
    if (st && row.dataset.state !== st) return false;
    if (!text) return true;
    var target = (row.querySelector("[data-f=target]") || {}).textContent || "";
    return target.toLowerCase().indexOf(text) !== -1;
  }

  function setOpen(group, open) {
    if (group.open === open) return;
    group.dataset.programmatic = "1";
    group.open = open;
  }

  function refresh() {
    var st = stateSel.value, text = targetIn.value.trim().toLowerCase(), filtering = !!(st || text);
    var total = 0, visible = 0;
    groups.querySelectorAll("details[data-phase]").forEach(function (group) {
      var n = counts(group), attention = Object.keys(n).some(function (k) { return ATTENTION[k]; });
      var hits = 0;
      rows(group).forEach(function (r) {
        var ok = matches(r, st, text);
        r.hidden = !ok;
        total += 1;
        if (ok) { hits += 1; visible += 1; }
      });
      group.hidden = filtering && hits === 0;
      if (filtering) setOpen(group, hits > 0);
      else if (group.dataset.touched !== "1") setOpen(group, attention);
    });
    shown.hidden = !filtering;
    shown.textContent = visible + " of " + total + " steps shown";
    var count = root.querySelector("[data-steps-total]");   // steps appear as the run plans its phases
    if (count) count.textContent = String(total);
  }

  groups.addEventListener("toggle", function (ev) {
    var g = ev.target;
    if (g.dataset.programmatic === "1") { g.dataset.programmatic = ""; return; }
    g.dataset.touched = "1";   // the operator opened or closed it: leave it so
  }, true);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); refresh(); });
  stateSel.addEventListener("change", refresh);
  targetIn.addEventListener("input", refresh);
  root.addEventListener("slipway:steps", refresh);
  refresh();
})();
