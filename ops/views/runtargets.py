"""What a run works on, as links: the runs list shows a batch run's batch and a
clean-up's cloud as the VM list filtered to them."""
from urllib.parse import urlencode

from django.urls import reverse

from ..models import Cloud
from ..vmfacts import BATCH_PROPERTY


def targets(runs) -> dict[int, list[tuple[str, str]]]:
    """Run pk -> [(label, url)] for the runs of one page."""
    runs = list(runs)
    clouds = {}
    if any(r.params.get("cloud") for r in runs):   # a fabric has a few dozen clouds
        for pk, name, conn in Cloud.objects.values_list("pk", "name", "connection_id"):
            clouds.setdefault((conn, name.lower()), pk)
    vms = reverse("ops:vms")
    out = {}
    for run in runs:
        p, links = run.params or {}, []
        if p.get("batch"):
            prop = p.get("property") or BATCH_PROPERTY
            links.append((f"batch {p['batch']}" + (f" ({prop})" if prop != BATCH_PROPERTY else ""),
                          f"{vms}?{urlencode({'batch': p['batch'], 'property': prop})}"))
        if p.get("cloud"):
            pk = clouds.get((run.connection_id, str(p["cloud"]).lower()))
            links.append((f"cloud {p['cloud']}", f"{vms}?cloud={pk}" if pk else ""))
        elif run.kind == "checkpoint-cleanup":
            links.append(("every VM", vms))
        out[run.pk] = links
    return out
