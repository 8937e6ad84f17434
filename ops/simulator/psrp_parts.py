"""Pieces of the PSRP glue (``psrp_host``): errors, per-target output queues, psrpcore's server
pool adapted to pypsrp, contract errors as PowerShell error records, pipelines as contract statements."""
from __future__ import annotations

import collections
import typing

from psrpcore import ServerRunspacePool
from psrpcore._payload import PSRPMessage, create_fragment
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, ErrorRecord, NETException, PSRPMessageType

from . import clixml, pipeline_xml
from .contract import CommandSpec, PSError, Statement

class PSRPHostError(Exception):
    """Something the client sent that we cannot process (becomes a WSMan fault)."""


class ReceiveTimeout(Exception):
    """Nothing to send before the OperationTimeout (or a newer Receive took over)."""


class UnknownCommand(PSRPHostError):
    pass


class _Queue:
    __slots__ = ("messages", "nbytes", "gen")

    def __init__(self) -> None:
        self.messages: collections.deque[PSRPMessage] = collections.deque()
        self.nbytes = 0
        self.gen = 0

    def append(self, message: PSRPMessage) -> None:
        self.messages.append(message)
        self.nbytes += len(message)

    def pack(self, amount: int) -> bytes:
        """PSRP fragments of the queued messages, at most ``amount`` bytes (psrpcore's data_to_send, per queue)."""
        parts = []
        messages = self.messages
        while messages and amount > 21:
            message = messages[0]
            before = len(message)
            fragment = message.fragment(amount - 21)
            parts.append(create_fragment(fragment.object_id, fragment.fragment_id, fragment.data, fragment.end))
            amount -= 21 + len(fragment.data)
            self.nbytes -= before - len(message)
            if len(message) == 0:
                messages.popleft()
        return b"".join(parts)


def _prop(ps_object: typing.Any, name: str) -> typing.Any:
    """A property of a deserialized message, case-insensitively (pypsrp sends ``CI`` where psrpcore reads ``ci``)."""
    meta = ps_object.PSObject
    for prop in list(meta.extended_properties) + list(meta.adapted_properties):
        if prop.name.lower() == name.lower():
            return prop.get_value(ps_object)
    raise PSRPHostError(f"message without {name}")


class FastCreatePipeline(typing.NamedTuple):
    """A CREATE_PIPELINE read by ``pipeline_xml`` (psrpcore's event would be CreatePipelineEvent)."""

    pipeline_id: typing.Any
    statements: list


class _ServerPool(ServerRunspacePool):
    """psrpcore's server pool, reading the call id of availability requests the way pypsrp spells it,
    and the commands of a new pipeline through ``pipeline_xml``'s fast path when it can."""

    def _process_message(self, message: PSRPMessage) -> typing.Any:
        if message.message_type == PSRPMessageType.CreatePipeline and message.pipeline_id in self.pipeline_table:
            found = pipeline_xml.statements(message.data)
            if found is not None:
                return FastCreatePipeline(message.pipeline_id, found)
        return super()._process_message(message)

    def _remember(self, event: typing.Any, handler: typing.Optional[typing.Callable[[typing.Any], None]]) -> None:
        ci = int(_prop(event._ps_object, "ci"))
        self._ci_events[ci] = event
        self._ci_handlers[ci] = handler
        event.call_id = ci

    def _process_GetAvailableRunspaces(self, event: typing.Any) -> None:
        self._remember(event, None)

    def _process_ResetRunspaceState(self, event: typing.Any) -> None:
        self._remember(event, None)

    def _process_SetMaxRunspaces(self, event: typing.Any) -> None:
        count = int(_prop(event._ps_object, "MaxRunspaces"))
        self._remember(event, lambda e: setattr(self, "_max_runspaces", count))

    def _process_SetMinRunspaces(self, event: typing.Any) -> None:
        count = int(_prop(event._ps_object, "MinRunspaces"))
        self._remember(event, lambda e: setattr(self, "_min_runspaces", count))


def _error_record(error: PSError) -> ErrorRecord:
    exception = NETException(Message=error.message, HResult=-2146233087)
    names = [error.exception_type]
    if error.exception_type != "System.Exception":
        names.append("System.Exception")
    exception.PSObject.type_names = names + ["System.Object"]
    category = getattr(ErrorCategory, error.category, ErrorCategory.NotSpecified)
    target_name = "" if error.target is None else str(error.target)
    record = ErrorRecord(
        Exception=exception,
        TargetObject=clixml.to_psrpcore(error.target),
        FullyQualifiedErrorId=error.error_id,
        CategoryInfo=ErrorCategoryInfo(Category=category, Reason=error.reason, TargetName=target_name),
    )
    record.PSObject.to_string = error.message
    return record


def _statements(pipeline: typing.Any) -> list[Statement]:
    statements: list[Statement] = []
    current: list[CommandSpec] = []
    for cmd in pipeline.commands:
        params = [(None if name is None else str.__str__(name), clixml.from_ps(value)) for name, value in cmd.parameters]
        current.append(CommandSpec(name=str.__str__(cmd.command_text), is_script=bool(cmd.is_script), parameters=params))
        if cmd.end_of_statement:
            statements.append(Statement(commands=current))
            current = []
    if current:
        statements.append(Statement(commands=current))
    return statements
