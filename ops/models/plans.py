"""Hosting plans and the subscriptions tenants hold on them (issue 7, section 2).

A plan says which clouds of one VMM server it offers and what its tenants may do
with their VMs (checkpoints, power). A subscription is one tenant account on a
plan: its members are Django users, and its VMM user role is what ties it to VMs
(a subscription's VMs are the inventory's VMs whose ``user_role_id`` is the
subscription's). Who may do what is decided in ``ops/authz.py`` from these rows;
nothing here checks permissions.
"""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class CheckpointPermission(models.TextChoices):
    """Ordered from strictest to widest; VMM's user-role permission in brackets."""

    NONE = "none", "None"
    VIEW_RESTORE = "view_restore", "View and restore"  # VMM: CheckpointRestoreOnly
    CREATE_VIEW_RESTORE = "create_view_restore", "Create, view and restore"  # VMM: Checkpoint


PERMISSION_ORDER = [CheckpointPermission.NONE, CheckpointPermission.VIEW_RESTORE, CheckpointPermission.CREATE_VIEW_RESTORE]


def at_least(level: str) -> list[str]:
    """The permissions that include ``level`` (e.g. view_restore -> view_restore, create_view_restore)."""
    return [str(p) for p in PERMISSION_ORDER[PERMISSION_ORDER.index(level):]]


def stricter(a: str, b: str) -> str:
    """The stricter of two checkpoint permissions."""
    return str(PERMISSION_ORDER[min(PERMISSION_ORDER.index(a), PERMISSION_ORDER.index(b))])


class PowerAction(models.TextChoices):
    START = "start", "Start"
    SHUTDOWN = "shutdown", "Shut down"  # the guest OS shuts down
    STOP = "stop", "Turn off"  # power cut: unsaved guest state is lost
    SAVE = "save", "Save state"


class Plan(models.Model):
    class State(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Private"
        DECOMMISSIONED = "decommissioned", "Decommissioned"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    connection = models.ForeignKey("ops.ServerConnection", on_delete=models.PROTECT, related_name="plans",
                                   limit_choices_to={"kind": "vmm"}, help_text="The VMM server whose clouds the plan offers.")
    clouds = models.ManyToManyField("ops.Cloud", related_name="plans", help_text="The clouds the plan offers.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PRIVATE, db_index=True,
                             help_text="Decommissioned: existing subscriptions go on, no new ones (as in Azure Pack).")
    checkpoint_permission = models.CharField(max_length=24, choices=CheckpointPermission.choices,
                                             default=CheckpointPermission.NONE)
    checkpoints_kept = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="Checkpoints per VM. 1: a new checkpoint replaces the old one (the tenant is warned first).")
    remove_oldest_when_full = models.BooleanField(
        default=False, help_text="With more than 1 kept: at the limit, remove the oldest once the new one exists "
                                 "(otherwise the tenant is refused and told which to delete).")
    checkpoint_max_age_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Optional: older checkpoints are removed by the clean-up schedule.")
    allow_start = models.BooleanField(default=True, verbose_name="Start")
    allow_shutdown = models.BooleanField(default=True, verbose_name="Shut down")
    allow_stop = models.BooleanField(default=False, verbose_name="Turn off")
    allow_save = models.BooleanField(default=False, verbose_name="Save state")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def power_actions(self) -> list[str]:
        """The power actions the plan allows, in PowerAction order."""
        return [str(a) for a in PowerAction if getattr(self, f"allow_{a}")]

    def clean(self):
        if self.remove_oldest_when_full and self.checkpoints_kept == 1:
            raise ValidationError({"remove_oldest_when_full": "With 1 checkpoint kept a new one always replaces the old; "
                                                              "'remove the oldest' needs more than 1 kept."})


class Subscription(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"  # members see their VMs but cannot act

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    name = models.CharField(max_length=100, unique=True, help_text="The tenant account, e.g. Contoso.")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="SubscriptionMember", related_name="subscriptions",
                                     blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE, db_index=True)
    user_role_id = models.CharField(max_length=64, blank=True, db_index=True,
                                    help_text="ID of the subscription's VMM user role; its VMs are the VMs of this role.")
    user_role_name = models.CharField(max_length=255, blank=True)
    enforced_permission = models.CharField(
        max_length=24, choices=CheckpointPermission.choices, blank=True,
        help_text="The checkpoint permission VMM's user role is known to carry while a plan change is being pushed "
                  "(set by the plan update run); blank when it matches the plan. Slipway enforces the stricter of "
                  "this and the plan's.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user_role_id"], condition=~Q(user_role_id=""),
                                               name="uniq_subscription_user_role")]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.user_role_id = self.user_role_id.strip().lower()  # as inventory stores VirtualMachine.user_role_id
        super().save(*args, **kwargs)

    @property
    def checkpoint_permission(self) -> str:
        """What Slipway lets the members do now: the stricter of the plan's and the one VMM is known to carry."""
        return stricter(self.plan.checkpoint_permission, self.enforced_permission or self.plan.checkpoint_permission)

    @property
    def checkpoint_permission_label(self) -> str:
        return CheckpointPermission(self.checkpoint_permission).label


class SubscriptionMember(models.Model):
    """One member of a subscription: the Django user who signs in, and the same person as VMM
    lists them in the subscription's user role (``vmm_user``, e.g. ``CONTOSO\\alice``). Every
    VMM call made for this member carries ``-OnBehalfOfUser <vmm_user>`` (ops/fabric/behalf.py)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription_memberships")
    vmm_user = models.CharField(max_length=255, help_text="The account as VMM lists it in the user role, e.g. CONTOSO\\alice.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscription__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["subscription", "user"], name="uniq_subscription_member")]

    def __str__(self):
        return f"{self.vmm_user} in {self.subscription}"

    def on_behalf_of(self) -> tuple[str, str]:
        """(user, role ID) for the fabric calls made for this member (ops/fabric/vmm.py ``on_behalf_of``)."""
        return self.vmm_user, self.subscription.user_role_id
