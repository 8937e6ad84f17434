"""Fault injection.

A fault matches a cmdlet name (case-insensitive, ``*`` = any) and optionally a target
name (the VM / host / checkpoint / user role / SCOM instance the cmdlet acts on; ``*``
or empty = any), and has a mode:

- ``fail``: a cmdlet that starts a job starts it with the fault: the job fails at half
  its duration with ``message`` (ErrorInfo.DisplayableErrorCode = ``code``, default
  2912) and changes nothing; a synchronous call raises that error. A cmdlet without a
  job (Get-*, SCOM) raises the error at once.
- ``hang``: the job never progresses (Running, ProgressValue 0) and keeps its locks; a
  synchronous call blocks until the client stops the pipeline. A cmdlet without a job
  blocks until stopped.

- ``lose_adapter`` / ``resize_volume``: patching events only (see patching.py): a host comes
  back from its reboot without network adapter ``adapter`` (default its last), or with volume
  ``volume`` (default its last) now ``size_gb`` big (default half).

Besides cmdlets, ``cmdlet`` may name a patching event: ``Install-Update`` (target: a host or a
KB; ``fail`` ends that install with ``code``, ``hang`` never ends it) and ``Host-Reboot``
(target: a host; ``hang`` = it never comes back, or the two modes above).

``times``: how many calls the fault hits (then it is spent); ``None``/0 = forever.
``server_down`` is a flag on the engine, not a fault in this list.
"""
from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass
class Fault:
    cmdlet: str
    target: str = ""
    mode: str = "fail"
    message: str = ""
    times: int | None = None
    code: int = 2912
    hits: int = 0
    detail: dict = dataclasses.field(default_factory=dict)   # adapter / volume / size_gb

    def matches(self, cmdlet: str, targets) -> bool:
        if self.cmdlet not in ("", "*") and self.cmdlet.lower() != cmdlet.lower():
            return False
        if self.target in ("", "*", None):
            return True
        want = self.target.lower()
        for t in targets:
            t = (t or "").lower()
            if t == want or t.split(".")[0] == want.split(".")[0] and "." not in want:
                return True
        return False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class FaultSet:
    MODES = ("fail", "hang", "lose_adapter", "resize_volume")
    DETAIL_KEYS = ("adapter", "volume", "size_gb")

    def __init__(self):
        self._lock = threading.Lock()
        self.faults: list[Fault] = []

    def add(self, spec: dict) -> Fault:
        mode = str(spec.get("mode", "fail")).lower()
        if mode not in self.MODES:
            raise ValueError(f"unknown fault mode {mode!r} (expected one of {self.MODES})")
        if not spec.get("cmdlet"):
            raise ValueError("a fault needs 'cmdlet' (use '*' for any)")
        times = spec.get("times")
        fault = Fault(cmdlet=str(spec["cmdlet"]), target=str(spec.get("target") or ""), mode=mode,
                      message=str(spec.get("message") or f"Injected fault in {spec['cmdlet']}."),
                      times=int(times) if times else None, code=int(spec.get("code") or 2912),
                      detail={k: spec[k] for k in self.DETAIL_KEYS if spec.get(k) not in (None, "")})
        if "size_gb" in fault.detail:
            fault.detail["size_gb"] = float(fault.detail["size_gb"])
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def take(self, cmdlet: str, targets) -> Fault | None:
        """The first matching fault, counting the hit (a spent fault is removed)."""
        with self._lock:
            for f in self.faults:
                if f.matches(cmdlet, targets):
                    f.hits += 1
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self.faults.remove(f)
                    return f
        return None

    def to_list(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self.faults]
