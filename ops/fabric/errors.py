"""Typed fabric errors. ``str(exc)`` is the sentence a user sees, e.g.
``VMM server vmm01: New-SCVMCheckpoint on web03 failed: <server's message>``."""


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
