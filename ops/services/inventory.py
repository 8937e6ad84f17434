"""Requests for inventory syncs (operators and admins)."""
from django.db import transaction

from .. import authz
from ..models import ServerConnection
from . import audit


def request_sync(user, connection: ServerConnection | None = None) -> list[ServerConnection]:
    """Queue a sync of one connection, or every enabled VMM connection; runs on the django-q2 worker."""
    authz.require(user, "fabric.sync")
    targets = [connection] if connection else list(ServerConnection.objects.filter(kind="vmm", enabled=True))
    username = user.get_username()

    def enqueue():
        from django_q.tasks import async_task

        for conn in targets:
            async_task("ops.inventory.sync.sync_task", conn.pk, username, task_name=f"sync {conn.name}", group="inventory")

    with transaction.atomic():
        for conn in targets:
            audit.record(user, "inventory.sync", conn)
        transaction.on_commit(enqueue)
    return targets
