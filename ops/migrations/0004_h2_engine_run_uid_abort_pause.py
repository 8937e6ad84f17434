"""Runs get a UUID (the marker on what they make in the fabric, unique across databases),
an abort request that works in every active state, and the pause's times."""
import uuid

from django.db import migrations, models


def give_each_run_its_own_uid(apps, schema_editor):
    Run = apps.get_model("ops", "Run")
    for pk in Run.objects.values_list("pk", flat=True).iterator():
        Run.objects.filter(pk=pk).update(uid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("ops", "0003_connection_job_timeout")]

    operations = [
        migrations.AddField(model_name="run", name="uid", field=models.UUIDField(null=True, editable=False)),
        migrations.RunPython(give_each_run_its_own_uid, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="run", name="uid",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                                   help_text="Unique across installations and databases: the marker on what the run makes in the fabric.")),
        migrations.AddField(model_name="run", name="abort_requested", field=models.BooleanField(
            default=False, help_text="The operator gave up: undo what can be undone, then fail.")),
        migrations.AddField(model_name="run", name="abort_by", field=models.CharField(blank=True, max_length=150)),
        migrations.AddField(model_name="run", name="paused_since", field=models.DateTimeField(
            blank=True, null=True, help_text="A server has not answered since then.")),
        migrations.AddField(model_name="run", name="next_try_at", field=models.DateTimeField(
            blank=True, null=True, help_text="When a paused run tries again.")),
    ]
