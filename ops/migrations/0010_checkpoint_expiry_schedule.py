"""The hourly checkpoint expiry (ops/services/expiry.py): plans' maximum checkpoint age enforced by
clean-up runs. Frozen here as ops/system_schedules.py lists it today."""
from django.db import migrations

NAME, FUNC, MINUTES = "slipway: checkpoint expiry", "ops.services.expiry.expire_checkpoints", 60


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(name=NAME, defaults={"func": FUNC, "schedule_type": "I", "minutes": MINUTES,
                                                           "repeats": -1})


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("ops", "0009_engine_runbook_namespace")]
    operations = [migrations.RunPython(create, remove)]
