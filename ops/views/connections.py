"""Server connections (admins): VMM, SCOM and ConfigMgr servers."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ..authz import requires, restrict
from ..fabric.errors import FabricError
from ..forms import ConnectionForm
from ..models import ServerConnection
from ..services import connections as service


@requires("connection.view")
def connection_list(request):
    connections = restrict(ServerConnection.objects.all(), request.user, "connection.view")
    return render(request, "ops/connections/list.html", {"nav": "connections", "connections": connections})


def _editable(request, pk) -> ServerConnection:
    return get_object_or_404(restrict(ServerConnection.objects.all(), request.user, "connection.change"), pk=pk)


@requires("connection.change")
def connection_edit(request, pk=None):
    instance = _editable(request, pk) if pk else None
    form = ConnectionForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "password"}
        # the form's instance already carries the cleaned values; save through the service
        target = ServerConnection.objects.get(pk=instance.pk) if instance else None
        conn = service.save_connection(request.user, data, form.cleaned_data.get("password"), target)
        messages.success(request, f"Connection {conn.name} saved.")
        return redirect("ops:connections")
    return render(request, "ops/connections/edit.html", {"nav": "connections", "form": form, "instance": instance})


@requires("connection.change")
@require_POST
def connection_delete(request, pk):
    conn = _editable(request, pk)
    name = conn.name
    try:
        service.delete_connection(request.user, conn)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Connection {name} deleted.")
    return redirect("ops:connections")


@requires("connection.change")
@require_POST
def connection_test(request, pk):
    conn = _editable(request, pk)
    try:
        messages.success(request, service.test_connection(request.user, conn))
    except (FabricError, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect("ops:connections")
