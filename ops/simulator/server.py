"""The simulator's HTTP(S) server: WinRM on /wsman, a JSON control endpoint on /slipway-sim/control.

    running = start_simulator(engine)            # daemon threads, free port on 127.0.0.1
    wsman = pypsrp.wsman.WSMan(**running.wsman_kwargs())
    control(running.control_url, running.username, running.password, {"op": "..."})
    running.stop()
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import http.server
import json
import logging
import os
import secrets
import select
import socket
import ssl
import tempfile
import threading
import time
import typing
import urllib.error
import urllib.request

from .contract import Engine
from .wsman import WSManService

log = logging.getLogger(__name__)

CONTROL_PATH = "/slipway-sim/control"
WSMAN_PATH = "/wsman"
MAX_BODY = 64 * 1024 * 1024
HOLD_LIMIT = 600.0  # longest a request is held while the engine says the server is down


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: "_HTTPServer"

    def log_message(self, format: str, *args: typing.Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: bytes, content_type: str, extra: typing.Optional[dict] = None) -> None:
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}", f"Server: {self.server_version}",
                f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        for key, value in (extra or {}).items():
            head.append(f"{key}: {value}")
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()
        self.log_request(status, len(body))

    def _authenticated(self) -> typing.Optional[str]:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(token.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        sim = self.server.sim
        ok = hmac.compare_digest(user.lower().encode(), sim.username.lower().encode())
        ok &= hmac.compare_digest(password.encode(), sim.password.encode())
        return user if ok else None

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
        user = self._authenticated()
        if user is None:
            self._reply(401, b"", "text/plain", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        if path == CONTROL_PATH:
            self._control(body)
            return
        if path != WSMAN_PATH:
            self._reply(404, b"not found", "text/plain")
            return
        if not self._hold_while_down():
            return
        status, response = self.server.sim.service.handle(body, user, self.client_address[0])
        if not self._hold_while_down():  # went down while a long poll waited: do not answer either
            return
        self._reply(status, response, "application/soap+xml;charset=UTF-8")

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
        self._reply(405, b"use POST", "text/plain", {"Allow": "POST"})


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


def _self_signed(host: str) -> ssl.SSLContext:
    """An SSL context with a fresh self-signed certificate for ``host`` (cryptography)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "slipway-simulator")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365)).add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        context.load_cert_chain(cert_path, key_path)
    return context


class SimulatorServer:
    """WinRM/PSRP server in front of an ``Engine``. ``start()`` serves in a daemon thread."""

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 0, username: str = "slipway",
                 password: typing.Optional[str] = None, https: bool = False):
        self.engine = engine
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(18)
        self.https = https
        self.stopping = False
        self._httpd = _HTTPServer((host, port), _self_signed(host) if https else None)
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
        """Keyword arguments for ``pypsrp.wsman.WSMan`` that reach this server."""
        kwargs = dict(server=self.host, port=self.port, username=self.username, password=self.password,
                      ssl=self.https, auth="basic", cert_validation=False, no_proxy=True,
                      encryption="auto" if self.https else "never")
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


RunningServer = SimulatorServer


def start_simulator(engine: Engine, host: str = "127.0.0.1", port: int = 0, username: str = "slipway",
                    password: typing.Optional[str] = None, https: bool = False) -> SimulatorServer:
    """Start a simulator server in daemon threads; returns it (``.host .port .url .username .password .stop()``)."""
    return SimulatorServer(engine, host, port, username, password, https).start()


def control(url: str, username: str, password: str, command: dict, timeout: float = 30.0) -> dict:
    """POST a control command (JSON) to a simulator; ``url`` is its control URL or any URL on the server."""
    if CONTROL_PATH not in url:
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://{rest.split('/', 1)[0]}{CONTROL_PATH}"
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(url, data=json.dumps(command).encode(), method="POST",
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    context = ssl._create_unverified_context() if url.startswith("https") else None  # our self-signed cert
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
