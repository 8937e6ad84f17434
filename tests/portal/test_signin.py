"""Sign-in throttling per user name and per client address, and the audit trail of
sign-ins, failed sign-ins and sign-outs (portal/signin.py, django-axes)."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from ops.models import AuditEntry

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-9"


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in_as(client):
    response = client.get(reverse("home"))
    return None if response.status_code == 302 and reverse("login") in response["Location"] else response.wsgi_request.user.get_username()


def fail(client, username, times, address="10.0.0.1"):
    for _ in range(times):
        response = sign_in(client, username, "wrong", address)
        assert response.status_code == 200 and "didn't match" in response.content.decode()


def test_a_user_name_is_locked_after_the_limit_and_told_how_long_to_wait(client, make_user):
    make_user("ursula", "operator", password=PASSWORD)
    fail(client, "ursula", settings.AXES_FAILURE_LIMIT - 1)
    response = sign_in(client, "ursula", "wrong")  # the limit-th failure locks
    assert response.status_code == 429
    response = sign_in(client, "ursula", PASSWORD)  # the right password does not help now
    page = response.content.decode()
    assert response.status_code == 429, page
    assert "Too many failed sign-ins for this user name or from this address" in page
    assert "refused for 15 minutes" in page and "UTC" in page
    assert 14 * 60 <= int(response["Retry-After"]) <= 15 * 60
    assert signed_in_as(client) is None


def test_the_lock_on_a_user_name_holds_from_any_address(client, make_user):
    make_user("ursula", "operator", password=PASSWORD)
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "ursula", "wrong", address=f"10.0.1.{i}")
    assert sign_in(client, "ursula", PASSWORD, address="10.0.2.1").status_code == 429
    assert signed_in_as(client) is None


def test_an_address_is_locked_for_every_user_name_and_other_addresses_are_not(client, make_user):
    make_user("ursula", "operator", password=PASSWORD)
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"guess{i}", "wrong", address="10.6.6.6")  # one failure per name, all from one address
    response = sign_in(client, "ursula", PASSWORD, address="10.6.6.6")
    assert response.status_code == 429 and "Too many failed sign-ins" in response.content.decode()
    assert signed_in_as(client) is None
    response = sign_in(client, "ursula", PASSWORD, address="10.0.0.7")
    assert response.status_code == 302 and signed_in_as(client) == "ursula"


def test_a_sign_in_forgives_the_users_own_failures(client, make_user):
    make_user("ursula", "operator", password=PASSWORD)
    fail(client, "ursula", settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, "ursula", PASSWORD).status_code == 302
    client.post(reverse("logout"), REMOTE_ADDR="10.0.0.1")
    fail(client, "ursula", settings.AXES_FAILURE_LIMIT - 1)  # counted afresh: not locked
    assert sign_in(client, "ursula", PASSWORD).status_code == 302


def test_signing_in_to_ones_own_account_does_not_wipe_the_failures_against_another(client, make_user):
    make_user("victim", "admin", password=PASSWORD)
    make_user("mallory", "tenant", password="mallory-pw-1")
    fail(client, "victim", settings.AXES_FAILURE_LIMIT - 1, address="10.6.6.6")
    assert sign_in(client, "mallory", "mallory-pw-1", address="10.6.6.6").status_code == 302
    client.post(reverse("logout"), REMOTE_ADDR="10.6.6.6")
    assert sign_in(client, "victim", "wrong", address="10.6.6.6").status_code == 429
    assert sign_in(client, "victim", PASSWORD, address="10.7.7.7").status_code == 429  # the name is locked everywhere


def test_the_lock_ends_after_the_wait(client, make_user):
    from axes.models import AccessAttempt

    make_user("ursula", "operator", password=PASSWORD)
    fail(client, "ursula", settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, "ursula", "wrong").status_code == 429
    earlier = settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    for attempt in AccessAttempt.objects.all():  # the wait has passed
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - earlier)
    assert sign_in(client, "ursula", PASSWORD).status_code == 302
    assert signed_in_as(client) == "ursula"


def test_sign_ins_failures_and_sign_outs_are_in_the_audit_log(client, make_user):
    make_user("ursula", "operator", password=PASSWORD)
    sign_in(client, "ursula", "wrong", address="10.0.0.9")
    sign_in(client, "nosuchuser", "wrong", address="10.0.0.9")
    sign_in(client, "ursula", PASSWORD, address="10.0.0.9")
    client.post(reverse("logout"), REMOTE_ADDR="10.0.0.9")
    entries = [(e.username, e.action, e.detail) for e in AuditEntry.objects.order_by("id")]
    assert entries == [
        ("ursula", "signin.failed", {"address": "10.0.0.9", "reason": "wrong user name or password"}),
        ("nosuchuser", "signin.failed", {"address": "10.0.0.9", "reason": "wrong user name or password"}),
        ("ursula", "signin", {"address": "10.0.0.9"}),
        ("ursula", "signout", {"address": "10.0.0.9"}),
    ]
    assert "wrong" not in str(entries).replace("wrong user name", "")  # never the password typed


def test_a_refused_sign_in_during_a_lockout_is_audited_as_such(client, make_user):
    make_user("ursula", "operator", password=PASSWORD)
    fail(client, "ursula", settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, "ursula", "wrong").status_code == 429
    assert sign_in(client, "ursula", PASSWORD).status_code == 429
    last = AuditEntry.objects.order_by("-id").first()
    assert (last.username, last.action, last.detail["reason"]) == ("ursula", "signin.failed", "too many failed sign-ins: locked out")
    assert not AuditEntry.objects.filter(action="signin").exists()


def test_the_audit_page_shows_sign_ins_to_operators(client, make_user):
    make_user("ursula", "operator", password=PASSWORD)
    sign_in(client, "ursula", PASSWORD, address="10.0.0.3")
    page = client.get(reverse("ops:audit"), {"action": "signin"}).content.decode()
    assert "signin" in page and "10.0.0.3" in page


def test_the_django_admin_signs_in_through_the_same_throttled_audited_page(client):
    response = client.get("/django-admin/login/?next=/django-admin/")
    assert response.status_code == 302 and response["Location"] == reverse("login") + "?next=/django-admin/"
