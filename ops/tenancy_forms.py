"""The admin forms for hosting plans and subscriptions (ops/views/plans.py, ops/views/subscriptions.py).

They only shape and bound the input; every rule of the domain (clouds on the plan's VMM server,
1 kept with "remove the oldest", a member VMM must list, a role already taken) is the services'
(ops/services/plans.py, ops/services/subscriptions.py), whose ValidationError the views put back on
the field it names (``put_errors``).
"""
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from . import roles
from .textcheck import refuse_hidden
from .models import CheckpointPermission, Cloud, Plan, PowerAction, ServerConnection, Subscription

# names travel to VMM as parameter values (never into script text); these bounds keep them sane
NAME_MAX = 100


def plain_text(value: str, what: str) -> str:
    """Refuse characters that hide or reorder text (ops/textcheck.py): a name must read as it is."""
    bad = refuse_hidden(value, what)
    if bad:
        raise ValidationError(bad)
    return value.strip()


class NamedForm(forms.Form):
    """A form whose "required" messages name the field ("Clouds: choose or fill this in")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            label = field.label or name.replace("_", " ").capitalize()
            field.error_messages["required"] = f"{label}: choose or fill this in"


class PlanForm(NamedForm):
    name = forms.CharField(max_length=NAME_MAX)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    connection = forms.ModelChoiceField(ServerConnection.objects.filter(kind="vmm"), label="VMM server",
                                        help_text="The server whose clouds the plan offers; it cannot change later.")
    clouds = forms.ModelMultipleChoiceField(Cloud.objects.select_related("connection").order_by("connection__name", "name"),
                                            widget=forms.CheckboxSelectMultiple,
                                            help_text="Clouds come from the inventory: sync it if one is missing.")
    state = forms.ChoiceField(choices=Plan.State.choices, initial=Plan.State.PRIVATE,
                              help_text="Private: only admins give out subscriptions. Decommissioned: no new ones.")
    checkpoint_permission = forms.ChoiceField(choices=CheckpointPermission.choices, label="Checkpoints",
                                              initial=CheckpointPermission.NONE)
    checkpoints_kept = forms.IntegerField(min_value=1, max_value=64, initial=1, label="Checkpoints kept per VM",
                                          help_text="1, as Azure Pack: a new checkpoint replaces the old one, after "
                                                    "a warning. More: the tenant is refused at the limit.")
    remove_oldest_when_full = forms.BooleanField(required=False, label="At the limit, remove the oldest after the new "
                                                                       "one exists (instead of refusing)")
    checkpoint_max_age_days = forms.IntegerField(required=False, min_value=1, max_value=3650,
                                                 label="Maximum checkpoint age (days)",
                                                 help_text="Empty: kept until the tenant removes them.")
    power_actions = forms.MultipleChoiceField(choices=PowerAction.choices, required=False,
                                              widget=forms.CheckboxSelectMultiple, label="Power actions tenants may take")

    def __init__(self, *args, plan: Plan | None = None, **kwargs):
        if plan is not None and not kwargs.get("initial"):
            kwargs["initial"] = {"name": plan.name, "description": plan.description, "connection": plan.connection_id,
                                 "clouds": list(plan.clouds.values_list("pk", flat=True)), "state": plan.state,
                                 "checkpoint_permission": plan.checkpoint_permission,
                                 "checkpoints_kept": plan.checkpoints_kept,
                                 "remove_oldest_when_full": plan.remove_oldest_when_full,
                                 "checkpoint_max_age_days": plan.checkpoint_max_age_days,
                                 "power_actions": plan.power_actions}
        super().__init__(*args, **kwargs)
        self.plan = plan
        if plan is not None:  # a plan's subscriptions live on its server: the server stays
            self.fields["connection"].disabled = True
            self.fields["clouds"].queryset = Cloud.objects.filter(connection=plan.connection_id).order_by("name")
        else:
            vmm = list(self.fields["connection"].queryset[:2])
            if len(vmm) == 1:  # one VMM server: it is the answer, preselected
                self.fields["connection"].initial = vmm[0].pk
        self.fields["clouds"].label_from_instance = lambda c: f"{c.name} ({c.connection.name})" if plan is None else c.name

    def clean_name(self):
        return plain_text(self.cleaned_data["name"], "A plan's name")

    def clean_description(self):
        return self.cleaned_data["description"].strip()

    def changes(self) -> dict:
        """The cleaned values as ops/services/plans.py takes them."""
        d = dict(self.cleaned_data)
        d.pop("connection", None)
        d["clouds"] = list(d["clouds"])
        return d


class MemberLines(forms.CharField):
    """One member per line: ``username DOMAIN\\account`` (the Slipway user, then the account as VMM lists it)."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": "alice CONTOSO\\alice"})

    def to_python(self, value):
        value = super().to_python(value) or ""
        users = get_user_model().objects
        out, seen = [], set()
        for n, line in enumerate(value.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValidationError(f"line {n}: expected 'username DOMAIN\\account', e.g. alice CONTOSO\\alice")
            username, vmm_user = parts
            plain_text(vmm_user, f"line {n}: the VMM account")
            user = users.filter(username=username).first()
            if user is None or not roles.is_tenant(user):
                raise ValidationError(f"line {n}: {username} is not a Slipway user with the tenant role")
            if user.pk in seen:
                raise ValidationError(f"line {n}: {username} is listed twice")
            seen.add(user.pk)
            out.append((user, vmm_user))
        return out


class SubscriptionForm(NamedForm):
    name = forms.CharField(max_length=NAME_MAX, label="Tenant account", help_text="e.g. Contoso")
    plan = forms.ModelChoiceField(Plan.objects.exclude(state=Plan.State.DECOMMISSIONED).order_by("name"))
    role_mode = forms.ChoiceField(choices=[("new", "Create a new VMM user role (tenant administrator)"),
                                           ("adopt", "Adopt a user role that exists in VMM")],
                                  initial="new", widget=forms.RadioSelect, label="VMM user role")
    user_role = forms.CharField(max_length=255, required=False, label="User role name (or ID, to adopt)",
                                help_text="New: empty names it after the account.")
    members = MemberLines(required=False, max_length=20000,
                          help_text="One per line: the Slipway user (a tenant), then the account as VMM lists it.")

    def clean_name(self):
        return plain_text(self.cleaned_data["name"], "A subscription's name")

    def clean_user_role(self):
        return plain_text(self.cleaned_data["user_role"], "A user role's name")

    def clean(self):
        data = super().clean()
        if data.get("role_mode") == "adopt" and not data.get("user_role"):
            self.add_error("user_role", "name the VMM user role to adopt (its name or ID)")
        return data


class MemberForm(NamedForm):
    user = forms.ModelChoiceField(get_user_model().objects.none(), label="Tenant user")
    vmm_user = forms.CharField(max_length=255, label="Account as VMM lists it", help_text="DOMAIN\\name")

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (get_user_model().objects.filter(groups__name=roles.TENANT)
                                        .exclude(subscription_memberships__subscription=subscription).order_by("username"))

    def clean_vmm_user(self):
        return plain_text(self.cleaned_data["vmm_user"], "The VMM account")


def put_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError on the field it names (else on the form)."""
    if hasattr(exc, "error_dict"):
        for field, errs in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, [m for e in errs for m in e.messages])
    else:
        form.add_error(None, exc.messages)
