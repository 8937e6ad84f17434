"""A run's own runbook data moves under ``context['runbook']`` (ops/runbooks/base.py, ``own``);
the engine's stays in ``context['engine']``, the claims and holds at the top."""
from django.db import migrations

ENGINE_KEYS = {"engine", "claims", "holds", "runbook", "preflight"}


def forward(apps, schema_editor):
    Run = apps.get_model("ops", "Run")
    for run in Run.objects.all().only("pk", "context").iterator(chunk_size=500):
        ctx = run.context or {}
        moved = {k: v for k, v in ctx.items() if k not in ENGINE_KEYS}
        if not moved:
            continue
        rest = {k: v for k, v in ctx.items() if k in ENGINE_KEYS}
        rest.setdefault("runbook", {}).update(moved)
        Run.objects.filter(pk=run.pk).update(context=rest)


def backward(apps, schema_editor):
    Run = apps.get_model("ops", "Run")
    for run in Run.objects.all().only("pk", "context").iterator(chunk_size=500):
        ctx = dict(run.context or {})
        mine = ctx.pop("runbook", None) or {}
        if mine:
            ctx.update(mine)
            Run.objects.filter(pk=run.pk).update(context=ctx)


class Migration(migrations.Migration):
    dependencies = [("ops", "0008_merge_20261202_2209")]
    operations = [migrations.RunPython(forward, backward)]
