"""Typed fabric errors. ``str(exc)`` is the sentence a user sees, e.g.
``VMM server vmm01: New-SCVMCheckpoint on web03 failed: <server's message>``."""
import socket


class FabricError(Exception):
    kind_label = "Server"

    def __init__(self, server: str, message: str, *, cmdlet: str = "", target: str = "", kind: str = "vmm"):
        self.server = server
        self.message = message
        self.cmdlet = cmdlet
        self.target = target
        self.kind = kind
        super().__init__(self.describe())

    @property
    def server_label(self) -> str:
        return {"vmm": "VMM server", "scom": "SCOM server", "configmgr": "ConfigMgr server"}.get(self.kind, "Server")

    def describe(self) -> str:
        what = self.cmdlet or "call"
        if self.target:
            what = f"{what} on {self.target}"
        return f"{self.server_label} {self.server}: {what} failed: {self.message}"


class FabricUnreachable(FabricError):
    """The server did not answer (connection refused, DNS, TLS, network)."""


class FabricAuthError(FabricError):
    """The server refused the credentials."""


class ConnectionUnusable(FabricError):
    """The connection a run uses was deleted or disabled: no call was made. Not an outage:
    the run waits for the operator (enable or re-create it and retry, or abort)."""

    def describe(self) -> str:
        return f"{self.server_label} {self.server}: {self.message}"


class FabricTimeout(FabricError):
    """A call or a job did not finish in time."""


class FabricCommandError(FabricError):
    """PowerShell on the server reported an error."""

    def __init__(self, server, message, *, error_id: str = "", category: str = "", **kw):
        self.error_id = error_id
        self.category = category
        super().__init__(server, message, **kw)


class NotFound(FabricCommandError):
    """The object asked for does not exist (any more)."""


class AccessDenied(FabricCommandError):
    """VMM refused the call for the tenant it was made on behalf of (outside the user role's
    scope, or the role lacks the permission, or the user is not a member)."""


class VMBusy(FabricCommandError):
    """The VM (or host) is in use by another job."""


class JobFailed(FabricError):
    """A VMM job ended Failed or Canceled."""

    def __init__(self, server, message, *, job=None, **kw):
        self.job = job
        super().__init__(server, message, **kw)


NAME_NOT_RESOLVED = ("Name or service not known", "nodename nor servname", "No address associated with hostname",
                     "getaddrinfo failed", "Failed to resolve", "Temporary failure in name resolution")


def is_outage(exc: BaseException) -> bool:
    """True when waiting may help: the server did not answer in time, or refused or dropped the
    connection. Not an outage (waiting cannot fix it; the operator must act): credentials refused,
    a host name that does not resolve, a connection deleted or disabled."""
    if isinstance(exc, (FabricAuthError, ConnectionUnusable)):
        return False
    if isinstance(exc, FabricUnreachable):
        return not _name_not_resolved(exc)
    return isinstance(exc, FabricTimeout)


def _name_not_resolved(exc: BaseException) -> bool:
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return True
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None)]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return any(text in str(exc) for text in NAME_NOT_RESOLVED)
