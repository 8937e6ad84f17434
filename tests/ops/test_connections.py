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
    ("port", "0", "greater than or equal to 1"),
    ("job_timeout", "-5", "greater than or equal to 1"),
    ("job_timeout", "0", "greater than or equal to 1"),
    ("operation_timeout", "2", "greater than or equal to 5"),
    ("name", "vmm 02!", "may hold only letters, digits, hyphens and underscores"),
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


# --- how the connection reaches its server (issue 8) ------------------------------------------------
def _tls_server(sim, **issue):
    from ops.simulator import tls
    from ops.simulator.server import start_simulator

    material = tls.issue("127.0.0.1", **issue) if issue else None
    return start_simulator(sim.engine, port=0, username="slipway", password=sim.server.password, https=True,
                           tls=material)


def _https_connection(server, ca_bundle="", auth="basic"):
    conn = ServerConnection(name="vmm-tls", kind="vmm", host=server.host, port=server.port, use_https=True, auth=auth,
                            cert_validation=True, ca_bundle=ca_bundle, username="slipway", operation_timeout=10)
    conn.set_password(server.password)
    conn.save()
    return conn


def _test_page(client, conn):
    return client.post(reverse("ops:connection_test", args=[conn.pk]), follow=True).content.decode()


def test_test_button_says_ntlm_with_encrypted_messages(client_for, admin_user, sim):
    assert sim.vmm.auth == "ntlm" and not sim.vmm.use_https
    page = _test_page(client_for(admin_user), sim.vmm)
    assert "vmm01: connected (NTLM, messages encrypted)" in page


def test_test_button_says_https_certificate_valid_with_pasted_ca(client_for, admin_user, sim):
    server = _tls_server(sim)
    try:
        conn = _https_connection(server, ca_bundle=server.certificate.ca_pem.decode())
        page = _test_page(client_for(admin_user), conn)
        expires = server.certificate.not_after.date().isoformat()
        assert f"connected (Basic over HTTPS, certificate valid (CN=127.0.0.1, expires {expires}))" in page
    finally:
        server.stop()


@pytest.mark.parametrize("issue,bundle,cause,fix", [
    ({}, "", "signed by a CA Slipway does not trust", "CA bundle"),
    ({"days": -1}, "ca", "certificate has expired", "renew the certificate"),
    ({"names": ["vmm99.contoso.com"]}, "ca", "not issued for &#x27;127.0.0.1&#x27;", "enter in Host the name"),
])
def test_certificate_problems_name_the_cause_and_the_fix(client_for, admin_user, sim, issue, bundle, cause, fix):
    server = _tls_server(sim, **issue) if issue else _tls_server(sim)
    try:
        conn = _https_connection(server, ca_bundle=server.ca_file if bundle else "")
        page = _test_page(client_for(admin_user), conn)
        assert "VMM server vmm-tls" in page and cause in page and fix in page
        conn.refresh_from_db()
        assert "vmm-tls" in conn.last_error and conn.last_ok_at is None
    finally:
        server.stop()


def test_wrong_password_names_the_fix(client_for, admin_user, sim):
    sim.vmm.set_password("wrong-password")
    sim.vmm.save()
    page = _test_page(client_for(admin_user), sim.vmm)
    assert "refused the credentials of &#x27;slipway&#x27;" in page and "check the user name" in page


def test_unencrypted_ntlm_is_refused_with_cause_and_fix(sim):
    from ops.fabric import errors, vmm
    from ops.fabric.session import FabricSession, ServerSettings

    settings = ServerSettings.from_connection(sim.vmm)
    session = FabricSession(ServerSettings(**{**settings.__dict__, "encryption": "never"}))
    try:
        with pytest.raises(errors.FabricAuthError) as info:
            vmm.list_clouds(session)
    finally:
        session.close()
    assert "refuses unencrypted messages" in str(info.value) and "let Slipway encrypt them" in str(info.value)


def test_basic_over_http_to_a_listener_that_refuses_it_names_the_safe_choices(sim):
    from ops.fabric import errors, vmm
    from ops.fabric.session import FabricSession, ServerSettings
    from ops.simulator.server import start_simulator

    server = start_simulator(sim.engine, port=0, password="pw-strict-1", allow_unencrypted=False)
    session = FabricSession(ServerSettings(name="vmm01", kind="vmm", host=server.host, port=server.port,
                                           use_https=False, auth="basic", cert_validation=False, username="slipway",
                                           password="pw-strict-1", timeout=10))
    try:
        with pytest.raises(errors.FabricAuthError) as info:
            vmm.list_clouds(session)
        assert "refuses Basic over HTTP" in str(info.value) and "choose NTLM" in str(info.value)
        ntlm = FabricSession(ServerSettings(**{**session.settings.__dict__, "auth": "ntlm"}))
        assert len(vmm.list_clouds(ntlm)) == 3   # the same listener takes NTLM with encrypted messages
        ntlm.close()
    finally:
        session.close()
        server.stop()


def test_basic_over_http_to_a_remote_host_is_refused_naming_the_safe_choices(client_for, admin_user):
    c = client_for(admin_user)
    response = c.post(reverse("ops:connection_new"), {**GOOD, "use_https": "", "port": "5985", "auth": "basic"})
    page = response.content.decode()
    assert response.status_code == 200 and "Basic over plain HTTP" in page
    assert "Choose NTLM" in page and "HTTPS (port 5986)" in page
    assert not ServerConnection.objects.exists() and not AuditEntry.objects.exists()
    # NTLM over HTTP (encrypted messages), and Basic over HTTPS, are saved
    assert c.post(reverse("ops:connection_new"), {**GOOD, "use_https": "", "port": "5985", "auth": "ntlm"}).status_code == 302
    assert c.post(reverse("ops:connection_new"), {**GOOD, "name": "vmm03", "auth": "basic"}).status_code == 302
    # on the same machine (the simulator, a tunnel) nothing crosses the network
    local = {**GOOD, "name": "vmm04", "host": "127.0.0.1", "use_https": "", "port": "5985", "auth": "basic"}
    assert c.post(reverse("ops:connection_new"), local).status_code == 302


@pytest.mark.parametrize("bundle,message", [
    ("contoso-ca.pem", "Give the path of a PEM file"),
    ("/nonexistent/contoso-ca.pem", "No file /nonexistent/contoso-ca.pem"),
    ("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----", "not a PEM CA certificate"),
])
def test_a_ca_bundle_that_cannot_be_used_is_refused(client_for, admin_user, bundle, message):
    response = client_for(admin_user).post(reverse("ops:connection_new"), {**GOOD, "ca_bundle": bundle})
    assert response.status_code == 200 and message in response.content.decode()
    assert not ServerConnection.objects.exists()


def test_a_ca_bundle_path_or_pem_is_saved(client_for, admin_user, tmp_path):
    from ops.simulator import tls

    pem = tls.issue("vmm02.contoso.com").ca_pem.decode()
    (tmp_path / "ca.pem").write_text(pem)
    c = client_for(admin_user)
    assert c.post(reverse("ops:connection_new"), {**GOOD, "ca_bundle": str(tmp_path / "ca.pem")}).status_code == 302
    assert ServerConnection.objects.get(name="vmm02").ca_bundle == str(tmp_path / "ca.pem")
    assert c.post(reverse("ops:connection_new"), {**GOOD, "name": "vmm03", "ca_bundle": pem}).status_code == 302
    assert ServerConnection.objects.get(name="vmm03").ca_bundle == pem.strip()


def test_the_list_says_how_each_connection_reaches_its_server(client_for, admin_user, sim):
    page = client_for(admin_user).get(reverse("ops:connections")).content.decode()
    assert "NTLM, messages encrypted" in page and "not encrypted" not in page
    ServerConnection.objects.create(name="vmm-local", kind="vmm", host="127.0.0.1", port=5985, auth="basic",
                                    username="u", use_https=False)
    ServerConnection.objects.create(name="vmm-tls", kind="vmm", host="vmm09.contoso.com", port=5986, auth="kerberos",
                                    username="u", use_https=True, ca_bundle="/etc/ssl/contoso-ca.pem")
    page = client_for(admin_user).get(reverse("ops:connections")).content.decode()
    assert "Basic over HTTP, messages NOT encrypted" in page and "badge warn\">not encrypted" in page
    assert "Kerberos over HTTPS, certificate checked against its CA bundle" in page


@pytest.mark.parametrize("auth,fix", [("kerberos", "pip install pypsrp[kerberos]"),
                                      ("credssp", "pip install pypsrp[credssp]")])
def test_auth_that_cannot_start_here_names_what_to_install(client_for, admin_user, sim, auth, fix):
    missing = {"kerberos": "gssapi", "credssp": "requests_credssp"}[auth]
    try:
        __import__(missing)
        pytest.skip(f"{missing} is installed on this host: this auth can start")
    except ImportError:
        pass
    sim.vmm.auth = auth
    sim.vmm.save()
    page = _test_page(client_for(admin_user), sim.vmm)
    assert "VMM server vmm01" in page and "cannot start on Slipway&#x27;s host" in page and fix in page


def test_admin_adds_a_configmgr_connection_and_tests_it(client_for, admin_user, sim):
    c = client_for(admin_user)
    data = {**GOOD, "name": "cm01", "kind": "configmgr", "host": sim.server.host, "port": str(sim.server.port),
            "use_https": "", "auth": "basic", "cert_validation": "", "username": sim.server.username,
            "password": sim.server.password}
    assert c.post(reverse("ops:connection_new"), data).status_code == 302
    conn = ServerConnection.objects.get(name="cm01")
    assert conn.kind == "configmgr" and conn.get_kind_display() == "ConfigMgr site server"
    page = c.post(reverse("ops:connection_test", args=[conn.pk]), follow=True).content.decode()
    assert "the ConfigMgr site CM1: answers and has 1 software update deployment(s)." in page


@pytest.mark.parametrize("host", ["http://vmm02.contoso.com", "bad host", "vmm02/wsman", "vmm02:5985", "x;rm -rf", "-vmm"])
def test_a_host_that_is_not_a_name_or_address_is_refused(client_for, admin_user, host):
    response = client_for(admin_user).post(reverse("ops:connection_new"), {**GOOD, "host": host})
    assert response.status_code == 200
    page = response.content.decode()
    assert "is not a host name or IP address" in page and "no scheme (http://)" in page
    assert not ServerConnection.objects.exists()


@pytest.mark.parametrize("host", ["vmm02.contoso.com", "VMM02", "10.0.0.5", "::1", "[fe80::1]", "vmm-02.contoso.com."])
def test_names_and_addresses_are_accepted(client_for, admin_user, host):
    assert client_for(admin_user).post(reverse("ops:connection_new"), {**GOOD, "host": host}).status_code == 302


def test_a_new_connection_does_not_talk_about_keeping_a_password(client_for, admin_user):
    page = client_for(admin_user).get(reverse("ops:connection_new")).content.decode()
    assert "keep the current password" not in page and "never shown again" in page


def test_the_test_button_records_its_outcome_in_the_status_column(client_for, admin_user, sim):
    c = client_for(admin_user)
    assert sim.scom.last_ok_at is None
    c.post(reverse("ops:connection_test", args=[sim.scom.pk]))
    sim.scom.refresh_from_db()
    assert sim.scom.last_ok_at is not None and sim.scom.last_error == ""
    sim.scom.set_password("wrong-password")
    sim.scom.save()
    page = c.post(reverse("ops:connection_test", args=[sim.scom.pk]), follow=True).content.decode()
    sim.scom.refresh_from_db()
    assert "refused the credentials" in sim.scom.last_error
    assert 'class="badge bad"' in page and "not used yet" not in page.split("scom01", 2)[-1].split("</tr>", 1)[0]
    failed = AuditEntry.objects.filter(action="connection.test").order_by("-pk").first()
    assert failed.detail["ok"] is False and "refused the credentials" in failed.detail["error"]


def test_the_page_and_the_server_agree_on_the_bounds_and_the_name_rule(client_for, admin_user):
    page = client_for(admin_user).get(reverse("ops:connection_new")).content.decode()
    port = page[page.index('name="port"') - 200:page.index('name="port"') + 200]
    assert 'min="1"' in port and 'max="65535"' in port   # the browser refuses what the server refuses
    assert "letters, digits, hyphens and underscores" in page and "slug" not in page.lower()
