"""Sign-in throttling (django-axes, see portal/settings.py "auth") and the audit
trail of sign-ins, failed sign-ins and sign-outs.

django-axes counts failures in the database (one count per user name and one
per client address, shared by every ASGI process over SQLite or PostgreSQL);
this module turns its lockout into the sign-in page with a message that says
why and how long to wait, and writes every sign-in, failed sign-in and sign-out
to the audit log through ops/services/audit.py. Every sign-in goes through
SignInView (portal/urls.py sends the Django admin's login there too)."""
import math

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import signals as auth_signals
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.db.models import Max, Q
from django.dispatch import receiver
from django.shortcuts import render
from django.utils import timezone

from ops.services import audit


def client_address(request) -> str:
    address = getattr(request, "axes_ip_address", None) if request is not None else None
    if not address and request is not None:
        address = request.META.get("REMOTE_ADDR", "")
    return address or ""


def attempted_username(request, credentials=None) -> str:
    name = (credentials or {}).get("username")
    if name is None and request is not None and request.method == "POST":
        name = request.POST.get("username", "")
    return (name or "")[:150]


def lockout_ends(username: str, address: str):
    """When the newest failure that counts against this user name or address stops counting."""
    latest = AccessAttempt.objects.filter(Q(username=username) | Q(ip_address=address)).aggregate(at=Max("attempt_time"))["at"]
    return (latest or timezone.now()) + settings.AXES_COOLOFF_TIME


def wait_text(until) -> str:
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_response(request, original_response=None, credentials=None):
    """settings.AXES_LOCKOUT_CALLABLE: the sign-in page again, saying why and for how long (HTTP 429)."""
    username = attempted_username(request, getattr(request, "axes_credentials", None))
    until = lockout_ends(username, client_address(request))
    form = AuthenticationForm(request, initial={"username": username})
    response = render(request, "portal/login.html", {
        "form": form,
        "next": request.POST.get("next", "") or request.GET.get("next", ""),
        "lockout": {"wait": wait_text(until), "until": until,
                    "limit": settings.AXES_FAILURE_LIMIT},
    }, status=429)
    response["Retry-After"] = str(max(1, math.ceil((until - timezone.now()).total_seconds())))
    return response


@receiver(auth_signals.user_login_failed, dispatch_uid="slipway-audit-signin-failed")
def audit_failed_sign_in(sender, credentials, request=None, **kwargs):
    locked = bool(getattr(request, "axes_locked_out", False))
    reason = "too many failed sign-ins: locked out" if locked else "wrong user name or password"
    audit.record(attempted_username(request, credentials) or "(no user name)", "signin.failed",
                 address=client_address(request), reason=reason)


class SignInView(LoginView):
    """The sign-in page; a sign-in is audited here (a failed one by the receiver above, which also
    sees refusals during a lockout and sign-ins tried elsewhere)."""
    template_name = "portal/login.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        user, address = form.get_user(), client_address(self.request)
        # the user's own mistakes from this address are forgiven; failures against other names still count
        AccessAttempt.objects.filter(username=user.get_username(), ip_address=address).delete()
        audit.record(user, "signin", address=address)
        return response


class SignOutView(LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            audit.record(request.user, "signout", address=client_address(request))
        return super().post(request, *args, **kwargs)
