"""The one write path for server connections (admins only)."""
from django.core.exceptions import ValidationError
from django.db import transaction

from .. import authz
from ..fabric import configmgr, errors, transport, vmm
from ..fabric.commands import cmd
from ..fabric.session import FabricSession, ServerSettings
from ..models import Run, RunSchedule, ServerConnection
from ..runbooks import registry
from . import audit

FIELDS = ("name", "kind", "host", "port", "use_https", "auth", "cert_validation", "ca_bundle", "username", "max_concurrent_jobs",
          "operation_timeout", "enabled", "job_timeout")


@transaction.atomic
def save_connection(user, data: dict, password: str | None, instance: ServerConnection | None = None) -> ServerConnection:
    """Create or update; ``password`` None or '' keeps the stored one. Never logs or audits the password."""
    authz.require(user, "connection.change")
    conn = instance or ServerConnection()
    for field in FIELDS:
        if field in data:
            setattr(conn, field, data[field])
    if password:
        conn.set_password(password)
    conn.full_clean()
    creating = conn.pk is None
    conn.save()
    audit.record(user, "connection.create" if creating else "connection.update", conn,
                 fields={f: data.get(f) for f in FIELDS if f in data}, password_changed=bool(password))
    return conn


@transaction.atomic
def delete_connection(user, conn: ServerConnection) -> None:
    """Delete a connection nothing depends on; refused (ValidationError naming them) while hosting
    plans, active runs or enabled schedules use it: a run would be left without a way to undo its work."""
    authz.require(user, "connection.change")
    plans = list(conn.plans.values_list("name", flat=True)[:5])
    if plans:
        raise ValidationError(f"Connection {conn.name} is the VMM server of hosting plans ({', '.join(plans)}); "
                              "move or delete those plans first. Nothing was deleted.", code="in-use")
    users = users_of(conn)
    if users:
        raise ValidationError(f"{conn.name} cannot be deleted: {'; '.join(users)} use it. Let the runs end (or abort "
                              "them) and change or delete the schedules first.", code="in_use")
    audit.record(user, "connection.delete", conn, name=conn.name)
    conn.delete()


def users_of(conn: ServerConnection) -> list[str]:
    """The active runs and enabled schedules that use ``conn``, as names for a refusal."""
    param = "scom" if conn.kind == ServerConnection.Kind.SCOM else "connection"
    runs = Run.objects.filter(state__in=Run.ACTIVE_STATES)
    runs = runs.filter(connection=conn) if param == "connection" else runs.filter(params__scom=conn.name)
    out = [f"run {r.pk} ({r.title})" for r in runs.order_by("pk")[:10]]
    # a schedule that names no connection uses the only enabled one of its kind
    only = not ServerConnection.objects.filter(kind=conn.kind, enabled=True).exclude(pk=conn.pk).exists()
    for sched in RunSchedule.objects.filter(enabled=True).order_by("name"):
        named = str(sched.params.get(param) or "")
        if named == conn.name or (not named and only and conn.enabled and _uses_kind(sched.kind, param)):
            out.append(f"schedule '{sched.name}'")
    return out


def _uses_kind(runbook_kind: str, param: str) -> bool:
    try:
        return param in registry.get(runbook_kind).param_names
    except ValidationError:
        return False


def test_connection(user, conn: ServerConnection) -> str:
    """Open a session and ask the server who it is. Returns a sentence for the admin that says what was
    negotiated ("NTLM, messages encrypted", "Basic over HTTPS, certificate valid (CN=..., expires ...)");
    raises FabricError with the cause and the fix."""
    authz.require(user, "connection.change")
    settings = ServerSettings.from_connection(conn)
    session = FabricSession(settings)
    try:
        if conn.kind == ServerConnection.Kind.VMM:
            session.run([[cmd("Get-SCVMMServer", ComputerName=conn.host), cmd("Out-Null")]], cmdlet="Get-SCVMMServer",
                        timeout=conn.operation_timeout)
            count = len(vmm.list_clouds(session))
            answer = f"the VMM server answers and has {count} cloud(s)."
        elif conn.kind == ServerConnection.Kind.SCOM:
            session.run([[cmd("Get-SCOMMaintenanceMode"), cmd("Out-Null")]], cmdlet="Get-SCOMMaintenanceMode")
            answer = "the SCOM server answers."
        elif conn.kind == ServerConnection.Kind.CONFIGMGR:
            count = len(configmgr.list_deployments(session))
            answer = (f"the ConfigMgr site {configmgr.site_drive(session)} answers and has "
                      f"{count} software update deployment(s).")
        else:
            session.run([[cmd("Get-Variable", Name="PSVersionTable", ValueOnly=True), cmd("Out-Null")]], cmdlet="Get-Variable")
            answer = "the server answers."
        message = f"{conn.name}: connected ({_negotiated(settings)}); {answer}"
    except errors.FabricError as exc:
        # the list's Status column shows the outcome of the last test, not only of the last sync
        ServerConnection.record_use(conn.pk, str(exc))
        audit.record(user, "connection.test", conn, ok=False, error=str(exc))
        raise
    finally:
        session.close()
    ServerConnection.record_use(conn.pk)
    audit.record(user, "connection.test", conn, ok=True)
    return message


def _negotiated(settings: ServerSettings) -> str:
    peer = None
    if settings.use_https:
        try:
            peer = transport.peer_certificate(settings.host, settings.port, settings.verify,
                                              timeout=min(settings.timeout, 10))
        except OSError as exc:  # the call just worked over the same TLS; say so rather than fail the test
            peer = {"cn": f"not read again: {exc}", "expires": "?"}
    return transport.negotiated(settings.auth, settings.use_https, bool(settings.verify), peer)
