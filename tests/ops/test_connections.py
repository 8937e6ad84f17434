"""Server connections: admins only; the password is encrypted, never shown back, never audited."""
import pytest
from django.urls import reverse

from ops.models import AuditEntry, ServerConnection

pytestmark = pytest.mark.django_db

GOOD = {"name": "vmm02", "kind": "vmm", "host": "vmm02.contoso.com", "port": "5986", "use_https": "on", "auth": "kerberos",
        "cert_validation": "on", "username": "CONTOSO\\svc-slipway", "password": "S3cret!pass", "max_concurrent_jobs": "8",
        "operation_timeout": "30", "job_timeout": "3600", "enabled": "on"}


def test_only_admins_reach_connection_pages(client, client_for, operator, tenant, admin_user):
    url = reverse("ops:connections")
    assert client.get(url).status_code == 302
    assert client_for(tenant).get(url).status_code == 403
    assert client_for(operator).get(url).status_code == 403
    assert client_for(operator).post(reverse("ops:connection_new"), GOOD).status_code == 403
    assert not ServerConnection.objects.exists()
    assert client_for(admin_user).get(url).status_code == 200


def test_admin_creates_a_connection_with_an_encrypted_password(client_for, admin_user):
    c = client_for(admin_user)
    response = c.post(reverse("ops:connection_new"), GOOD)
    assert response.status_code == 302
    conn = ServerConnection.objects.get(name="vmm02")
    assert conn.password_encrypted and "S3cret" not in conn.password_encrypted
    assert conn.get_password() == "S3cret!pass"
    page = c.get(reverse("ops:connection_edit", args=[conn.pk])).content.decode()
    assert "S3cret" not in page and "A password is stored" in page
    entry = AuditEntry.objects.get(action="connection.create")
    assert "S3cret" not in str(entry.detail)


def test_editing_without_password_keeps_it(client_for, admin_user):
    c = client_for(admin_user)
    c.post(reverse("ops:connection_new"), GOOD)
    conn = ServerConnection.objects.get(name="vmm02")
    response = c.post(reverse("ops:connection_edit", args=[conn.pk]), {**GOOD, "password": "", "port": "5985"})
    assert response.status_code == 302
    conn.refresh_from_db()
    assert conn.port == 5985 and conn.get_password() == "S3cret!pass"


def test_every_setting_of_the_form_is_saved(client_for, admin_user):
    c = client_for(admin_user)
    c.post(reverse("ops:connection_new"), {**GOOD, "job_timeout": "900"})
    conn = ServerConnection.objects.get(name="vmm02")
    assert conn.job_timeout == 900
    c.post(reverse("ops:connection_edit", args=[conn.pk]),
           {**GOOD, "password": "", "job_timeout": "45", "operation_timeout": "12", "max_concurrent_jobs": "3"})
    conn.refresh_from_db()
    assert (conn.job_timeout, conn.operation_timeout, conn.max_concurrent_jobs) == (45, 12, 3)


@pytest.mark.parametrize("field,value,message", [
    ("port", "70000", "less than or equal to 65535"),
    ("job_timeout", "-5", "greater than or equal to 1"),
    ("job_timeout", "0", "greater than or equal to 1"),
    ("operation_timeout", "2", "greater than or equal to 5"),
    ("name", "vmm 02!", "Enter a valid"),
    ("auth", "telnet", "Select a valid choice"),
    ("password", "", "A new connection needs a password"),
    ("host", "", "This field is required"),
])
def test_bad_input_is_refused_and_changes_nothing(client_for, admin_user, field, value, message):
    response = client_for(admin_user).post(reverse("ops:connection_new"), {**GOOD, field: value})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ServerConnection.objects.exists()
    assert not AuditEntry.objects.exists()


def test_test_button_reports_success_and_wrong_password(client_for, admin_user, sim):
    c = client_for(admin_user)
    page = c.post(reverse("ops:connection_test", args=[sim.vmm.pk]), follow=True).content.decode()
    assert "vmm01: connected" in page
    sim.vmm.set_password("wrong-password")
    sim.vmm.save()
    page = c.post(reverse("ops:connection_test", args=[sim.vmm.pk]), follow=True).content.decode()
    assert "VMM server vmm01" in page and "refused the credentials" in page
    assert "wrong-password" not in page


def test_delete_requires_post_and_admin(client_for, admin_user, operator, sim):
    url = reverse("ops:connection_delete", args=[sim.scom.pk])
    assert client_for(operator).post(url).status_code == 403
    assert client_for(admin_user).get(url).status_code == 405
    assert client_for(admin_user).post(url).status_code == 302
    assert not ServerConnection.objects.filter(name="scom01").exists()


def test_a_connection_with_hosting_plans_is_not_deleted(client_for, admin_user, plan):
    conn = plan.connection
    page = client_for(admin_user).post(reverse("ops:connection_delete", args=[conn.pk]), follow=True).content.decode()
    assert f"Connection {conn.name} is the VMM server of hosting plans (Gold)" in page and "Nothing was deleted" in page
    assert ServerConnection.objects.filter(pk=conn.pk).exists()
    assert not AuditEntry.objects.filter(action="connection.delete").exists()
