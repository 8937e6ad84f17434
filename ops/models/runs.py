"""Runs, their steps and their event log: the durable truth of every long action.

A Run is advanced by the engine (``ops.engine``) one step per task under a
lease; every state change is committed together with the RunEvent rows that
describe it. Watchers (browser, CLI) read RunEvent rows ordered by ``seq``.
"""
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Run(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting for the operator"
        PAUSED = "paused", "Paused"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING, State.WAITING, State.PAUSED)
    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=64, db_index=True, help_text="Runbook name, e.g. batch-checkpoint.")
    title = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="What the runbook learned and must remember (e.g. which VMs it stopped).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    phase = models.CharField(max_length=64, blank=True, help_text="Current phase (junction-delimited stage) of the runbook.")
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True, help_text="Outcome summary, or why it failed.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    schedule = models.ForeignKey("ops.RunSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    connection = models.ForeignKey("ops.ServerConnection", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    target_key = models.CharField(max_length=255, blank=True, db_index=True,
                                  help_text="What the run works on (e.g. 'vmm01:batch:Custom1=3'); two active runs of one kind never share it.")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                           help_text="Unique across installations and databases: the marker on what the run makes in the fabric.")
    cancel_requested = models.BooleanField(default=False)
    abort_requested = models.BooleanField(default=False, help_text="The operator gave up: undo what can be undone, then fail.")
    abort_by = models.CharField(max_length=150, blank=True)
    paused_since = models.DateTimeField(null=True, blank=True, help_text="A server has not answered since then.")
    next_try_at = models.DateTimeField(null=True, blank=True, help_text="When a paused run tries again.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_seq = models.PositiveIntegerField(default=0, help_text="seq of the newest RunEvent.")
    ticks = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Run {self.pk} ({self.kind})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def state_label(self) -> str:
        return state_label(self.state, self.cancel_requested, self.abort_requested)

    @property
    def can_stop(self) -> bool:
        """Cancel is offered while the run is active and nobody asked to stop it yet."""
        return self.is_active and not self.cancel_requested and not self.abort_requested

    @property
    def next_try_in(self) -> str:
        """A paused run's next try, for the page: "8 s", "now"."""
        if self.next_try_at is None:
            return ""
        left = (self.next_try_at - timezone.now()).total_seconds()
        return f"{left:.0f} s" if left >= 1 else "now"

    @property
    def shown_progress(self) -> int:
        """The progress to show: a succeeded run reads 100 %, whatever was last written."""
        return 100 if self.state == self.State.SUCCEEDED else self.progress


def state_label(state: str, cancel_requested: bool = False, abort_requested: bool = False) -> str:
    """What the pages say of a run's state: an active run that was told to stop says so."""
    if state in Run.ACTIVE_STATES and state != Run.State.WAITING and (abort_requested or cancel_requested):
        return "Aborting" if abort_requested else "Cancelling"
    return str(Run.State(state).label) if state in Run.State.values else state


class Step(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting for the operator"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.SKIPPED, State.CANCELLED)

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField(help_text="Order within the run.")
    phase = models.CharField(max_length=64, help_text="Phase this step belongs to; a junction waits for every step of a phase.")
    action = models.CharField(max_length=64, help_text="What the step does, e.g. stop-vm, new-checkpoint.")
    target = models.CharField(max_length=255, blank=True, help_text="Name of the VM / host / object it acts on.")
    target_id = models.CharField(max_length=64, blank=True)
    compensation = models.BooleanField(default=False, help_text="Part of the clean-up that runs after a failure or cancel.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    job_id = models.CharField(max_length=64, blank=True, help_text="VMM job running this step, if any.")
    data = models.JSONField(default=dict, blank=True, help_text="Inputs the step needs.")
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="uniq_step_index")]
        indexes = [models.Index(fields=["state", "job_id"])]

    def __str__(self):
        return f"{self.action} {self.target}".strip()


class RunEvent(models.Model):
    class Level(models.TextChoices):
        DEBUG = "debug", "Debug"
        INFO = "info", "Info"
        SUCCESS = "success", "Success"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    message = models.TextField()
    progress = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Run progress 0-100 after this event.")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="uniq_event_seq")]

    def __str__(self):
        return f"#{self.seq} {self.message}"


class RunSchedule(models.Model):
    """An operator's cron schedule for a runbook; django-q2's Schedule fires it.

    It keeps the VMM (and SCOM) connection the operator chose when it was saved, so a
    connection added later changes nothing, and what its last slot did (started a run,
    skipped, refused and why), so a schedule never stops silently."""

    class SlotOutcome(models.TextChoices):
        STARTED = "started", "Started a run"
        SKIPPED = "skipped", "Skipped"
        REFUSED = "refused", "Refused"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    cron = models.CharField(max_length=100, help_text="Five-field cron expression, UTC, e.g. '0 2 * * *'.")
    enabled = models.BooleanField(default=True)
    q_schedule = models.OneToOneField("django_q.Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    connection = models.ForeignKey("ops.ServerConnection", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="schedules", help_text="The VMM connection chosen when it was saved.")
    scom_connection = models.ForeignKey("ops.ServerConnection", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="scom_schedules", help_text="The SCOM connection chosen when it was saved.")
    last_slot_at = models.DateTimeField(null=True, blank=True)
    last_slot_outcome = models.CharField(max_length=16, choices=SlotOutcome.choices, blank=True)
    last_slot_message = models.TextField(blank=True, help_text="Why the last slot was skipped or refused.")

    class Meta:
        ordering = ["name"]

    @property
    def refusing(self) -> bool:
        return self.enabled and self.last_slot_outcome == self.SlotOutcome.REFUSED

    @property
    def state_label(self) -> str:
        if not self.enabled:
            return "paused"
        return "refusing" if self.refusing else "active"

    def __str__(self):
        return self.name
