"""WinRM message encryption over HTTP, the listener's side (MS-WSMV 2.2.9.1).

After NTLM (or Kerberos) authentication a client seals each SOAP envelope with the
context's session key and posts it as ``multipart/encrypted`` with the protocol
``application/HTTP-SPNEGO-session-encrypted``; the listener answers the same way.
One sealed part is::

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <uint32 LE signature length><signature><sealed envelope>
    --Encrypted Boundary--\\r\\n

``seal`` and ``unseal`` take a pyspnego context (``wrap_winrm``/``unwrap_winrm``).
"""
from __future__ import annotations

import re
import struct
import typing

SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = "Encrypted Boundary"
SOAP_TYPE = "application/soap+xml;charset=UTF-8"
CONTENT_TYPE = f'multipart/encrypted;protocol="{SPNEGO}";boundary="{BOUNDARY}"'

_PARAM = re.compile(r'(\w+)\s*=\s*"?([^";]*)"?')
_LENGTH = re.compile(rb"Length=(\d+)")
_OCTETS = b"\tContent-Type: application/octet-stream\r\n"


class SealingError(ValueError):
    """A sealed body that cannot be read: bad MIME, a signature that does not verify, a wrong length."""


def is_sealed(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("multipart/encrypted", "multipart/x-multi-encrypted")


def seal(context: typing.Any, message: bytes) -> tuple[str, bytes]:
    """(Content-Type, body) of ``message`` sealed with ``context``."""
    header, wrapped, padding = context.wrap_winrm(message)
    head = "\r\n".join([
        f"--{BOUNDARY}",
        f"\tContent-Type: {SPNEGO}",
        f"\tOriginalContent: type={SOAP_TYPE};Length={len(message) + padding}",
        f"--{BOUNDARY}",
        "\tContent-Type: application/octet-stream",
        "",
    ]).encode()
    return CONTENT_TYPE, head + struct.pack("<I", len(header)) + header + wrapped + f"--{BOUNDARY}--\r\n".encode()


def unseal(context: typing.Any, content_type: str, body: bytes) -> bytes:
    """The plain envelope of a sealed request body; raises ``SealingError``."""
    params = {k.lower(): v for k, v in _PARAM.findall(content_type)}
    if params.get("protocol", "").lower() != SPNEGO.lower():
        raise SealingError(f"unsupported encryption protocol {params.get('protocol')!r}")
    boundary = params.get("boundary")
    if not boundary:
        raise SealingError("no MIME boundary in the Content-Type")
    parts = [p for p in re.split(rb"--\s*" + re.escape(boundary.encode()) + rb"\r\n", body) if p]
    if not parts or len(parts) % 2:
        raise SealingError("the sealed body does not have header and payload parts")
    plain = b""
    for head, payload in zip(parts[0::2], parts[1::2]):
        length = _LENGTH.search(head)
        if not length:
            raise SealingError("a sealed part has no OriginalContent length")
        payload = re.sub(rb"--\s*" + re.escape(boundary.encode()) + rb"--\r\n$", b"", payload)
        if not payload.startswith(_OCTETS) or len(payload) < len(_OCTETS) + 4:
            raise SealingError("a sealed part has no application/octet-stream payload")
        payload = payload[len(_OCTETS):]
        sig_len = struct.unpack("<I", payload[:4])[0]
        try:
            data = context.unwrap_winrm(payload[4:4 + sig_len], payload[4 + sig_len:])
        except Exception as exc:  # pyspnego: BadMICError and friends, a signature that does not verify
            raise SealingError(f"the message does not unseal: {exc}") from exc
        if len(data) != int(length.group(1)):
            raise SealingError(f"unsealed {len(data)} bytes, the header says {int(length.group(1))}")
        plain += data
    return plain
