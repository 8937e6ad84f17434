"""Which rows a user may see. Every user-facing queryset goes through here.

Admins and operators see the whole fabric. A tenant's view is decided by the
self-service app (``portal``), which registers a filter at start-up; ``ops``
never imports ``portal``. With no filter registered a tenant sees nothing.
"""
from typing import Callable

from django.db.models import Q

_tenant_vm_filters: list[Callable] = []


def register_tenant_vm_filter(func: Callable) -> None:
    """``func(user) -> Q`` over VirtualMachine fields; results are OR-ed."""
    if func not in _tenant_vm_filters:
        _tenant_vm_filters.append(func)


def tenant_vm_q(user) -> Q | None:
    q = None
    for func in _tenant_vm_filters:
        part = func(user)
        if part is not None:
            q = part if q is None else (q | part)
    return q
