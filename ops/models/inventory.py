"""What the last inventory sync saw on each VMM server. Written only by
``ops.inventory.sync``; user-facing reads go through ``ops.authz.restrict``."""
from django.db import models

from .connections import ServerConnection


class FabricObject(models.Model):
    connection = models.ForeignKey(ServerConnection, on_delete=models.CASCADE, related_name="+")
    vmm_id = models.UUIDField(help_text="The object's ID on the VMM server.")
    name = models.CharField(max_length=255)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self):
        return self.name


class Cloud(FabricObject):
    description = models.TextField(blank=True)

    class Meta(FabricObject.Meta):
        constraints = [models.UniqueConstraint(fields=["connection", "vmm_id"], name="uniq_cloud")]


class HostCluster(FabricObject):
    class Meta(FabricObject.Meta):
        constraints = [models.UniqueConstraint(fields=["connection", "vmm_id"], name="uniq_cluster")]


class VMHost(FabricObject):
    cluster = models.ForeignKey(HostCluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="hosts")
    overall_state = models.CharField(max_length=32, blank=True)
    communication_state = models.CharField(max_length=32, blank=True)
    in_maintenance = models.BooleanField(default=False)
    total_memory_mb = models.BigIntegerField(default=0)
    available_memory_mb = models.BigIntegerField(default=0)

    class Meta(FabricObject.Meta):
        constraints = [models.UniqueConstraint(fields=["connection", "vmm_id"], name="uniq_host")]

    @property
    def responding(self) -> bool:
        return self.communication_state in ("", "Responding")


class VirtualMachine(FabricObject):
    host = models.ForeignKey(VMHost, null=True, blank=True, on_delete=models.SET_NULL, related_name="vms")
    cloud = models.ForeignKey(Cloud, null=True, blank=True, on_delete=models.SET_NULL, related_name="vms")
    status = models.CharField(max_length=32, blank=True)
    is_highly_available = models.BooleanField(default=False)
    memory_mb = models.BigIntegerField(default=0)
    owner = models.CharField(max_length=255, blank=True)
    user_role_id = models.CharField(max_length=64, blank=True, db_index=True,
                                    help_text="VMM's UserRoleID of the VM: which subscription's VM it is (ops/models/plans.py).")
    user_role_name = models.CharField(max_length=255, blank=True)
    custom = models.JSONField(default=dict, blank=True, help_text="Custom1..Custom10 and named custom properties.")
    checkpoint_count = models.PositiveIntegerField(default=0)
    oldest_checkpoint_at = models.DateTimeField(null=True, blank=True)

    class Meta(FabricObject.Meta):
        constraints = [models.UniqueConstraint(fields=["connection", "vmm_id"], name="uniq_vm")]
        indexes = [models.Index(fields=["connection", "name"])]


class Checkpoint(models.Model):
    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="checkpoints")
    vmm_id = models.UUIDField()
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    added_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [models.UniqueConstraint(fields=["vm", "vmm_id"], name="uniq_checkpoint")]

    def __str__(self):
        return f"{self.vm.name}: {self.name}"


class UserRole(FabricObject):
    profile = models.CharField(max_length=64, blank=True)
    permissions = models.JSONField(default=list, blank=True)

    class Meta(FabricObject.Meta):
        constraints = [models.UniqueConstraint(fields=["connection", "vmm_id"], name="uniq_userrole")]


class SyncRecord(models.Model):
    """One inventory sync of one server: when, how long, what it found or why it failed."""

    connection = models.ForeignKey(ServerConnection, on_delete=models.CASCADE, related_name="syncs")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
