"""How a connection reaches its server: authentication, message encryption, certificate validation,
and what to tell an admin when one of them fails.

WinRM over HTTP is only safe with NTLM, Kerberos or Negotiate, which encrypt every message with
the authentication's session key (pypsrp ``encryption="auto"``); Basic over HTTP sends the
password and every message in clear, and a WinRM listener refuses it unless AllowUnencrypted is
true. Over HTTPS the server's certificate is validated against the system's CAs or the
connection's CA bundle (a path on the worker's host, or PEM pasted into the form).
"""
from __future__ import annotations

import hashlib
import os
import socket
import ssl
import tempfile
import typing

from cryptography import x509
from cryptography.x509.oid import NameOID

PEM_MARKER = "-----BEGIN CERTIFICATE-----"
AUTH_LABELS = {"basic": "Basic", "ntlm": "NTLM", "kerberos": "Kerberos", "negotiate": "Negotiate", "credssp": "CredSSP"}


def encryption(auth: str, use_https: bool) -> str:
    """pypsrp's ``encryption``: Basic can only go in clear over HTTP (the listener must allow it)."""
    return "never" if auth == "basic" and not use_https else "auto"


def ca_bundle_file(bundle: str) -> typing.Optional[str]:
    """The file of a CA bundle: the path as given, or pasted PEM written once to a private cache file."""
    bundle = (bundle or "").strip()
    if not bundle:
        return None
    if PEM_MARKER not in bundle:
        return bundle
    data = bundle.encode() + b"\n"
    directory = os.path.join(tempfile.gettempdir(), f"slipway-ca-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, hashlib.sha256(data).hexdigest()[:32] + ".pem")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path


def cert_validation(validate: bool, bundle: str) -> typing.Union[bool, str]:
    """pypsrp's ``cert_validation``: False, True (the system's CAs) or the CA bundle's file."""
    if not validate:
        return False
    return ca_bundle_file(bundle) or True


def check_ca_bundle(bundle: str) -> typing.Optional[str]:
    """Why a CA bundle cannot be used (a sentence for the form), or None."""
    bundle = (bundle or "").strip()
    if not bundle:
        return None
    if PEM_MARKER not in bundle and not os.path.isabs(bundle):
        return ("Give the path of a PEM file on the worker's host (e.g. /etc/slipway/contoso-ca.pem) "
                "or paste the CA certificate, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.")
    if PEM_MARKER not in bundle and not os.path.isfile(bundle):
        return f"No file {bundle} on this host: copy the CA certificate (PEM) there, or paste it here instead."
    try:
        ssl.create_default_context(cafile=ca_bundle_file(bundle))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return f"This is not a PEM CA certificate that can be read ({exc}); paste the CA certificate in PEM form."
    return None


def peer_certificate(host: str, port: int, validate: typing.Union[bool, str], timeout: float = 10.0) -> dict:
    """The server's certificate as validation sees it: ``{"cn": ..., "expires": "2027-12-02"}``;
    raises ``ssl.SSLError``/``OSError`` as the connection would."""
    context = ssl.create_default_context(cafile=validate if isinstance(validate, str) else None)
    if validate is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {"cn": names[0].value if names else cert.subject.rfc4514_string(),
            "expires": cert.not_valid_after_utc.date().isoformat()}


def negotiated(auth: str, use_https: bool, validated: bool, peer: typing.Optional[dict] = None) -> str:
    """What a working connection uses, in the admin's words."""
    label = AUTH_LABELS.get(auth, auth)
    if not use_https:
        if encryption(auth, use_https) == "never":
            return f"{label} over HTTP, messages NOT encrypted"
        return f"{label}, messages encrypted"
    cert = ""
    if peer:
        cert = f" (CN={peer['cn']}, expires {peer['expires']})"
    if validated:
        return f"{label} over HTTPS, certificate valid{cert}"
    return f"{label} over HTTPS, certificate NOT validated{cert}"


def configured(auth: str, use_https: bool, validate: bool, bundle: str) -> str:
    """What a connection is set to use, before any test (the connections list)."""
    if not use_https:
        return negotiated(auth, use_https, validated=False)
    label = AUTH_LABELS.get(auth, auth)
    if not validate:
        return f"{label} over HTTPS, certificate not checked"
    return f"{label} over HTTPS, certificate checked against {'its CA bundle' if bundle.strip() else 'the system CAs'}"


def explain_tls(text: str, host: str) -> typing.Optional[str]:
    """Cause and fix of a certificate failure (from requests', urllib3's or ssl's message), or None."""
    low = text.lower()
    if "certificate has expired" in low:
        return (f"the server's certificate has expired: renew the certificate of the WinRM HTTPS listener on {host} "
                "(winrm set winrm/config/listener?Address=*+Transport=HTTPS with the new thumbprint)")
    if "not yet valid" in low:
        return f"the server's certificate is not valid yet: check the clocks of {host} and of Slipway's host"
    if "mismatch" in low or "doesn't match" in low or "not valid for" in low:
        return (f"the server's certificate is not issued for '{host}': enter in Host the name the certificate "
                f"names (its CN or a subject alternative name), or issue the listener a certificate for {host}")
    if "unable to get local issuer" in low or "self-signed certificate" in low or "self signed certificate" in low \
            or "unknown ca" in low or "unable to verify the first certificate" in low:
        return ("the server's certificate is signed by a CA Slipway does not trust: put the CA certificate that "
                "signed it (PEM) in the connection's CA bundle, or install it in the system's trust store")
    if "certificate verify failed" in low:
        return "certificate verify failed: the server's certificate is not trusted; check the connection's CA bundle"
    if "wrong version number" in low or "record layer failure" in low:
        return f"the server does not speak HTTPS on this port: use 5986 for HTTPS or clear HTTPS for 5985"
    return None


def explain_refused_credentials(username: str, auth: str, use_https: bool) -> str:
    message = f"the server refused the credentials of {username!r}"
    if auth == "basic" and not use_https:
        return (f"{message}: a WinRM listener refuses Basic over HTTP unless AllowUnencrypted is true (the default "
                "is false); choose NTLM (Slipway encrypts every message) or HTTPS on port 5986, or check the password")
    return (f"{message}: check the user name (user, DOMAIN\\user or user@domain) and the password, and that the "
            "account may use PowerShell Remoting on the server")


UNENCRYPTED_MARKERS = ("unencrypted", "allowunencrypted")


def explain_unencrypted(text: str) -> typing.Optional[str]:
    if any(marker in text.lower() for marker in UNENCRYPTED_MARKERS):
        return ("the server refuses unencrypted messages (a WinRM listener takes them over HTTP only when "
                "AllowUnencrypted is true, and it should not be): let Slipway encrypt them (NTLM, Kerberos or "
                "Negotiate over HTTP encrypt every message), or use HTTPS")
    return None


def explain_client_side(auth: str, exc: BaseException) -> str:
    """Cause and fix when authentication cannot even start on Slipway's side (a library, a ticket)."""
    text = str(exc).strip() or exc.__class__.__name__
    if auth in ("kerberos", "negotiate") and ("gssapi" in text or "krb5" in text):
        return (f"Kerberos cannot start on Slipway's host ({text}): install pypsrp's Kerberos extras "
                "(pip install pypsrp[kerberos], with the system's MIT Kerberos: apt install libkrb5-dev krb5-user) "
                "or choose NTLM")
    if auth == "credssp" or "credssp" in text.lower():
        return (f"CredSSP cannot start on Slipway's host ({text}): install pypsrp's CredSSP extras "
                "(pip install pypsrp[credssp]), or choose NTLM or Kerberos unless a second hop is needed")
    if auth in ("kerberos", "negotiate"):
        return (f"{AUTH_LABELS.get(auth, auth)} authentication failed on Slipway's side ({text}): the worker's account "
                "needs a Kerberos ticket (kinit, or a keytab in KRB5_CLIENT_KTNAME) and the server's SPN "
                "HTTP/<host> must exist; enter the host's DNS name, not its address")
    return f"{AUTH_LABELS.get(auth, auth)} authentication failed on Slipway's side ({text})"
