"""The simulator's HTTP(S) server: WinRM on /wsman, a JSON control endpoint on /slipway-sim/control.

    running = start_simulator(engine)            # daemon threads, free port on 127.0.0.1
    wsman = pypsrp.wsman.WSMan(**running.wsman_kwargs())
    control(running.control_url, running.username, running.password, {"op": "..."})
    running.stop()
"""
from __future__ import annotations

import base64
import binascii
import http.server
import json
import logging
import os
import secrets
import select
import shutil
import socket
import ssl
import tempfile
import threading
import time
import typing
import urllib.error
import urllib.request

from . import sealing
from .auth import CHALLENGE_HEADERS, Credentials, NegotiateAcceptor, is_new_negotiation
from .contract import Engine
from .tls import ListenerCertificate, issue
from .wsman import FAULT_ACCESS_DENIED, WSManFault, WSManService, fault_envelope

log = logging.getLogger(__name__)

CONTROL_PATH = "/slipway-sim/control"
WSMAN_PATH = "/wsman"
MAX_BODY = 64 * 1024 * 1024
SOAP_TYPE = sealing.SOAP_TYPE
UNENCRYPTED_REFUSED = ("The WinRM service refused an unencrypted message: after Negotiate (NTLM) authentication "
                       "over HTTP this listener takes only messages encrypted with the session key. Encrypt the "
                       "messages (multipart/encrypted) or connect over HTTPS.")
HOLD_LIMIT = 600.0  # longest a request is held while the engine says the server is down


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: "_HTTPServer"

    def log_message(self, format: str, *args: typing.Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def setup(self) -> None:
        super().setup()
        self._negotiated: typing.Optional[NegotiateAcceptor] = None  # this connection's NTLM context

    def _reply(self, status: int, body: bytes, content_type: str,
               extra: typing.Sequence[tuple[str, str]] = ()) -> None:
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}", f"Server: {self.server_version}",
                f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{key}: {value}" for key, value in extra]
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()
        self.log_request(status, len(body))

    def _challenge(self, token: typing.Optional[bytes] = None) -> None:
        """401: the schemes this listener takes, or the next leg of a Negotiate exchange."""
        if token:
            headers = [("WWW-Authenticate", "Negotiate " + base64.b64encode(token).decode())]
        else:
            headers = [("WWW-Authenticate", scheme) for scheme in CHALLENGE_HEADERS]
        self._reply(401, b"", "text/plain", headers)

    def _authenticate(self) -> typing.Optional[tuple[str, list]]:
        """(user, response headers) of an authenticated request; None once a 401 has been sent."""
        sim = self.server.sim
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "negotiate":
            try:
                raw = base64.b64decode(token.strip(), validate=True)
            except (binascii.Error, ValueError):
                self._challenge()
                return None
            if self._negotiated is None or is_new_negotiation(raw):
                self._negotiated = NegotiateAcceptor(sim.credentials)
            try:
                out = self._negotiated.step(raw)
            except Exception as exc:  # pyspnego: wrong password, unknown user, malformed token
                log.info("NTLM authentication from %s failed: %s", self.client_address[0], exc)
                self._negotiated = None
                self._challenge()
                return None
            if not self._negotiated.complete:
                self._challenge(out)
                return None
            headers = [("WWW-Authenticate", "Negotiate " + base64.b64encode(out).decode())] if out else []
            return self._negotiated.principal, headers
        if scheme.lower() == "basic":
            # WinRM takes Basic over HTTP only while AllowUnencrypted is true
            user = sim.credentials.basic(token) if (sim.https or sim.allow_unencrypted) else None
            if user is None:
                self._challenge()
                return None
            return user, []
        if not scheme and self._negotiated is not None and self._negotiated.complete:
            return self._negotiated.principal, []
        self._challenge()
        return None

    def _via_ntlm(self) -> bool:
        basic = self.headers.get("Authorization", "").lower().startswith("basic ")
        return not basic and self._negotiated is not None and self._negotiated.complete

    def _client_gone(self) -> bool:
        """True if the client closed (or wrote more on) the connection while we hold its request."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable)  # EOF, a TLS close_notify, or bytes a well-behaved client never sends now
        except (OSError, ValueError):
            return True

    def _hold_while_down(self) -> bool:
        """Hold the request while the engine says the server is down. False: drop it unanswered."""
        engine = self.server.sim.engine
        deadline = time.monotonic() + HOLD_LIMIT
        while engine.server_down():
            if self.server.sim.stopping or self._client_gone() or time.monotonic() > deadline:
                self.close_connection = True
                return False
            time.sleep(0.05)
        return True

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._reply(400, b"bad Content-Length", "text/plain")
            return
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0].rstrip("/").lower()
        if path == CONTROL_PATH:  # the simulator's own endpoint: Basic, whatever the listener's settings
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "basic" or self.server.sim.credentials.basic(token) is None:
                self._challenge()
                return
            self._control(body)
            return
        if path != WSMAN_PATH:
            self._reply(404, b"not found", "text/plain")
            return
        authenticated = self._authenticate()
        if authenticated is None:
            return
        user, headers = authenticated
        sealed = sealing.is_sealed(self.headers.get("Content-Type", ""))
        if sealed:
            if self._negotiated is None or not self._negotiated.complete:
                self._reply(400, b"an encrypted message needs an NTLM or Kerberos session", "text/plain", headers)
                return
            try:
                body = sealing.unseal(self._negotiated.context, self.headers["Content-Type"], body)
            except sealing.SealingError as exc:
                self._reply(400, f"cannot decrypt the message: {exc}".encode(), "text/plain", headers)
                return
        elif body and not self.server.sim.https and self._via_ntlm():
            # as a WinRM listener does (AllowUnencrypted=false): NTLM over HTTP must seal its messages
            fault = WSManFault(FAULT_ACCESS_DENIED, UNENCRYPTED_REFUSED, "w:AccessDenied")
            self._reply(500, fault_envelope(fault), SOAP_TYPE, headers)
            return
        if not body:  # the empty request a client sends to set up authentication before sealing
            self._reply(200, b"", SOAP_TYPE, headers)
            return
        if not self._hold_while_down():
            return
        status, response = self.server.sim.service.handle(body, user, self.client_address[0])
        if not self._hold_while_down():  # went down while a long poll waited: do not answer either
            return
        content_type = SOAP_TYPE
        if sealed:
            content_type, response = sealing.seal(self._negotiated.context, response)
        self._reply(status, response, content_type, headers)

    def _control(self, body: bytes) -> None:
        try:
            command = json.loads(body or b"{}")
            if not isinstance(command, dict):
                raise ValueError("the control body must be a JSON object")
            result = self.server.sim.engine.control(command)
            payload, status = json.dumps(result, default=str).encode(), 200
        except (ValueError, KeyError, TypeError) as exc:
            payload, status = json.dumps({"error": str(exc)}).encode(), 400
        except Exception as exc:
            log.exception("control command failed")
            payload, status = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode(), 500
        self._reply(status, payload, "application/json")

    def do_GET(self) -> None:  # noqa: N802
        self._reply(405, b"use POST", "text/plain", [("Allow", "POST")])


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    sim: "SimulatorServer"

    def __init__(self, address: tuple[str, int], ssl_context: typing.Optional[ssl.SSLContext]):
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, typing.Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # The handshake happens on first read, in the connection's own thread.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: typing.Any, client_address: typing.Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class SimulatorServer:
    """WinRM/PSRP server in front of an ``Engine``. ``start()`` serves in a daemon thread.

    ``allow_unencrypted`` is the listener's AllowUnencrypted: False refuses Basic over HTTP.
    With ``https`` the listener's certificate (``tls``, or one issued for ``host`` by a CA of
    its own) and that CA are written to ``tls_dir`` as ``cert_file`` and ``ca_file``."""

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 0, username: str = "slipway",
                 password: typing.Optional[str] = None, https: bool = False, allow_unencrypted: bool = True,
                 tls: typing.Optional[ListenerCertificate] = None, tls_dir: typing.Optional[str] = None):
        self.engine = engine
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(18)
        self.credentials = Credentials(self.username, self.password)
        self.https = https
        self.allow_unencrypted = allow_unencrypted
        self.stopping = False
        self.certificate: typing.Optional[ListenerCertificate] = None
        self.cert_file = self.ca_file = None
        self._tls_tmp: typing.Optional[str] = None
        context = None
        if https:
            self.certificate = tls or issue(host)
            if tls_dir is None:
                tls_dir = self._tls_tmp = tempfile.mkdtemp(prefix="slipway-sim-tls-")
            self.cert_file, self.ca_file = self.certificate.write(tls_dir)
            context = self.certificate.server_context()
        self._httpd = _HTTPServer((host, port), context)
        self._httpd.sim = self
        self.host, self.port = self._httpd.server_address[:2]
        self.service = WSManService(engine, endpoint=self.url)
        self._thread: typing.Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}{WSMAN_PATH}"

    @property
    def control_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}{CONTROL_PATH}"

    def wsman_kwargs(self, **overrides: typing.Any) -> dict:
        """Keyword arguments for ``pypsrp.wsman.WSMan`` that reach this server as a customer would:
        NTLM with message encryption over HTTP, or over HTTPS validated against the listener's CA."""
        kwargs = dict(server=self.host, port=self.port, username=self.username, password=self.password,
                      ssl=self.https, auth="ntlm", cert_validation=self.ca_file if self.https else False,
                      no_proxy=True, encryption="auto")
        kwargs.update(overrides)
        return kwargs

    def start(self) -> "SimulatorServer":
        self._thread = threading.Thread(target=self.serve_forever, name=f"sim-http-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self.stopping = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self.service.close_all()
        if self._thread is not None:
            self._thread.join(5)
        self.credentials.close()
        if self._tls_tmp:
            shutil.rmtree(self._tls_tmp, ignore_errors=True)


RunningServer = SimulatorServer


def start_simulator(engine: Engine, host: str = "127.0.0.1", port: int = 0, username: str = "slipway",
                    password: typing.Optional[str] = None, https: bool = False, **listener: typing.Any) -> SimulatorServer:
    """Start a simulator server in daemon threads; returns it (``.host .port .url .username .password .stop()``).
    ``listener``: ``allow_unencrypted``, ``tls``, ``tls_dir`` (see ``SimulatorServer``)."""
    return SimulatorServer(engine, host, port, username, password, https, **listener).start()


def control(url: str, username: str, password: str, command: dict, timeout: float = 30.0,
            cafile: typing.Optional[str] = None) -> dict:
    """POST a control command (JSON) to a simulator; ``url`` is its control URL or any URL on the server.
    Over HTTPS the listener's certificate is checked against ``cafile`` when given."""
    if CONTROL_PATH not in url:
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://{rest.split('/', 1)[0]}{CONTROL_PATH}"
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(url, data=json.dumps(command).encode(), method="POST",
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            detail = json.loads(body)
        except ValueError:
            detail = {"error": body.decode("utf-8", "replace")}
        raise RuntimeError(f"simulator control failed ({exc.code}): {detail.get('error', detail)}") from None
