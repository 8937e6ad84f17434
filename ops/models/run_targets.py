"""Which inventory VMs a run acts on, as rows: what lets a tenant watch a run on
their VM whoever started it (``ops/authz.py``), in one query. Written by
``ops.services.runs.start_run`` from the runbook's claims (``Prepared.claims``)."""
from django.db import models


class RunTarget(models.Model):
    run = models.ForeignKey("ops.Run", on_delete=models.CASCADE, related_name="targets")
    vm = models.ForeignKey("ops.VirtualMachine", on_delete=models.CASCADE, related_name="run_targets")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "vm"], name="uniq_run_target")]

    def __str__(self):
        return f"run {self.run_id} -> vm {self.vm_id}"
