"""The audit log's one write path."""
from ..models import AuditEntry


def schedule_actor(schedule) -> str:
    """Who the audit log names for what a schedule does by itself (not the operator who made it)."""
    return f"schedule {schedule.name}"[:150]


def record(user, action: str, obj=None, **detail) -> AuditEntry:
    username = "system"
    if user is not None and getattr(user, "is_authenticated", False):
        username = user.get_username()
    elif isinstance(user, str):
        username, user = user, None
    return AuditEntry.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=username,
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or "") if obj is not None else "",
        object_repr=str(obj)[:255] if obj is not None else "",
        detail=detail,
    )
