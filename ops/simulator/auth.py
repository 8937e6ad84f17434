"""Who may call the simulator, checked as a Windows WinRM listener checks it.

A request without credentials gets 401 with ``WWW-Authenticate: Negotiate`` and
``WWW-Authenticate: Basic realm="WSMAN"``. ``Negotiate`` carries NTLM, inside SPNEGO (as
Windows clients and pypsrp's ``auth="negotiate"`` send it) or raw (pypsrp's ``auth="ntlm"``);
pyspnego's NTLM acceptor checks it against the credential file named by ``NTLM_USER_FILE``,
which ``Credentials`` writes (mode 0600, NT hashes, never the password) when the server starts.
The NTLM context belongs to the TCP connection, as with HTTP.sys: later requests on it
need no header, and their bodies are sealed with the context (``sealing.py``).

The user is accepted as ``U``, ``DOMAIN\\U`` (any domain, as a standalone Windows server
checks an unknown domain's user against its local accounts) or ``U@domain``.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import os
import shutil
import tempfile
import threading
import typing

import spnego
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
from spnego._ntlm_raw.messages import Authenticate
from spnego._spnego import NegTokenInit, NegTokenResp, unpack_token
from spnego.exceptions import SpnegoError

CHALLENGE_HEADERS = ("Negotiate", 'Basic realm="WSMAN"')
USER_FILE_ENV = "NTLM_USER_FILE"

# pyspnego reads NTLM_USER_FILE from the environment while it steps an acceptor; servers in one
# process (the tests) each have their own file, so a step names its file under this lock.
_ENV_LOCK = threading.Lock()


def _user_part(name: str) -> str:
    """'DOMAIN\\u' and 'u@domain' -> 'u'."""
    return name.rsplit("\\", 1)[-1].split("@", 1)[0]


class Credentials:
    """The one account the simulator accepts, for Basic and NTLM."""

    def __init__(self, username: str, password: str, directory: typing.Optional[str] = None):
        if not username or ":" in username or any(ord(c) < 32 for c in username):
            raise ValueError(f"the user name {username!r} cannot be used (empty, or a ':' or control character)")
        self.username = username
        self.password = password
        self._own_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="slipway-sim-ntlm-")
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.user_file = os.path.join(self.directory, "ntlm-users")
        self._lock = threading.Lock()
        self._principals: set[tuple[str, str]] = set()
        fd = os.open(self.user_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        os.chmod(self.user_file, 0o600)
        self._allow("", _user_part(username))

    def matches(self, name: str) -> bool:
        return hmac.compare_digest(_user_part(name).lower().encode(), _user_part(self.username).lower().encode())

    def basic(self, token: str) -> typing.Optional[str]:
        """The user of a Basic token with the right password, else None."""
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        ok = self.matches(user)
        ok &= hmac.compare_digest(password.encode(), self.password.encode())
        return self.account if ok else None

    @property
    def account(self) -> str:
        """The account's own name, however the client spelled it (as Windows names the signed-in user)."""
        return _user_part(self.username)

    def _allow(self, domain: str, user: str) -> None:
        """Add ``domain\\user`` (smbpasswd format: NT and LM hashes) to the NTLM credential file."""
        key = (domain.lower(), user.lower())
        with self._lock:
            if key in self._principals:
                return
            name = f"{domain}\\{user}" if domain else user
            lm, nt = (base64.b16encode(h(self.password)).decode() for h in (lmowfv1, ntowfv1))
            with open(self.user_file, "a", encoding="utf-8") as f:
                f.write(f"{name}:0:{lm}:{nt}:[U]:LCT-00000000\n")
            self._principals.add(key)

    def admit(self, authenticate: Authenticate) -> None:
        """Before pyspnego checks an NTLM AUTHENTICATE message: if it names our user, in any of
        the accepted forms, its principal goes into the credential file (otherwise the check fails)."""
        user, domain = authenticate.user_name or "", authenticate.domain_name or ""
        if self.matches(user) and ("\\" not in user) and (not domain or "@" not in user):
            self._allow(domain, user)

    def close(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)


def _ntlm_authenticate(token: bytes) -> typing.Optional[Authenticate]:
    """The NTLM AUTHENTICATE message in a raw or SPNEGO token, if it is one."""
    try:
        message = unpack_token(token, unwrap=True)
        if isinstance(message, (NegTokenInit, NegTokenResp)):
            inner = message.mech_token if isinstance(message, NegTokenInit) else message.response_token
            message = unpack_token(inner, unwrap=True) if inner else None
    except (ValueError, TypeError, KeyError, IndexError, SpnegoError):
        return None
    return message if isinstance(message, Authenticate) else None


class NegotiateAcceptor:
    """One connection's NTLM (raw or SPNEGO) acceptor. ``step`` raises ``SpnegoError`` on bad credentials."""

    def __init__(self, credentials: Credentials):
        self.credentials = credentials
        self.context = spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.use_negotiate)

    @property
    def complete(self) -> bool:
        return self.context.complete

    def step(self, token: bytes) -> typing.Optional[bytes]:
        authenticate = _ntlm_authenticate(token)
        if authenticate is not None:
            self.credentials.admit(authenticate)
        with _ENV_LOCK:
            previous = os.environ.get(USER_FILE_ENV)
            os.environ[USER_FILE_ENV] = self.credentials.user_file
            try:
                return self.context.step(token)
            finally:
                if previous is None:
                    os.environ.pop(USER_FILE_ENV, None)
                else:
                    os.environ[USER_FILE_ENV] = previous

    @property
    def principal(self) -> str:
        return self.credentials.account


def is_new_negotiation(token: bytes) -> bool:
    """True for the first token of an exchange (NTLM NEGOTIATE, raw or in a SPNEGO NegTokenInit)."""
    return token.startswith(b"NTLMSSP\x00\x01\x00\x00\x00") or token[:1] == b"\x60"
