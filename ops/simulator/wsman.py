"""WSMan (MS-WSMV) over SOAP for the simulator: parse requests, run shell actions, build responses.

``WSManService.handle(body, username, client_ip)`` takes one POSTed SOAP
envelope and returns ``(http_status, response_bytes)``. Shells are runspace
pools (``psrp_host.PoolHost``); commands are pipelines.
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
import typing
import uuid
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from .contract import Engine, PSError
from .psrp_host import PoolHost, PSRPHostError, ReceiveTimeout, UnknownCommand

log = logging.getLogger(__name__)

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
_T = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_CREATE, ACTION_DELETE, ACTION_GET = _T + "Create", _T + "Delete", _T + "Get"
ACTION_COMMAND, ACTION_RECEIVE, ACTION_SEND, ACTION_SIGNAL = (_SHELL + a for a in ("Command", "Receive", "Send", "Signal"))
# Signals that stop a command: WSMan terminate/ctrl_c/ctrl_break and PSRP's own ctrl_c (pypsrp's stop()).
STOP_SIGNALS = {
    (_SHELL + "signal/" + code).lower() for code in ("terminate", "ctrl_c", "ctrl_break")
} | {"powershell/signal/ctrl_c", "powershell/signal/crtl_c"}
STATE_DONE = _SHELL + "CommandState/Done"
STATE_RUNNING = _SHELL + "CommandState/Running"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# WSMan fault codes (as Windows sends them)
FAULT_TIMED_OUT = 2150858793  # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT (pypsrp retries command Receives)
FAULT_SHELL_NOT_FOUND = 2150858843  # 0x8033805B ERROR_WSMAN_INVALID_SELECTORS (pool gone)
FAULT_ACTION_NOT_SUPPORTED = 2150858754  # 0x80338002
FAULT_INVALID = 2150858778  # 0x8033801A ERROR_WSMAN_INVALID_PARAMETER-ish: a request we cannot process
FAULT_COMMAND_NOT_FOUND = 2150858843
FAULT_ACCESS_DENIED = 2147942405  # 0x80070005

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_ENVELOPE_OVERHEAD = 2048  # bytes of SOAP around the base64 payload in a ReceiveResponse, generously


class WSManFault(Exception):
    def __init__(self, code: int, message: str, subcode: str = "w:InternalError", status: int = 500):
        super().__init__(message)
        self.code, self.message, self.subcode, self.status = code, message, subcode, status


class Request(typing.NamedTuple):
    action: str
    message_id: str
    resource_uri: str
    shell_id: typing.Optional[uuid.UUID]
    timeout: float
    max_envelope: int
    body: typing.Optional[ET.Element]


def parse_duration(text: typing.Optional[str], default: float) -> float:
    match = _DURATION.match((text or "").strip())
    if not match:
        return default
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _uuid(text: typing.Optional[str], what: str) -> typing.Optional[uuid.UUID]:
    if not text:
        return None
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise WSManFault(FAULT_INVALID, f"invalid {what} {text!r}", "w:InvalidSelectors") from None


def _b64(text: typing.Optional[str]) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=False)
    except (binascii.Error, ValueError):
        raise WSManFault(FAULT_INVALID, "invalid base64 payload") from None


def parse_request(body: bytes) -> Request:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise WSManFault(FAULT_INVALID, f"malformed SOAP envelope: {exc}", "w:SchemaValidationError", 400) from exc
    header = root.find("s:Header", NS)
    if header is None:
        raise WSManFault(FAULT_INVALID, "SOAP envelope without a header", "w:SchemaValidationError", 400)

    def text(path: str) -> str:
        el = header.find(path, NS)
        return (el.text or "").strip() if el is not None else ""

    shell_id = None
    for selector in header.findall("wsman:SelectorSet/wsman:Selector", NS):
        if selector.attrib.get("Name") == "ShellId":
            shell_id = _uuid(selector.text, "ShellId")
    try:
        max_envelope = int(text("wsman:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_envelope = 153600
    body_el = root.find("s:Body", NS)
    return Request(
        action=text("wsa:Action"),
        message_id=text("wsa:MessageID"),
        resource_uri=text("wsman:ResourceURI"),
        shell_id=shell_id,
        timeout=parse_duration(text("wsman:OperationTimeout"), 60.0),
        max_envelope=max(max_envelope, 8192),
        body=body_el[0] if body_el is not None and len(body_el) else None,
    )


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="%s" xmlns:wsa="%s" xmlns:wsman="%s" xmlns:rsp="%s" xmlns:x="%s">'
        "<s:Header><wsa:Action>%s</wsa:Action><wsa:MessageID>uuid:%s</wsa:MessageID>"
        "<wsa:RelatesTo>%s</wsa:RelatesTo><wsa:To>%s</wsa:To></s:Header><s:Body>%s</s:Body></s:Envelope>"
        % (
            NS["s"], NS["wsa"], NS["wsman"], NS["rsp"], _T[:-1],
            action, str(uuid.uuid4()).upper(), escape(relates_to), ANONYMOUS, body,
        )
    ).encode("utf-8")


def fault_envelope(fault: WSManFault, relates_to: str = "") -> bytes:
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>"
        '<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason><s:Detail>'
        '<f:WSManFault xmlns:f="%s" Code="%d" Machine="slipway-simulator"><f:Message>%s</f:Message></f:WSManFault>'
        "</s:Detail></s:Fault>"
    ) % (escape(fault.subcode), escape(fault.message), NS["wsmanfault"], fault.code, escape(fault.message))
    return envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


class WSManService:
    """All shells (runspace pools) of one simulator server."""

    def __init__(self, engine: Engine, endpoint: str = "http://127.0.0.1/wsman", idle_timeout: float = 7200.0):
        self.engine = engine
        self.endpoint = endpoint
        self.idle_timeout = idle_timeout
        self._shells: dict[uuid.UUID, PoolHost] = {}
        self._lock = threading.Lock()

    # --- entry point ----------------------------------------------------------------------------
    def handle(self, body: bytes, username: str, client_ip: str = "127.0.0.1") -> tuple[int, bytes]:
        message_id = ""
        try:
            req = parse_request(body)
            message_id = req.message_id
            handler = {
                ACTION_CREATE: self._create,
                ACTION_COMMAND: self._command,
                ACTION_SEND: self._send,
                ACTION_RECEIVE: self._receive,
                ACTION_SIGNAL: self._signal,
                ACTION_DELETE: self._delete,
                ACTION_GET: self._get,
            }.get(req.action)
            if handler is None:
                raise WSManFault(FAULT_ACTION_NOT_SUPPORTED, f"action {req.action} is not supported", "w:ActionNotSupported")
            action, response_body = handler(req, username, client_ip)
            return 200, envelope(action, message_id, response_body)
        except WSManFault as fault:
            return fault.status, fault_envelope(fault, message_id)
        except Exception as exc:  # never let a bug kill the connection without an answer
            log.exception("WSMan request failed")
            return 500, fault_envelope(WSManFault(FAULT_INVALID, f"simulator error: {exc}"), message_id)

    def shell(self, shell_id: typing.Optional[uuid.UUID]) -> PoolHost:
        host = self._shells.get(shell_id) if shell_id else None
        if host is None:
            raise WSManFault(
                FAULT_SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell "
                "was not found on the server.",
                "w:InvalidSelectors",
            )
        return host

    def close_all(self) -> None:
        with self._lock:
            hosts = list(self._shells.values())
            self._shells.clear()
        for host in hosts:
            host.close(wait=0.5)

    def shell_count(self) -> int:
        return len(self._shells)

    # --- actions --------------------------------------------------------------------------------
    def _reap_idle(self) -> None:
        limit = time.monotonic() - self.idle_timeout
        with self._lock:
            idle = [h for h in self._shells.values() if h.last_used < limit and not h.commands]
            for host in idle:
                self._shells.pop(host.shell_id, None)
        for host in idle:
            host.close(wait=0)

    def _create(self, req: Request, username: str, client_ip: str) -> tuple[str, str]:
        if req.resource_uri.lower() != "http://schemas.microsoft.com/powershell/microsoft.powershell":
            raise WSManFault(FAULT_INVALID, f"unknown resource URI {req.resource_uri}", "w:InvalidResourceURI")
        shell_el = req.body
        if shell_el is None or shell_el.tag != "{%s}Shell" % NS["rsp"]:
            raise WSManFault(FAULT_INVALID, "Create without a Shell element")
        creation = shell_el.find("pwsh:creationXml", NS)
        if creation is None:
            raise WSManFault(FAULT_INVALID, "Create without creationXml")
        self._reap_idle()
        shell_id = _uuid(shell_el.attrib.get("ShellId"), "ShellId") or uuid.uuid4()
        with self._lock:
            if shell_id in self._shells:
                raise WSManFault(FAULT_INVALID, f"shell {shell_id} already exists")
        try:
            host = PoolHost(shell_id, self.engine, username)
        except PSError as exc:  # the engine refused the session (e.g. a fault injected for this user)
            raise WSManFault(FAULT_ACCESS_DENIED, exc.message, "w:AccessDenied") from exc
        try:
            host.open(_b64(creation.text))
        except PSRPHostError as exc:
            host.close(wait=0)
            raise WSManFault(FAULT_INVALID, str(exc)) from exc
        with self._lock:
            self._shells[shell_id] = host
        sid = str(shell_id).upper()
        body = (
            "<x:ResourceCreated><wsa:Address>%s</wsa:Address><wsa:ReferenceParameters>"
            "<wsman:ResourceURI>%s</wsman:ResourceURI><wsman:SelectorSet>"
            '<wsman:Selector Name="ShellId">%s</wsman:Selector></wsman:SelectorSet></wsa:ReferenceParameters>'
            "</x:ResourceCreated>%s"
        ) % (escape(self.endpoint), escape(req.resource_uri), sid, self._shell_xml(host, req.resource_uri, client_ip))
        return _T + "CreateResponse", body

    def _shell_xml(self, host: PoolHost, resource_uri: str, client_ip: str) -> str:
        return (
            "<rsp:Shell><rsp:ShellId>%s</rsp:ShellId><rsp:Name>Runspace</rsp:Name><rsp:ResourceUri>%s</rsp:ResourceUri>"
            "<rsp:Owner>%s</rsp:Owner><rsp:ClientIP>%s</rsp:ClientIP><rsp:ProcessId>0</rsp:ProcessId>"
            "<rsp:IdleTimeOut>PT%d.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:State>Connected</rsp:State>"
            "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
            "</rsp:Shell>"
        ) % (
            str(host.shell_id).upper(), escape(resource_uri), escape(host.username), escape(client_ip),
            int(self.idle_timeout),
        )

    def _command(self, req: Request, username: str, client_ip: str) -> tuple[str, str]:
        host = self.shell(req.shell_id)
        el = req.body
        if el is None or el.tag != "{%s}CommandLine" % NS["rsp"]:
            raise WSManFault(FAULT_INVALID, "Command without a CommandLine element")
        command_id = _uuid(el.attrib.get("CommandId"), "CommandId")
        data = b"".join(_b64(arg.text) for arg in el.findall("rsp:Arguments", NS))
        try:
            command_id = host.command(command_id, data)
        except PSRPHostError as exc:
            raise WSManFault(FAULT_INVALID, str(exc)) from exc
        body = "<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId></rsp:CommandResponse>" % (
            escape(el.attrib.get("CommandId") or str(command_id).upper())
        )
        return _SHELL + "CommandResponse", body

    def _send(self, req: Request, username: str, client_ip: str) -> tuple[str, str]:
        host = self.shell(req.shell_id)
        el = req.body
        if el is None or el.tag != "{%s}Send" % NS["rsp"]:
            raise WSManFault(FAULT_INVALID, "Send without a Send element")
        try:
            for stream in el.findall("rsp:Stream", NS):
                host.send(_b64(stream.text), _uuid(stream.attrib.get("CommandId"), "CommandId"))
        except UnknownCommand as exc:
            raise WSManFault(FAULT_COMMAND_NOT_FOUND, str(exc), "w:InvalidSelectors") from exc
        except PSRPHostError as exc:
            raise WSManFault(FAULT_INVALID, str(exc)) from exc
        return _SHELL + "SendResponse", "<rsp:SendResponse/>"

    def _receive(self, req: Request, username: str, client_ip: str) -> tuple[str, str]:
        host = self.shell(req.shell_id)
        el = req.body
        desired = el.find("rsp:DesiredStream", NS) if el is not None else None
        cid_text = desired.attrib.get("CommandId") if desired is not None else None
        command_id = _uuid(cid_text, "CommandId")
        amount = max((req.max_envelope - _ENVELOPE_OVERHEAD) * 3 // 4, 1024)
        try:
            data, done = host.receive(command_id, amount, req.timeout)
        except ReceiveTimeout:
            raise WSManFault(
                FAULT_TIMED_OUT,
                "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
                "w:TimedOut",
            ) from None
        except UnknownCommand as exc:
            raise WSManFault(FAULT_COMMAND_NOT_FOUND, str(exc), "w:InvalidSelectors") from exc
        cid_attr = ' CommandId="%s"' % escape(cid_text, {'"': "&quot;"}) if cid_text else ""
        parts = ["<rsp:ReceiveResponse>"]
        if data:
            parts.append('<rsp:Stream Name="stdout"%s>%s</rsp:Stream>' % (cid_attr, base64.b64encode(data).decode()))
        if cid_text:
            parts.append('<rsp:CommandState%s State="%s"/>' % (cid_attr, STATE_DONE if done else STATE_RUNNING))
        parts.append("</rsp:ReceiveResponse>")
        return _SHELL + "ReceiveResponse", "".join(parts)

    def _signal(self, req: Request, username: str, client_ip: str) -> tuple[str, str]:
        host = self.shell(req.shell_id)
        el = req.body
        if el is None or el.tag != "{%s}Signal" % NS["rsp"]:
            raise WSManFault(FAULT_INVALID, "Signal without a Signal element")
        command_id = _uuid(el.attrib.get("CommandId"), "CommandId")
        code_el = el.find("rsp:Code", NS)
        code = (code_el.text or "").strip() if code_el is not None else ""
        if command_id is not None and code.lower() in STOP_SIGNALS:
            host.signal(command_id)
        return _SHELL + "SignalResponse", "<rsp:SignalResponse/>"

    def _delete(self, req: Request, username: str, client_ip: str) -> tuple[str, str]:
        host = self.shell(req.shell_id)
        with self._lock:
            self._shells.pop(host.shell_id, None)
        host.close()
        return _T + "DeleteResponse", ""

    def _get(self, req: Request, username: str, client_ip: str) -> tuple[str, str]:
        if req.resource_uri.rstrip("/") == CONFIG_URI:
            body = (
                '<cfg:Config xmlns:cfg="%s"><cfg:MaxEnvelopeSizekb>500</cfg:MaxEnvelopeSizekb>'
                "<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms></cfg:Config>" % CONFIG_URI
            )
            return _T + "GetResponse", body
        host = self.shell(req.shell_id)
        return _T + "GetResponse", self._shell_xml(host, "http://schemas.microsoft.com/powershell/Microsoft.PowerShell", client_ip)
