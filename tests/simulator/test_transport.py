"""The simulator as a Windows WinRM listener: what it advertises, NTLM (raw and in SPNEGO) with every
message sealed both ways, what it refuses, and HTTPS validated against the CA that signed its
certificate. Driven by an unmodified pypsrp client, as a customer's Slipway reaches VMM."""
from __future__ import annotations

import os
import stat

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from ops.simulator import tls
from ops.simulator.server import start_simulator
from tests.simulator.test_protocol import FakeEngine, run


@pytest.fixture(scope="module")
def engine():
    return FakeEngine()


@pytest.fixture(scope="module")
def sim(engine):
    running = start_simulator(engine, password="s3cret-pw")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sim_tls(engine):
    running = start_simulator(engine, password="s3cret-pw", https=True)
    yield running
    running.stop()


def _wsman(server, **kwargs) -> WSMan:
    return WSMan(**server.wsman_kwargs(operation_timeout=10, read_timeout=15, **kwargs))


def _watch(pool) -> list:
    """(request Content-Type, request body, response Content-Type, response body) of each later exchange."""
    seen: list = []
    pool.connection.transport.session.hooks["response"].append(
        lambda r, **_: seen.append((r.request.headers.get("Content-Type", ""), r.request.body or b"",
                                    r.headers.get("Content-Type", ""), r.content)))
    return seen


def test_a_request_without_credentials_gets_401_advertising_negotiate_and_basic(sim):
    response = requests.post(sim.url, data=b"<s:Envelope/>", headers={"Content-Type": "application/soap+xml"})
    assert response.status_code == 401
    offered = [s.strip() for s in response.headers["WWW-Authenticate"].split(",")]
    assert offered == ["Negotiate", 'Basic realm="WSMAN"']


@pytest.mark.parametrize("auth,username", [
    ("ntlm", "slipway"),                 # raw NTLM in the Negotiate header (pypsrp auth="ntlm")
    ("negotiate", "slipway"),            # NTLM inside SPNEGO, as Windows offers it
    ("ntlm", "CONTOSO\\slipway"),
    ("negotiate", "CONTOSO\\SLIPWAY"),
    ("ntlm", "slipway@contoso.com"),
])
def test_ntlm_with_every_message_sealed_both_ways(sim, auth, username):
    with RunspacePool(_wsman(sim, auth=auth, username=username, encryption="always")) as pool:
        seen = _watch(pool)
        assert run(pool, ("Whoami", {}))[1] == ["slipway"]
        assert run(pool, ("Echo", {"Text": "plain words"}))[1] == ["plain words"]
    assert len(seen) >= 4
    for request_type, request_body, response_type, response_body in seen:
        assert request_type.startswith('multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"')
        assert response_type.startswith('multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"')
        assert b"Envelope" not in request_body and b"Envelope" not in response_body


def test_sealed_large_outputs_split_to_fit_the_envelope(sim):
    with RunspacePool(_wsman(sim, encryption="always")) as pool:
        seen = _watch(pool)
        ps, out = run(pool, ("Huge", {"Size": 1024 * 1024}))
        assert len(out[0]) == 1024 * 1024
        ps, out = run(pool, ("Big", {"Count": 3000}))
        assert len(out) == 3000 and str(out[-1]) == "vm2999"
    assert len(seen) > 4 and all(r[2].startswith("multipart/encrypted") for r in seen)


@pytest.mark.parametrize("server,kwargs", [
    ("sim", {"auth": "ntlm"}),
    ("sim", {"auth": "negotiate"}),
    ("sim", {"auth": "basic", "encryption": "never"}),
    ("sim_tls", {"auth": "ntlm"}),
    ("sim_tls", {"auth": "basic"}),
])
def test_wrong_credentials_get_401(request, server, kwargs):
    running = request.getfixturevalue(server)
    for wrong in ({"password": "wrong"}, {"username": "someone-else"}, {"username": "CONTOSO\\someone-else"}):
        with pytest.raises(AuthenticationError):
            RunspacePool(_wsman(running, **kwargs, **wrong)).open()


def test_ntlm_messages_in_clear_over_http_are_refused_as_winrm_refuses_them(sim):
    with pytest.raises((WSManFaultError, WinRMTransportError)) as info:
        RunspacePool(_wsman(sim, encryption="never")).open()
    assert "unencrypted" in str(info.value).lower() or "unencrypted" in str(getattr(info.value, "reason", "")).lower()


def test_a_listener_that_disallows_unencrypted_traffic_refuses_basic_over_http_only(engine):
    strict = start_simulator(engine, password="pw-strict", allow_unencrypted=False)
    strict_tls = start_simulator(engine, password="pw-strict", https=True, allow_unencrypted=False)
    try:
        with pytest.raises(AuthenticationError):
            RunspacePool(_wsman(strict, auth="basic", encryption="never")).open()
        with RunspacePool(_wsman(strict)) as pool:   # NTLM, sealed
            assert run(pool, ("Whoami", {}))[1] == ["slipway"]
        with RunspacePool(_wsman(strict_tls, auth="basic")) as pool:
            assert run(pool, ("Whoami", {}))[1] == ["slipway"]
    finally:
        strict.stop()
        strict_tls.stop()


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_https_validated_against_the_listeners_ca(sim_tls, auth):
    assert open(sim_tls.ca_file, "rb").read() == sim_tls.certificate.ca_pem
    assert b"PRIVATE KEY" not in open(sim_tls.cert_file, "rb").read()
    with RunspacePool(_wsman(sim_tls, auth=auth, cert_validation=sim_tls.ca_file)) as pool:
        assert run(pool, ("Whoami", {}))[1] == ["slipway"]


@pytest.mark.parametrize("issue,fragment", [
    (None, "certificate verify failed"),                               # a CA the client does not know
    ({"names": ["vmm99.contoso.com"]}, "127.0.0.1"),                   # issued for another host
    ({"days": -1}, "certificate has expired"),
])
def test_a_certificate_the_client_cannot_trust_fails_at_the_client(engine, issue, fragment):
    material = tls.issue("127.0.0.1", **issue) if issue else None
    server = start_simulator(engine, password="pw-tls", https=True, tls=material)
    try:
        ca = server.ca_file if issue else True   # True: the system's CAs only
        with pytest.raises(requests.exceptions.SSLError) as info:
            RunspacePool(_wsman(server, cert_validation=ca)).open()
        assert fragment in str(info.value)
    finally:
        server.stop()


def test_the_ntlm_credential_file_is_private_and_holds_no_password(sim):
    path = sim.credentials.user_file
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    text = open(path, encoding="utf-8").read()
    assert text.startswith("slipway:0:") and "s3cret-pw" not in text


@pytest.mark.parametrize("username", ["slipway", "CONTOSO\\slipway", "Slipway@contoso.com"])
def test_basic_takes_the_same_name_forms(sim, username):
    with RunspacePool(_wsman(sim, auth="basic", encryption="never", username=username)) as pool:
        assert run(pool, ("Whoami", {}))[1] == ["slipway"]
