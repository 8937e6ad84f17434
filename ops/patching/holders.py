"""Which patch run a host in maintenance belongs to: the run that holds it now, or the newest one that
left it there and said why (the ``maintenance:<node>`` entry patch steps keep, ops/runbooks/patch_steps.py).
The fabric pages flag such a host with a link to that run."""
from ..models import Run
from ..runbooks.base import own
from .preflight import short

RECENT_RUNS = 200   # a host left in maintenance by an older run is still flagged, without a run to link


def maintenance_runs(hosts) -> dict[int, tuple[Run, str]]:
    """{host pk: (run, what it says)} for the hosts in maintenance that a patch run holds or left."""
    down = {f"host:{h.name}".lower(): h for h in hosts if h.in_maintenance}
    if not down:
        return {}
    out: dict[int, tuple[Run, str]] = {}
    for run in Run.objects.filter(kind="patch-cluster").order_by("-pk").only("pk", "state", "context")[:RECENT_RUNS]:
        for hold in run.context.get("holds") or []:
            host = down.get(str(hold).lower())
            if host is None or host.pk in out:
                continue
            if run.state in Run.ACTIVE_STATES:
                out[host.pk] = (run, f"being patched by run {run.pk}")
            elif why := own(run).get(f"maintenance:{short(host.name)}"):
                out[host.pk] = (run, f"left in maintenance by run {run.pk}: {why}")
    return out


def flag(hosts) -> list:
    """The hosts, each with ``maintenance_run`` and ``maintenance_note`` (None when no run explains it)."""
    hosts = list(hosts)
    found = maintenance_runs(hosts)
    for h in hosts:
        h.maintenance_run, h.maintenance_note = found.get(h.pk, (None, None))
    return hosts
