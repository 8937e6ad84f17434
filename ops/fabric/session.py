"""Pooled PowerShell Remoting sessions, one set per server, shared by threads.

A ``FabricSession`` keeps up to ``max_pools`` open pypsrp RunspacePools to one
server and lends one to each call; a pool that failed is closed and a fresh
one opened on the next call. Every call has a deadline: the pipeline is
started with ``begin_invoke`` and polled until it ends or the deadline passes,
then stopped, so a hung cmdlet can never hang a worker.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import re
import threading
import time
import typing

import requests
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan
from spnego.exceptions import SpnegoError

from . import errors, transport
from .commands import Cmd, error_record_fields, map_command_error

log = logging.getLogger("slipway.fabric")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """What is needed to reach one server; built from a ServerConnection row."""

    name: str
    kind: str
    host: str
    port: int
    use_https: bool
    auth: str
    cert_validation: bool
    username: str
    password: str = dataclasses.field(repr=False)
    timeout: float = 30.0
    max_pools: int = 4
    ca_bundle: str = ""   # a PEM file's path or pasted PEM: the CAs an HTTPS server's certificate is checked against
    encryption: str = ""  # pypsrp's message encryption; "" = what the auth and scheme call for (transport.py)

    @property
    def message_encryption(self) -> str:
        return self.encryption or transport.encryption(self.auth, self.use_https)

    @property
    def verify(self) -> "bool | str":
        return transport.cert_validation(self.cert_validation, self.ca_bundle) if self.use_https else False

    @classmethod
    def from_connection(cls, connection) -> "ServerSettings":
        return cls(
            name=connection.name,
            kind=connection.kind,
            host=connection.host,
            port=connection.port,
            use_https=connection.use_https,
            auth=connection.auth,
            cert_validation=connection.cert_validation,
            username=connection.username,
            password=connection.get_password(),
            timeout=float(connection.operation_timeout),
            ca_bundle=connection.ca_bundle,
        )


@dataclasses.dataclass
class Result:
    output: list
    errors: list  # non-terminating error records (pypsrp ErrorRecord)
    progress: list
    warnings: list
    failure: "errors.FabricCommandError | None" = None  # the terminating error, with ``partial=True``


class FabricSession:
    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self._idle: queue.LifoQueue[RunspacePool] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.max_pools)
        self.closed = False

    # -- pools ----------------------------------------------------------------
    def _wsman(self, timeout: float) -> WSMan:
        s = self.settings
        op_timeout = max(1, int(min(timeout, 20)))
        return WSMan(
            s.host,
            port=s.port,
            ssl=s.use_https,
            auth=s.auth,
            username=s.username,
            password=s.password,
            cert_validation=s.verify,
            operation_timeout=op_timeout,
            read_timeout=op_timeout + 5,
            connection_timeout=max(1, int(min(timeout, 10))),
            no_proxy=True,
            encryption=s.message_encryption,
        )

    def _open_pool(self, timeout: float) -> RunspacePool:
        pool = RunspacePool(self._wsman(timeout), configuration_name="Microsoft.PowerShell")
        pool.open()
        return pool

    def _borrow(self, timeout: float, cmdlet: str, target: str) -> RunspacePool:
        if not self._slots.acquire(timeout=timeout):
            raise self._error(errors.FabricTimeout, f"no free connection to the server within {timeout:.0f} s", cmdlet, target)
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            return self._open_pool(timeout)
        except BaseException:
            self._slots.release()
            raise

    def _give_back(self, pool: RunspacePool | None, healthy: bool, stale: PowerShell | None = None) -> None:
        try:
            if pool is not None:
                if healthy and not self.closed:
                    self._idle.put(pool)
                else:
                    # a broken pool may sit on a server that stopped answering: closing it can hang
                    # for a read timeout, which the caller (a run's task, holding its lease) must not wait
                    _in_background(_retire, pool, stale)
        finally:
            self._slots.release()

    def close(self) -> None:
        self.closed = True
        while True:
            try:
                _close_quietly(self._idle.get_nowait())
            except queue.Empty:
                break

    # -- calls ----------------------------------------------------------------
    def run(
        self,
        statements: typing.Sequence[typing.Sequence[Cmd]],
        *,
        cmdlet: str,
        target: str = "",
        timeout: float | None = None,
        strict: bool = True,
        partial: bool = False,
    ) -> Result:
        """Run statements (each a pipeline of ``Cmd``) in one round trip.

        ``cmdlet``/``target`` name what is being done, for error messages.
        With ``strict`` a non-terminating error is raised too. With ``partial``
        a terminating error does not raise: the result carries the output
        written before it and the error as ``failure`` (for batches of
        independent statements, see ``batch.py``).
        """
        timeout = float(timeout or self.settings.timeout)
        deadline = time.monotonic() + timeout
        pool = None
        healthy = False
        stale = None
        try:
            pool = self._borrow(timeout, cmdlet, target)
            ps = PowerShell(pool)
            for i, statement in enumerate(statements):
                if i:
                    ps.add_statement()
                for cmd in statement:
                    cmd.add_to(ps)
            result = self._invoke(ps, deadline, timeout, cmdlet, target, partial)
            healthy = True
        except errors.FabricError as exc:
            stale = getattr(exc, "pipeline", None)
            raise
        except AuthenticationError as exc:
            raise self._error(errors.FabricAuthError, self._refused(), cmdlet, target) from exc
        except (ImportError, SpnegoError) as exc:  # Kerberos/CredSSP libraries missing, no ticket, no SPN
            raise self._error(errors.FabricAuthError, transport.explain_client_side(self.settings.auth, exc),
                              cmdlet, target) from exc
        except (requests.exceptions.Timeout, TimeoutError) as exc:
            raise self._error(errors.FabricTimeout, f"no answer within {timeout:.0f} s ({exc.__class__.__name__})", cmdlet, target) from exc
        except (requests.exceptions.ConnectionError, OSError) as exc:
            s = self.settings
            tls = transport.explain_tls(str(exc), s.host) if s.use_https else None
            reason = tls or f"cannot connect to {s.host}:{s.port} ({_connect_reason(exc)})"
            raise self._error(errors.FabricUnreachable, reason, cmdlet, target) from exc
        except WinRMTransportError as exc:
            if exc.code == 401:
                raise self._error(errors.FabricAuthError, self._refused(), cmdlet, target) from exc
            refused = transport.explain_unencrypted(str(exc.response_text or exc))
            if refused:
                raise self._error(errors.FabricAuthError, refused, cmdlet, target) from exc
            raise self._error(errors.FabricUnreachable, f"HTTP {exc.code}: {_short(exc)}", cmdlet, target) from exc
        except (WinRMError, WSManFaultError) as exc:
            refused = transport.explain_unencrypted(f"{exc} {getattr(exc, 'reason', '')}")
            if refused:
                raise self._error(errors.FabricAuthError, refused, cmdlet, target) from exc
            raise self._error(errors.FabricError, f"WinRM error: {_short(exc)}", cmdlet, target) from exc
        finally:
            if pool is not None:
                self._give_back(pool, healthy, stale)
        if result.errors and strict:
            raise self._command_error(result.errors[0], cmdlet, target)
        return result

    def _invoke(self, ps: PowerShell, deadline: float, timeout: float, cmdlet: str, target: str,
                partial: bool = False) -> Result:
        ps.begin_invoke()
        while ps.state == PSInvocationState.RUNNING:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                exc = self._error(errors.FabricTimeout, f"no result within {timeout:.0f} s; the call was stopped",
                                  cmdlet, target)
                exc.pipeline = ps   # stopped with its pool, in the background (the server may not answer)
                raise exc
            ps.poll_invoke(timeout=max(1, int(min(remaining, 5))))
        failure = None
        records = list(ps.streams.error)
        if ps.had_errors:
            if records:
                # the terminating error is the last record; earlier ones were non-terminating
                failure = self._command_error(records.pop(), cmdlet, target)
            else:
                failure = self._error(errors.FabricCommandError, "the pipeline failed without an error record", cmdlet, target)
            if not partial:
                raise failure
        return Result(list(ps.output), records, list(ps.streams.progress), list(ps.streams.warning), failure)

    def _refused(self) -> str:
        s = self.settings
        return transport.explain_refused_credentials(s.username, s.auth, s.use_https)

    def _error(self, cls, message, cmdlet, target, **kw):
        return cls(self.settings.name, message, cmdlet=cmdlet, target=target, kind=self.settings.kind, **kw)

    def _command_error(self, record, cmdlet, target):
        fields = error_record_fields(record)
        cls = map_command_error(fields)
        return self._error(cls, fields["message"], cmdlet, target, error_id=fields["error_id"], category=fields["category"])


def _in_background(fn, *args) -> None:
    threading.Thread(target=fn, args=args, name="slipway-fabric-cleanup", daemon=True).start()


def _retire(pool: RunspacePool, stale: PowerShell | None) -> None:
    """Stop a timed-out pipeline (so a slow server does not finish it unseen), then close its pool."""
    if stale is not None:
        try:
            stale.stop()
        except Exception as exc:  # the pool is dropped anyway
            log.debug("stopping a timed-out pipeline failed: %s", exc)
    _close_quietly(pool)


def _close_quietly(pool: RunspacePool) -> None:
    try:
        pool.close()
    except Exception as exc:  # closing a broken pool must not mask the real error
        log.debug("closing runspace pool failed: %s", exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text if len(text) < 300 else text[:297] + "..."


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\]\)\"']+)")


def _connect_reason(exc: BaseException) -> str:
    """The cause a person can act on, not urllib3's nested repr:
    'Connection refused', 'Name or service not known', 'certificate verify failed', ..."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "certificate verify failed: the server's certificate is not trusted"
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip()
    if "timed out" in text:
        return "connection timed out"
    return _short(exc)


# -- one session per server per process ----------------------------------------
_sessions: dict[tuple, FabricSession] = {}
_sessions_lock = threading.Lock()


def session_for(connection) -> FabricSession:
    """The process-wide session for a ServerConnection; rebuilt when the row changes."""
    key = (connection.pk, connection.updated_at)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            for old_key in [k for k in _sessions if k[0] == connection.pk]:
                _sessions.pop(old_key).close()
            session = _sessions[key] = FabricSession(ServerSettings.from_connection(connection))
        return session


def close_all() -> None:
    with _sessions_lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()
