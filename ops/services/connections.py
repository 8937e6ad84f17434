"""The one write path for server connections (admins only)."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import authz
from ..fabric import errors, vmm
from ..fabric.commands import cmd
from ..fabric.session import FabricSession, ServerSettings
from ..models import ServerConnection
from . import audit

FIELDS = ("name", "kind", "host", "port", "use_https", "auth", "cert_validation", "username", "max_concurrent_jobs",
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
    authz.require(user, "connection.change")
    plans = list(conn.plans.values_list("name", flat=True)[:5])
    if plans:
        raise ValidationError(f"Connection {conn.name} is the VMM server of hosting plans ({', '.join(plans)}); "
                              "move or delete those plans first. Nothing was deleted.", code="in-use")
    audit.record(user, "connection.delete", conn, name=conn.name)
    conn.delete()


def test_connection(user, conn: ServerConnection) -> str:
    """Open a session and ask the server who it is. Returns a sentence for the admin; raises FabricError."""
    authz.require(user, "connection.change")
    session = FabricSession(ServerSettings.from_connection(conn))
    try:
        if conn.kind == ServerConnection.Kind.VMM:
            session.run([[cmd("Get-SCVMMServer", ComputerName=conn.host), cmd("Out-Null")]], cmdlet="Get-SCVMMServer",
                        timeout=conn.operation_timeout)
            count = len(vmm.list_clouds(session))
            message = f"{conn.name}: connected; the VMM server answers and has {count} cloud(s)."
        elif conn.kind == ServerConnection.Kind.SCOM:
            session.run([[cmd("Get-SCOMMaintenanceMode"), cmd("Out-Null")]], cmdlet="Get-SCOMMaintenanceMode")
            message = f"{conn.name}: connected; the SCOM server answers."
        else:
            session.run([[cmd("Get-Variable", Name="PSVersionTable", ValueOnly=True), cmd("Out-Null")]], cmdlet="Get-Variable")
            message = f"{conn.name}: connected."
    except errors.FabricError as exc:
        # the list's Status column shows the outcome of the last test, not only of the last sync
        ServerConnection.objects.filter(pk=conn.pk).update(last_error=str(exc))
        audit.record(user, "connection.test", conn, ok=False, error=str(exc))
        raise
    finally:
        session.close()
    ServerConnection.objects.filter(pk=conn.pk).update(last_ok_at=timezone.now(), last_error="")
    audit.record(user, "connection.test", conn, ok=True)
    return message
