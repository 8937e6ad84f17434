"""The HTTPS listener's certificate, signed by a CA of its own, as a customer's PKI would issue it.

    material = issue("vmm01.contoso.com")              # a CA and a listener certificate it signed
    cert_file, ca_file = material.write(directory)     # what a client validates against: ca_file
    context = material.server_context()                # the listener's ssl.SSLContext

Tests issue certificates that are expired (``days=-1``) or name another host (``names=[...]``)
to see what a client makes of them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
import typing

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "Slipway Simulator CA"


@dataclasses.dataclass(frozen=True)
class ListenerCertificate:
    cert_pem: bytes
    key_pem: bytes = dataclasses.field(repr=False)
    ca_pem: bytes
    common_name: str
    not_after: dt.datetime

    def write(self, directory: str) -> tuple[str, str]:
        """Write the listener's certificate and its CA (never the key) as PEM; returns both paths."""
        os.makedirs(directory, exist_ok=True)
        cert_file, ca_file = os.path.join(directory, "listener-cert.pem"), os.path.join(directory, "listener-ca.pem")
        for path, data in ((cert_file, self.cert_pem), (ca_file, self.ca_pem)):
            with open(path, "wb") as f:
                f.write(data)
        return cert_file, ca_file

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # load_cert_chain reads files only: the key lives in a private directory for a moment
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            with open(cert_path, "wb") as f:
                f.write(self.cert_pem + self.ca_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.key_pem)
            context.load_cert_chain(cert_path, key_path)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Slipway"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue(host: str, names: typing.Optional[typing.Sequence[str]] = None, days: int = 365) -> ListenerCertificate:
    """A new CA and a listener certificate for ``names`` (default: ``host`` and localhost) valid ``days``
    from now (a negative number gives one that has already expired)."""
    names = list(names) if names else list(dict.fromkeys([host, "localhost", "127.0.0.1"]))
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name(CA_NAME)).issuer_name(_name(CA_NAME))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=days)
    cert = (
        x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - dt.timedelta(days=1)).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_alt_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ListenerCertificate(
        cert_pem=cert.public_bytes(pem), ca_pem=ca_cert.public_bytes(pem), common_name=names[0],
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        not_after=not_after,
    )
