"""Junctions: what a run does when every step of its phase is final. ``Increment`` mixes this in
(ops/engine/executor.py).

A run's phases are made when it starts and stored with it (``Runbook.make_phases``, kept in
``run.context['engine']['phases']``), so a runbook can repeat a block of phases per target.
At a junction:
- a failed step with ``on_error=wait`` makes the run wait for the operator (retry, skip, skip
  the block, abort);
- a failure inside a block abandons that block: its remaining ordinary phases are left out and
  its ``always`` phases (its compensation) run; then ``Runbook.after_block_failure`` says
  whether the next block goes on ("continue") or the run stops ("stop");
- a failure outside a block, a cancel or an abort stops the run: only ``always`` phases still
  run, of the blocks that began and of no block;
- an operator's "skip the block" (ops/services/runs.py, ``skip_block``) abandons the block
  the same way without counting it as failed.
"""
from django.utils import timezone

from ..fabric import errors
from ..inventory.refresh import refresh_run_targets
from ..models import Run, Step
from .events import Event


class Junctions:
    def stopping(self) -> bool:
        run = self.run
        return bool(self.eng.get("failure")) or run.cancel_requested or run.abort_requested

    def next_phase(self, current):
        """The phase after ``current`` (None: the first) that still runs, or None at the end."""
        names = [p.name for p in self.phases]
        rest = self.phases[names.index(current) + 1:] if current else self.phases
        abandoned = set(self.eng.get("abandoned_blocks") or [])
        begun = set(self.eng.get("blocks_begun") or [])
        stopping = self.stopping()
        for p in rest:
            if p.block and p.block in abandoned and not p.always:
                continue
            if stopping and (not p.always or (p.block and p.block not in begun)):
                continue
            return p
        return None

    def junction(self, steps):
        run, eng = self.run, self.eng
        phase = self.phase_obj(run.phase)
        failed = [s for s in steps if s.state == Step.State.FAILED]
        # with on_error=wait every failure waits for the operator, the clean-up phases' too (a VM not
        # started again is the failure most worth a retry); not once the operator said stop or abort
        waits = self.rb.on_error(run) == "wait" and not run.cancel_requested and not run.abort_requested and (
            phase.always or not eng.get("failure"))
        if failed and waits:
            run.state = Run.State.WAITING
            names = ", ".join(s.target for s in failed[:10])
            count = "1 step" if len(failed) == 1 else f"{len(failed)} steps"
            also = ", skip the node" if phase.block and not phase.always else ""
            msg = (f"Waiting for the operator: {count} of '{phase.title}' failed ({names}): "
                   f"{failed[0].error.rstrip('.')}. Retry or skip the failed steps{also}, or abort the run.")
            run.message = msg[:2000]
            self.commit(run_fields=["state", "context", "message"], events=[Event(msg, "warning")], release=True,
                        progress=False)
            return None
        self.rb.after_phase(run, phase, steps)
        notes = []
        abandoned = eng.setdefault("abandoned_blocks", [])
        if failed and phase.block and not phase.always and phase.block not in abandoned:
            block = phase.block
            abandoned.append(block)
            failed_blocks = eng.setdefault("failed_blocks", [])
            failed_blocks.append(block)
            eng.setdefault("block_errors", {})[block] = failed[0].error
            decision = self.rb.after_block_failure(run, block, list(failed_blocks))
            if decision == "stop" and not eng.get("failure"):
                eng["failure"] = failed[0].error
                eng["failed_targets"] = [s.target for s in failed]
            then = "then the run stops" if decision == "stop" else "then the run goes on with the next"
            notes.append(Event(f"{block} failed ({failed[0].error.rstrip('.')}): undoing what it changed, {then}",
                               "error", data={"block": block, "decision": decision}))
        elif failed and not eng.get("failure"):
            eng["failure"] = failed[0].error
            eng["failed_targets"] = [s.target for s in failed]
        nxt = self.next_phase(run.phase)
        if self.stopping() and nxt is not None and not eng.get("compensating"):
            eng["compensating"] = True
            why = "aborted" if run.abort_requested else "cancelled" if run.cancel_requested else "a step failed"
            rest, p = [], nxt
            while p is not None and len(rest) < 12:
                rest.append(p.title)
                p = self.next_phase(p.name)
            notes.append(Event(f"Compensation ({why}): " + ", then ".join(rest), "warning"))
        return self.begin_phase(nxt, notes)

    def refresh_targets(self) -> list:
        """Re-read the VMs the run acted on before it is final, so what a watcher reloads shows the result."""
        try:
            refresh_run_targets(self.run)
        except errors.FabricError as exc:
            return [Event(f"The VMs this run acted on could not be re-read; the next inventory sync shows them: {exc}",
                          "warning")]
        return []

    def begin_phase(self, phase, notes=()):
        run = self.run
        if phase is None:
            return self.finish(list(notes))
        if phase.block and phase.block not in self.eng.setdefault("blocks_begun", []):
            self.eng["blocks_begun"].append(phase.block)
        self.eng.setdefault("phase_started", {})[phase.name] = timezone.now().isoformat()
        plan = self.rb.plan(phase, run)
        base = (run.steps.order_by("-index").values_list("index", flat=True).first() or 0) + 1
        comp = bool(self.eng.get("compensating")) or (phase.always and phase.block in (self.eng.get("abandoned_blocks") or []))
        new = [Step(run=run, index=base + i, phase=phase.name, action=sp.action, target=sp.target[:255],
                    target_id=sp.target_id, data=sp.data, compensation=comp) for i, sp in enumerate(plan.steps)]
        run.phase = phase.name
        k = [p.name for p in self.phases].index(phase.name) + 1
        events = list(notes) + [Event(f"Phase {k}/{len(self.phases)}: {phase.title} — {len(new)} step{'' if len(new) == 1 else 's'}", "info",
                                      data={"phase": phase.name, "steps": len(new), "block": phase.block})]
        events += [Event(msg, level) for level, msg in plan.notes]
        self.commit(run_fields=["phase", "context"], new_steps=new, events=events)
        return 0
    def finish(self, notes):
        run, eng = self.run, self.eng
        notes = list(notes) + self.refresh_targets()
        if run.abort_requested:
            state = Run.State.FAILED
        elif run.cancel_requested:
            state = Run.State.CANCELLED
        elif eng.get("failure") or eng.get("failed_blocks"):
            state = Run.State.FAILED
        else:
            state = Run.State.SUCCEEDED
        run.state, run.finished_at = state, timezone.now()
        steps = list(run.steps.order_by("index"))
        run.message = self.rb.summarize(run, steps, state)
        if run.abort_requested:
            run.message = f"Aborted by {run.abort_by or 'the operator'}. {run.message}"
        # a failure the operator chose to skip is not a success to keep quiet about
        passed_over = [s for s in steps if s.state == Step.State.SKIPPED and s.result.get("errors")]
        if passed_over:
            names = ", ".join(f"{s.target} ({s.action})" for s in passed_over[:20])
            run.message += f" Skipped by the operator after failing: {names}{' …' if len(passed_over) > 20 else ''}."
        if state == Run.State.SUCCEEDED:
            run.progress = 100
        level = {"succeeded": "warning" if passed_over else "success", "cancelled": "warning"}.get(state, "error")
        run.paused_since = run.next_try_at = None
        self.commit(run_fields=["state", "finished_at", "message", "progress", "context", "phase", "paused_since",
                                "next_try_at"],
                    events=notes + [Event(run.message, level, data={"state": state, "final": True})],
                    release=True, progress=False)
        return None
