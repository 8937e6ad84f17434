"""Websocket consumer of a run's live progress: ``ws/runs/<id>/?after=N``.

Protocol (JSON text frames; see static/js/run-live.js for the client):

client -> server
  ``{"after": N}``     start streaming events with ``seq > N`` (only needed
                       when the URL has no ``?after=N``)
  ``{"type": "ping"}`` answered with ``{"type": "pong", "last_seq": N}``

server -> client
  ``{"type": "hello", "run": id, "after": N}``            streaming started
  ``{"type": "events", "events": [{seq, at, level, message, progress, step_id}], "last_seq": N}``
  ``{"type": "steps", "steps": [{id, index, phase, action, target, state, state_label, progress, attempts, error, ...}]}``
  ``{"type": "run", "run": {id, kind, state, state_label, phase, progress, message, is_active, ...}}``
  ``{"type": "error", "code": ..., "message": "..."}``    bad input; nothing changed

Each event is sent exactly once per connection, in ``seq`` order; a client that
reconnects with ``?after=<last seq it rendered>`` misses nothing and gets
nothing twice. An anonymous socket is closed with 4401, a run the user may not
see with 4403 (a tenant never watches another tenant's run). Who may watch is
``ops.authz``'s ``run.view``, asked again before sending whenever the last answer
is older than ``SLIPWAY_WATCH_RECHECK_SECONDS`` (and at least that often while
idle): a tenant removed from the subscription stops receiving within a few
seconds, and the socket closes with 4403.

Order of work on connect (DESIGN.md, "The database is the truth"): authenticate,
authorize, join the run's group, then send the backlog, then what is new on each
poke (``run.poke``) or on the timer. The group member is the process's shared
:class:`ops.livetail.RunTail` for the run (one poke per process, not one per
socket); a socket sends its backlog only once the tail has joined the group and
read the table, so a poke for anything committed later cannot be missed.
"""
import asyncio
import json
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import authz, livetail, roles
from .models import Run

EVENTS_PER_FRAME = 200

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def _can_watch(user, run_id: int) -> bool:
    roles.forget(user)  # roles may have changed since the socket opened: read them again
    return authz.restrict(Run.objects.filter(pk=run_id), user, "run.view").exists()


def recheck_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_WATCH_RECHECK_SECONDS", 2.0))


@database_sync_to_async
def _last_seq(run_id: int) -> int:
    return Run.objects.filter(pk=run_id).values_list("last_seq", flat=True).first() or 0


class RunConsumer(AsyncWebsocketConsumer):
    tail = None
    pump = None
    allowed = False

    async def connect(self):
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        self.last_seq = None  # None until the client said where it is
        self.step_version = 0
        self.run_version = 0
        self._changed = asyncio.Event()
        user = self.scope.get("user")
        # Accept first so the browser sees the close code (a refused handshake is a bare 403).
        await self.accept()
        if user is None or not user.is_authenticated:
            await self._fail(CLOSE_UNAUTHENTICATED, "Sign in to watch this run.", close=True)
            return
        if not await _can_watch(user, self.run_id):
            await self._fail(CLOSE_FORBIDDEN, f"Run {self.run_id} does not exist or you may not watch it.", close=True)
            return
        self.allowed = True
        self.checked_at = time.monotonic()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if "after" in query:
            after = livetail.parse_cursor(query["after"][-1])
            if after is None:
                await self._fail("bad-after", f"'after' must be a non-negative integer, got {query['after'][-1][:40]!r}; "
                                              'send {"after": N} to start.')
                return
            await self._start(after)

    async def disconnect(self, code):
        if self.pump is not None:
            self.pump.cancel()
        if self.tail is not None:
            livetail.unsubscribe(self.tail, self)
            self.tail = None

    # -- client messages --
    async def receive(self, text_data=None, bytes_data=None):
        if not self.allowed:  # rejected socket: ignore anything that still arrives
            return
        if text_data is None:
            await self._fail("bad-message", "Send JSON text frames, not binary.")
            return
        try:
            content = json.loads(text_data)
        except ValueError as exc:
            await self._fail("bad-json", f"Malformed JSON: {exc.msg} at position {exc.pos}.")
            return
        if not isinstance(content, dict):
            await self._fail("bad-message", "A message must be a JSON object.")
            return
        kind = content.get("type", "resume" if "after" in content else None)
        if kind == "ping":
            await self._send({"type": "pong", "last_seq": self.last_seq})
        elif kind == "resume":
            after = livetail.parse_cursor(content.get("after"))
            if after is None:
                await self._fail("bad-after", f"'after' must be a non-negative integer, got {str(content.get('after'))[:40]!r}.")
            elif self.last_seq is not None:
                await self._fail("already-streaming", f"Already streaming (last seq sent: {self.last_seq}); "
                                                      "reconnect with ?after=N to resume elsewhere.")
            else:
                await self._start(after)
        else:
            await self._fail("bad-message", f"Unknown message type {kind!r}; expected 'resume' or 'ping'.")

    # -- channel layer (pokes reach the shared tail; one sent to this socket's channel works too) --
    async def run_poke(self, event):
        if self.tail is not None:
            self.tail.wake()

    # -- streaming --
    async def _start(self, after: int):
        newest = await _last_seq(self.run_id)
        beyond = livetail.beyond_last(after, self.run_id, newest)
        if beyond:
            await self._fail("bad-after", beyond)
            return
        self.last_seq = after
        await self._send({"type": "hello", "run": self.run_id, "after": after})
        self.tail = livetail.subscribe(self.run_id, self)  # the tail joins the group, then reads
        self.pump = asyncio.get_running_loop().create_task(self._pump())

    def tail_changed(self):
        self._changed.set()

    async def _pump(self):
        await self.tail.ready.wait()
        recheck = recheck_seconds()
        try:
            while True:
                self._changed.clear()
                if not await self._still_allowed(recheck):
                    self.allowed = False
                    await self._fail(CLOSE_FORBIDDEN, f"You may no longer watch run {self.run_id}.", close=True)
                    return
                await self._flush()
                try:  # wake at least every `recheck` seconds, so a refusal closes an idle socket too
                    await asyncio.wait_for(self._changed.wait(), timeout=recheck)
                except asyncio.TimeoutError:
                    pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep the socket honest: say what broke, then let the client reconnect
            await self._fail("server-error", f"Live feed stopped: {exc}", close=True)

    async def _still_allowed(self, recheck: float) -> bool:
        """Ask authz again when the last answer is older than ``recheck`` seconds (one small query)."""
        now = time.monotonic()
        if now - self.checked_at < recheck:
            return True
        self.checked_at = now
        return await _can_watch(self.scope["user"], self.run_id)

    async def _flush(self):
        tail = self.tail
        while True:
            events = tail.events_after(self.last_seq)
            if events is None:  # older than the shared buffer: read this watcher's backlog itself
                events = await database_sync_to_async(livetail.fetch_events)(self.run_id, self.last_seq, tail.floor)
                if not events:  # nothing stored in that range
                    self.last_seq = tail.floor
                    continue
            if not events:
                break
            for i in range(0, len(events), EVENTS_PER_FRAME):
                chunk = events[i:i + EVENTS_PER_FRAME]
                key = ("events", chunk[0]["seq"], chunk[-1]["seq"])
                text = tail.frames.get(key)  # watchers at the same cursor share one encoding
                if text is None:
                    text = tail.frames[key] = json.dumps({"type": "events", "events": chunk, "last_seq": key[2]}, default=str)
                await self.send(text_data=text)
                self.last_seq = key[2]
        if tail.version > self.step_version:
            key = ("steps", self.step_version, tail.version)
            text = tail.frames.get(key)
            if text is None:
                steps = tail.steps_since(self.step_version)
                text = tail.frames[key] = json.dumps({"type": "steps", "steps": steps}, default=str) if steps else ""
            self.step_version = key[2]
            if text:
                await self.send(text_data=text)
        if tail.run is not None and tail.run_version != self.run_version:
            key = ("run", tail.run_version)
            text = tail.frames.get(key)
            if text is None:
                text = tail.frames[key] = json.dumps({"type": "run", "run": tail.run}, default=str)
            self.run_version = key[1]
            await self.send(text_data=text)

    # -- helpers --
    async def _send(self, payload: dict):
        await self.send(text_data=json.dumps(payload, default=str))

    async def _fail(self, code, message: str, close: bool = False):
        await self._send({"type": "error", "code": code, "message": message})
        if close:
            await self.close(code=code if isinstance(code, int) else 4000)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other websocket path (``/ws/runs/abc/``, ``/ws/nope``): say so and close with 4404,
    instead of the router's "No route found" exception (a 500 and a traceback in the log)."""

    async def connect(self):
        await self.accept()
        path = self.scope.get("path", "")
        await self.send(text_data=json.dumps({
            "type": "error", "code": CLOSE_NOT_FOUND,
            "message": f"No websocket at {path}; a run's live log is at /ws/runs/<run id>/.",
        }))
        await self.close(code=CLOSE_NOT_FOUND)
