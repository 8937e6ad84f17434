"""PSRP glue: one ``PoolHost`` per runspace pool (WSMan shell).

psrpcore's ``ServerRunspacePool`` / ``ServerPipeline`` unpack what the client
sends and pack the PSRP messages we answer with. This module routes those
messages to per-target queues (the pool, or one pipeline), runs each pipeline's
statements through the engine's ``Session.execute`` in a worker thread, and
hands the WSMan layer fragment bytes sized to the client's envelope.
"""
from __future__ import annotations

import logging
import threading
import time
import typing
import uuid

from psrpcore import (
    CreatePipelineEvent,
    GetAvailableRunspacesEvent,
    GetCommandMetadataEvent,
    ResetRunspaceStateEvent,
    ServerPipeline,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
)
from psrpcore._payload import EMPTY_UUID, PSRPMessage, PSRPPayload, StreamType, create_message
from psrpcore.types import PSInvocationState, PSRPMessageType, RunspacePoolState

from . import clixml
from .contract import Engine, PSError, Session, Statement
from .psrp_parts import (  # noqa: F401 - the exceptions are part of this module's interface
    FastCreatePipeline,
    PSRPHostError,
    ReceiveTimeout,
    UnknownCommand,
    _error_record,
    _Queue,
    _ServerPool,
    _statements,
)

log = logging.getLogger(__name__)

BATCH_WINDOW = 0.05  # a Receive waits this long for more output to fill its envelope

class _Output:
    """The contract's ``Output`` sink for one pipeline."""

    def __init__(self, pipe: "PipelineHost") -> None:
        self._pipe = pipe

    def write_output(self, value: typing.Any) -> None:
        data = clixml.dumps(value)  # outside the pool lock: the expensive part
        self._pipe.emit(lambda sp: self._pipe.pool.enqueue_raw(PSRPMessageType.PipelineOutput, data, sp.pipeline_id))

    def write_error(self, error: PSError) -> None:
        record = _error_record(error)
        self._pipe.emit(
            lambda sp: sp.write_error(
                record.Exception, record.CategoryInfo, record.TargetObject, record.FullyQualifiedErrorId
            )
        )

    def write_progress(self, activity: str, status: str, percent: int, activity_id: int = 0) -> None:
        self._pipe.emit(
            lambda sp: sp.write_progress(activity or " ", int(activity_id), status or " ", percent_complete=int(percent))
        )

    def write_warning(self, message: str) -> None:
        self._pipe.emit(lambda sp: sp.write_warning(str(message)))

    def stopped(self) -> bool:
        return self._pipe.stop_event.is_set()


class PipelineHost:
    def __init__(self, pool: "PoolHost", pipeline_id: uuid.UUID, command_id: uuid.UUID) -> None:
        self.pool = pool
        self.pipeline_id = pipeline_id
        self.command_id = command_id
        self.sp = ServerPipeline(pool.pool, pipeline_id)
        self.stop_event = threading.Event()
        self.finished = False
        self.abandoned = False
        self.thread: typing.Optional[threading.Thread] = None

    def emit(self, action: typing.Callable[[ServerPipeline], None]) -> None:
        with self.pool.cond:
            if self.sp.state != PSInvocationState.Running or self.stop_event.is_set():
                return  # PowerShell drops what a stopped pipeline still writes
            action(self.sp)
            self.pool.drain()

    def start(self, statements: typing.Optional[list[Statement]], failure: typing.Optional[PSError] = None) -> None:
        self.sp._change_state(PSInvocationState.Running, emit=False)
        self.thread = threading.Thread(
            target=self._run, args=(statements, failure), name=f"sim-pipeline-{self.pipeline_id}", daemon=True
        )
        self.thread.start()

    def _run(self, statements: typing.Optional[list[Statement]], failure: typing.Optional[PSError]) -> None:
        pool = self.pool
        error = failure
        if error is None:
            with pool.cond:
                while pool.running >= max(1, pool.pool.max_runspaces) and not self.stop_event.is_set():
                    pool.cond.wait(1.0)
                pool.running += 1
            try:
                if not self.stop_event.is_set():
                    assert pool.session is not None and statements is not None
                    pool.session.execute(statements, _Output(self))
            except PSError as exc:
                error = exc
            except Exception as exc:  # an engine bug: report it like PowerShell reports an unexpected exception
                log.exception("engine failed running pipeline %s", self.pipeline_id)
                error = PSError(f"{type(exc).__name__}: {exc}", error_id="SimulatorEngineFailure")
            finally:
                with pool.cond:
                    pool.running -= 1
        with pool.cond:
            if self.stop_event.is_set():
                self.sp.stop()
            elif error is not None:
                self.sp._change_state(PSInvocationState.Failed, error=_error_record(error))
            else:
                self.sp.complete()
            self.finished = True
            pool.drain()
            if self.abandoned:
                pool.forget(self)


class PoolHost:
    """One runspace pool: psrpcore state, engine session, queues and pipelines."""

    def __init__(self, shell_id: uuid.UUID, engine: Engine, username: str) -> None:
        self.shell_id = shell_id
        self.username = username
        self.pool = _ServerPool()
        self.cond = threading.Condition(threading.RLock())
        self.queues: dict[typing.Optional[uuid.UUID], _Queue] = {None: _Queue()}
        self.commands: dict[uuid.UUID, PipelineHost] = {}
        self.running = 0
        self.closed = False
        self.last_used = time.monotonic()
        self.session: typing.Optional[Session] = engine.open_session(username)

    # --- queues ---------------------------------------------------------------------------------
    def drain(self) -> None:
        """Move what psrpcore queued into our per-target queues (called with the lock held)."""
        buffer = self.pool._send_buffer
        if buffer:
            for message in buffer:
                queue = self.queues.get(message.pipeline_id)
                if queue is not None:
                    queue.append(message)
            buffer.clear()
            self.cond.notify_all()

    def enqueue_raw(self, message_type: PSRPMessageType, data: bytes, pipeline_id: uuid.UUID) -> None:
        """Queue a message whose CLIXML we built ourselves (output objects)."""
        raw = create_message(False, message_type, data, self.pool.runspace_pool_id, pipeline_id)
        self.pool._send_buffer.append(
            PSRPMessage(message_type, raw, self.pool.runspace_pool_id, pipeline_id, self.pool._fragment_counter)
        )

    # --- incoming -------------------------------------------------------------------------------
    def open(self, creation: bytes) -> None:
        self.feed(creation)
        if self.pool.state != RunspacePoolState.Opened:
            raise PSRPHostError(f"runspace pool did not open (state {self.pool.state.name})")

    def feed(self, data: bytes, command_id: typing.Optional[uuid.UUID] = None) -> None:
        with self.cond:
            self.last_used = time.monotonic()
            try:
                self.pool.receive_data(PSRPPayload(data, StreamType.default, command_id))
                while True:
                    event = self.pool.next_event()
                    if event is None:
                        break
                    self._handle(event)
            except PSRPHostError:
                raise
            except Exception as exc:
                log.warning("bad PSRP data for pool %s: %r", self.shell_id, exc)
                raise PSRPHostError(f"invalid PSRP data: {exc}") from exc
            finally:
                self.drain()

    def _handle(self, event: typing.Any) -> None:
        if isinstance(event, (CreatePipelineEvent, FastCreatePipeline)):
            pipe = self._pipeline(event.pipeline_id)
            statements = event.statements if isinstance(event, FastCreatePipeline) else _statements(event.pipeline)
            if not statements:
                pipe.start(None, PSError("No commands were given.", error_id="EmptyPipeline"))
            else:
                pipe.start(statements)
        elif isinstance(event, GetCommandMetadataEvent):
            pipe = self._pipeline(event.pipeline_id)
            pipe.start(None, PSError("The simulator does not support GetCommandMetadata.", error_id="NotSupported"))
        elif isinstance(event, GetAvailableRunspacesEvent):
            self.pool.runspace_availability_response(event.call_id, max(0, max(1, self.pool.max_runspaces) - self.running))
        elif isinstance(event, (SetMaxRunspacesEvent, SetMinRunspacesEvent, ResetRunspaceStateEvent)):
            self.pool.runspace_availability_response(event.call_id, True)
            self.cond.notify_all()
        # Pipeline input, host responses, key exchange (psrpcore answers it): nothing more to do.

    def _pipeline(self, pipeline_id: typing.Optional[uuid.UUID]) -> PipelineHost:
        for pipe in self.commands.values():
            if pipe.pipeline_id == pipeline_id:
                return pipe
        raise PSRPHostError(f"no command for pipeline {pipeline_id}")

    def command(self, command_id: typing.Optional[uuid.UUID], first_fragment: bytes) -> uuid.UUID:
        """WSMan Command: a new pipeline; its CREATE_PIPELINE may continue in later Sends."""
        pipeline_id = None
        if len(first_fragment) >= 61 and first_fragment[16] & 0x1:  # start fragment: message header follows
            pipeline_id = uuid.UUID(bytes_le=bytes(first_fragment[45:61]))
            if pipeline_id == EMPTY_UUID:
                pipeline_id = None
        pipeline_id = pipeline_id or command_id or uuid.uuid4()
        command_id = command_id or pipeline_id
        with self.cond:
            if self.closed:
                raise PSRPHostError("the runspace pool is closed")
            if command_id in self.commands:
                raise PSRPHostError(f"command {command_id} already exists")
            pipe = PipelineHost(self, pipeline_id, command_id)
            self.commands[command_id] = pipe
            self.queues[pipeline_id] = _Queue()
        try:
            self.feed(first_fragment, pipeline_id)
        except Exception:
            with self.cond:
                self.forget(pipe)
            raise
        return command_id

    def send(self, data: bytes, command_id: typing.Optional[uuid.UUID]) -> None:
        if command_id is not None and command_id not in self.commands:
            raise UnknownCommand(f"no command {command_id}")
        pipe = self.commands.get(command_id) if command_id else None
        self.feed(data, pipe.pipeline_id if pipe else None)

    # --- outgoing -------------------------------------------------------------------------------
    def receive(self, command_id: typing.Optional[uuid.UUID], amount: int, timeout: float) -> tuple[bytes, bool]:
        """Long-poll for data for the pool or one command. Returns (fragments, command done)."""
        now = time.monotonic()
        deadline = now + timeout
        batch_until = None
        with self.cond:
            self.last_used = now
            pipe = None
            if command_id is not None:
                pipe = self.commands.get(command_id)
                if pipe is None:
                    raise UnknownCommand(f"no command {command_id}")
            queue = self.queues[pipe.pipeline_id if pipe else None]
            queue.gen += 1
            gen = queue.gen
            while True:
                if queue.gen != gen or self.closed:
                    raise ReceiveTimeout()  # a newer Receive (client retry) or Delete took over
                now = time.monotonic()
                if queue.messages:
                    if pipe is None or pipe.finished or queue.nbytes >= amount:
                        break
                    batch_until = batch_until or now + BATCH_WINDOW
                    if now >= batch_until:
                        break
                    self.cond.wait(min(batch_until, deadline) - now)
                    continue
                if pipe is not None and pipe.finished:
                    break
                if now >= deadline:
                    raise ReceiveTimeout()
                self.cond.wait(deadline - now)
            data = queue.pack(amount)
            done = pipe is not None and pipe.finished and not queue.messages
            if done:
                self.forget(pipe)
            self.last_used = time.monotonic()
            return data, done

    # --- lifecycle ------------------------------------------------------------------------------
    def forget(self, pipe: PipelineHost) -> None:
        """Drop a command (lock held): finished and delivered, or abandoned by Signal/Delete."""
        self.commands.pop(pipe.command_id, None)
        self.queues.pop(pipe.pipeline_id, None)
        if pipe.sp.state != PSInvocationState.Running:
            pipe.sp.close()
        self.pool.pipeline_table.pop(pipe.pipeline_id, None)

    def signal(self, command_id: uuid.UUID, wait: float = 2.0) -> None:
        """Terminate / Ctrl-C: stop the pipeline and forget it (pypsrp never receives after either)."""
        with self.cond:
            pipe = self.commands.get(command_id)
            if pipe is None:
                return
            pipe.stop_event.set()
            pipe.abandoned = True
            if pipe.finished or pipe.thread is None:
                self.forget(pipe)
                return
            self.cond.notify_all()
        pipe.thread.join(wait)

    def close(self, wait: float = 2.0) -> None:
        with self.cond:
            if self.closed:
                return
            self.closed = True
            pipes = list(self.commands.values())
            for pipe in pipes:
                pipe.stop_event.set()
                pipe.abandoned = True
            self.cond.notify_all()
        deadline = time.monotonic() + wait
        for pipe in pipes:
            if pipe.thread is not None:
                pipe.thread.join(max(0.0, deadline - time.monotonic()))
        with self.cond:
            for pipe in list(self.commands.values()):
                if pipe.finished or pipe.thread is None:
                    self.forget(pipe)
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except Exception:
                log.exception("engine session close failed for pool %s", self.shell_id)
