"""API tokens: a user creates one on their profile page (shown once), uses it, revokes it;
both audited, the key never in the audit log. ``manage.py drf_create_token`` works too."""
import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from ops.models import AuditEntry

pytestmark = pytest.mark.django_db


def bearer(client, key):
    return client.get("/api/v1/runs/", HTTP_AUTHORIZATION=f"Token {key}")


def test_create_see_once_use_and_revoke(client_for, operator):
    c = client_for(operator)
    page = c.get("/profile/").content.decode()
    assert "You have no token." in page and 'value="create"' in page
    created = c.post("/profile/", {"action": "create"})
    assert created.status_code == 200
    key = Token.objects.get(user=operator).key
    html = created.content.decode()
    assert f"<code data-new-token>{key}</code>" in html and "shown only this once" in html
    assert "no-store" in created["Cache-Control"]
    again = c.get("/profile/").content.decode()
    assert key not in again and "You have a token, created" in again and 'value="revoke"' in again

    from django.test import Client
    script = Client()
    assert bearer(script, key).status_code == 200
    entry = AuditEntry.objects.get(action="token.create")
    assert entry.username == "olga" and key not in str(entry.detail) and key not in entry.object_repr

    revoked = c.post("/profile/", {"action": "revoke"}, follow=True)
    assert "Your API token is revoked" in revoked.content.decode()
    assert not Token.objects.filter(user=operator).exists()
    assert bearer(script, key).status_code == 401
    assert AuditEntry.objects.filter(action="token.revoke", username="olga").count() == 1


def test_refusals_change_nothing(client_for, tenant):
    c = client_for(tenant)
    resp = c.post("/profile/", {"action": "revoke"})
    assert resp.status_code == 400 and "You have no API token to revoke." in resp.content.decode()
    c.post("/profile/", {"action": "create"})
    key = Token.objects.get(user=tenant).key
    resp = c.post("/profile/", {"action": "create"})
    assert resp.status_code == 400 and "You already have an API token" in resp.content.decode()
    assert Token.objects.get(user=tenant).key == key and key not in resp.content.decode()
    for action in ("", "delete", "create'; DROP TABLE authtoken_token; --", "x" * 10_000, "revoke\u202e"):
        resp = c.post("/profile/", {"action": action})
        assert resp.status_code == 400 and "expected create or revoke. Nothing changed." in resp.content.decode()
    assert Token.objects.get(user=tenant).key == key
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["token.create"]


def test_each_user_revokes_only_their_own(client_for, tenant, other_tenant):
    mine = Token.objects.create(user=tenant)
    theirs = Token.objects.create(user=other_tenant)
    client_for(tenant).post("/profile/", {"action": "revoke"})
    assert not Token.objects.filter(pk=mine.pk).exists() and Token.objects.filter(pk=theirs.pk).exists()


def test_anonymous_is_sent_to_sign_in(client):
    for method in ("get", "post"):
        resp = getattr(client, method)("/profile/", {"action": "create"})
        assert resp.status_code == 302 and resp.url.startswith("/login/")
    assert not Token.objects.exists()


def test_drf_create_token_command(operator, capsys):
    call_command("drf_create_token", "olga")
    key = Token.objects.get(user=operator).key
    assert key in capsys.readouterr().out
    from django.test import Client
    assert bearer(Client(), key).status_code == 200
