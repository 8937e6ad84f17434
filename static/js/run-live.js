/* Live run page: a small WebSocket client for ops/consumers.py.
 *
 * The page is rendered with the log up to data-last-seq; this script connects to
 * ws/runs/<id>/?after=<last seq rendered>, appends each event once (by seq),
 * updates the progress bar, the run state and the step rows, and reconnects with
 * backoff from the last seq it rendered. While the socket is down it polls the
 * JSON events endpoint (same frames), so nothing is missed and nothing doubled.
 */
(function () {
  "use strict";
  var root = document.getElementById("run-live");
  if (!root) return;

  var lastSeq = parseInt(root.dataset.lastSeq || "0", 10) || 0;
  var log = root.querySelector("[data-log]");
  var statusEl = root.querySelector("[data-live-status]");
  var stepBody = root.querySelector("[data-steps]");
  var stepTpl = document.getElementById("step-row-tpl");
  var actionsTpl = document.getElementById("step-actions-tpl");
  var ws = null, attempt = 0, stopped = false, pollTimer = null, reconnectTimer = null;
  var runActive = root.dataset.runActive === "true";

  function setStatus(text, cls) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.className = "live-status " + (cls || "");
  }

  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().substring(11, 19);
  }

  function nearBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 40; }

  function addEvents(events) {
    var stick = nearBottom(log);
    var frag = document.createDocumentFragment();
    events.forEach(function (e) {
      if (e.seq <= lastSeq) return;  // already rendered: never twice
      var li = document.createElement("li");
      li.className = "lvl-" + e.level;
      li.dataset.seq = e.seq;
      var seq = document.createElement("span"); seq.className = "seq"; seq.textContent = "#" + e.seq;
      var t = document.createElement("time"); t.textContent = fmtTime(e.at); t.dateTime = e.at || "";
      var msg = document.createElement("span"); msg.className = "msg"; msg.textContent = e.message;
      li.append(seq, " ", t, " ", msg);
      frag.appendChild(li);
      lastSeq = e.seq;
      root.dataset.lastSeq = String(lastSeq);
      if (e.progress !== null && e.progress !== undefined) setProgress(e.progress);
    });
    var empty = log.querySelector(".empty");
    if (empty && frag.childNodes.length) empty.remove();
    log.appendChild(frag);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function setProgress(pct) {
    pct = Math.max(0, Math.min(100, pct | 0));
    root.querySelectorAll("[data-run-bar]").forEach(function (el) { el.style.width = pct + "%"; });
    root.querySelectorAll("[data-run-progress]").forEach(function (el) { el.textContent = pct + "%"; });
    var bar = root.querySelector("[role=progressbar]");
    if (bar) bar.setAttribute("aria-valuenow", String(pct));
  }

  function setBadge(el, state, label) {
    if (!el) return;
    el.className = "badge " + state;
    el.textContent = label || state;
  }

  function updateRun(run) {
    setBadge(root.querySelector("[data-run-state]"), run.state, run.state_label);
    setProgress(run.state === "succeeded" ? 100 : run.progress);
    var bigBar = root.querySelector("[data-run-progressbar]");
    if (bigBar) bigBar.className = "progress big " + run.state;   // red when failed, grey when cancelled
    var phase = root.querySelector("[data-run-phase]");
    if (phase) phase.textContent = run.phase_label || run.phase || "—";
    var msg = root.querySelector("[data-run-message]");
    if (msg) { msg.textContent = run.message || ""; msg.hidden = !run.message; msg.className = "run-message " + run.state; }
    var finished = root.querySelector("[data-run-finished]");
    if (finished && run.finished_at) finished.textContent = run.finished_at.replace("T", " ").substring(0, 19) + " UTC";
    runActive = !!run.is_active;
    root.dataset.runActive = String(runActive);
    if (!runActive && statusEl && statusEl.classList.contains("ok")) setStatus("finished: the page shows the whole run", "done");
    root.dataset.currentState = run.state;
    root.querySelectorAll("tr[data-step-id]").forEach(syncActions);
    syncJump();
    root.querySelectorAll("[data-when-active]").forEach(function (el) { el.hidden = !runActive; });
    // a run being cancelled or aborted offers no second cancel; retry only for a run waiting on a server
    var stopping = !!(run.cancel_requested || run.abort_requested);
    root.querySelectorAll("[data-when-cancellable]").forEach(function (el) { el.hidden = !runActive || stopping; });
    root.querySelectorAll("[data-when-abortable]").forEach(function (el) { el.hidden = !runActive || !!run.abort_requested; });
    var paused = root.querySelector("[data-run-paused]");
    if (paused && run.state !== "paused") paused.hidden = true;
    root.querySelectorAll("[data-when-blocked]").forEach(function (el) {
      el.hidden = run.state !== "waiting" || !!root.querySelector('tr[data-state="failed"], tr[data-state="waiting"]');
    });
    root.querySelectorAll("[data-when-ended]").forEach(function (el) { el.hidden = runActive; });
    if (!runActive && ws === null) stopPolling();
  }

  // Retry / skip / abort only while the run waits for the operator: on a finished run the
  // service refuses them, so offering them is a dead end.
  function syncActions(row) {
    var cell = row.querySelector("[data-f=actions]");
    if (!cell || !actionsTpl) return;
    var st = row.dataset.state;
    var wants = root.dataset.currentState === "waiting" && (st === "failed" || st === "waiting");
    if (wants && !cell.firstElementChild) {
      var node = actionsTpl.content.firstElementChild.cloneNode(true);
      node.querySelectorAll("form").forEach(function (f) {
        f.action = f.getAttribute("action").replace("999999999", String(row.dataset.stepId));
      });
      cell.appendChild(node);
    } else if (!wants) {
      cell.textContent = "";
    }
  }

  function stepRow(step) {
    var row = document.getElementById("step-" + step.id);
    if (row || !stepTpl || !stepBody) return row;
    row = stepTpl.content.firstElementChild.cloneNode(true);
    row.id = "step-" + step.id;
    row.dataset.stepId = step.id;
    row.dataset.index = step.index;
    var body = phaseBody(step.phase);
    var before = null;
    body.querySelectorAll("tr[data-step-id]").forEach(function (r) {
      if (!before && parseInt(r.dataset.index, 10) > step.index) before = r;
    });
    body.insertBefore(row, before);
    var empty = stepBody.querySelector(".empty");
    if (empty) empty.remove();
    return row;
  }

  // Steps are grouped by phase (one <details> each, in the order phases begin); a phase
  // that begins while the page is open gets its group here.
  function phaseBody(phase) {
    var group = null;
    stepBody.querySelectorAll("details[data-phase]").forEach(function (g) { if (g.dataset.phase === phase) group = g; });
    if (!group) {
      group = document.getElementById("phase-group-tpl").content.firstElementChild.cloneNode(true);
      group.dataset.phase = phase;
      group.querySelector(".phase-title").textContent = phaseTitle(phase);
      stepBody.appendChild(group);
    }
    return group.querySelector("[data-phase-body]");
  }

  function phaseTitle(phase) {
    var titles = (root.querySelector("[data-phase-titles]") || {dataset: {}}).dataset.phaseTitles || "";
    var found = phase;
    titles.split("|").forEach(function (pair) {
      var i = pair.indexOf("=");
      if (i > 0 && pair.substring(0, i) === phase) found = pair.substring(i + 1);
    });
    return found;
  }

  function setField(row, name, value) {
    var el = row.querySelector("[data-f=" + name + "]");
    if (el) el.textContent = value === null || value === undefined ? "" : String(value);
  }

  // "Go to the failed step": while the run waits for the operator, point at the first step that waits
  function syncJump() {
    var jump = root.querySelector("[data-jump-failed]");
    if (!jump) return;
    var stuck = root.dataset.currentState === "waiting" ?
      root.querySelector('tr[data-state="failed"], tr[data-state="waiting"]') : null;
    jump.hidden = !stuck;
    if (stuck) jump.querySelector("a").setAttribute("href", "#" + stuck.id);
  }

  function updateSteps(steps) {
    steps.forEach(function (s) {
      var row = stepRow(s);
      if (!row) return;
      row.dataset.state = s.state;
      setField(row, "index", s.index);
      setField(row, "action", s.action + (s.compensation ? " (compensation)" : ""));
      setField(row, "target", s.target);
      setField(row, "attempts", s.attempts);
      setField(row, "error", s.error);
      setBadge(row.querySelector("[data-f=state]"), s.state, s.state_label);
      var pct = s.state === "succeeded" ? 100 : s.progress;
      var bar = row.querySelector("[data-f=bar]");
      if (bar) bar.style.width = pct + "%";
      setField(row, "progress", pct + "%");
      syncActions(row);
    });
    syncJump();
    root.dispatchEvent(new CustomEvent("slipway:steps"));   // run-steps.js: group counts, filter
  }

  function handle(msg) {
    switch (msg.type) {
      case "events": addEvents(msg.events); break;
      case "steps": updateSteps(msg.steps); break;
      case "run": updateRun(msg.run); break;
      case "hello": if (runActive) setStatus("live", "ok"); else setStatus("finished: the page shows the whole run", "done"); break;
      case "error": setStatus(msg.message, "bad"); break;
    }
  }

  // --- fallback: poll the JSON endpoint while the socket is down ---
  function pollOnce() {
    var url = root.dataset.eventsUrl + "?format=json&after=" + lastSeq;
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        addEvents(data.events || []);
        if (data.steps) updateSteps(data.steps);
        if (data.run) updateRun(data.run);
      })
      .catch(function () { /* next tick */ });
  }
  function startPolling() {
    if (pollTimer || !runActive) return;
    pollTimer = setInterval(pollOnce, 2000);
  }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

  // --- websocket with backoff, resuming from the last rendered seq ---
  function connect() {
    reconnectTimer = null;
    if (stopped) return;
    if (!("WebSocket" in window)) { setStatus("polling", "warn"); startPolling(); return; }
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var sock = new WebSocket(proto + "//" + location.host + root.dataset.wsPath + "?after=" + lastSeq);
    ws = sock;
    sock.onopen = function () { attempt = 0; stopPolling(); };
    sock.onmessage = function (m) {
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function (ev) {
      if (ws === sock) ws = null;
      if (ev.code === 4401 || ev.code === 4403) {
        stopped = true;
        setStatus(ev.code === 4401 ? "signed out: reload to sign in" : "not allowed to watch this run", "bad");
        return;
      }
      if (stopped) return;
      attempt += 1;
      var delay = Math.min(15000, 500 * Math.pow(2, attempt - 1)) * (0.8 + Math.random() * 0.4);
      setStatus("reconnecting…", "warn");
      startPolling();
      reconnectTimer = setTimeout(connect, delay);
    };
  }

  window.addEventListener("beforeunload", function () { stopped = true; if (ws) ws.close(1000); });
  if (log) log.scrollTop = log.scrollHeight;
  setStatus("connecting…", "");
  connect();
  // exposed for debugging and tests
  window.slipwayRunLive = { lastSeq: function () { return lastSeq; }, socket: function () { return ws; } };
})();
