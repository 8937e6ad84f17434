from django.db import migrations

# Frozen: what this migration created when it was written. It used to import the live list from
# ops/system_schedules.py, so a fresh database got whatever that list held that day (once a second
# reaper schedule) and importing the migrations pulled in the run engine; schedules added later have
# their own migration (ops/migrations/0010_checkpoint_expiry_schedule.py).
SYSTEM_SCHEDULES = [("slipway: inventory sync", "ops.inventory.sync.sync_all", 5)]


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in SYSTEM_SCHEDULES:
        Schedule.objects.update_or_create(name=name, defaults={"func": func, "schedule_type": "I", "minutes": minutes,
                                                               "repeats": -1})


def remove(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[name for name, _, _ in SYSTEM_SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("ops", "0001_initial"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(create, remove)]
