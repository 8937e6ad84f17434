"""The contract between the simulator's protocol layer and its PowerShell engine.

The protocol layer (``wsman.py`` / ``psrp_host.py``) speaks WinRM/WSMan + PSRP to
an unmodified pypsrp client. It turns each PSRP pipeline into a list of
``Statement`` objects and asks the engine (``engine.py``) to run them in a
``Session`` (one per runspace pool). The engine writes results through an
``Output`` sink; the protocol layer serializes them to CLIXML.

Nothing here imports Django, pypsrp or psrpcore.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import typing
import uuid


@dataclasses.dataclass
class CommandSpec:
    """One command of a PSRP pipeline, exactly as the client sent it.

    ``name`` is the cmdlet name (``is_script`` False) or the script text
    (``is_script`` True). ``parameters`` keeps the client's order: a
    ``(name, value)`` pair per ``add_parameter`` (a switch arrives with the
    value ``None``) and ``(None, value)`` per ``add_argument``.
    """

    name: str
    is_script: bool = False
    parameters: list[tuple[str | None, typing.Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Statement:
    """Commands piped into each other (``a | b | c``)."""

    commands: list[CommandSpec]


@dataclasses.dataclass
class SimEnum:
    """A .NET enum value, e.g. ``SimEnum('Microsoft.VirtualManager.Utils.VMComputerSystemState', 'Running', 0)``.

    Serialized like PowerShell serializes an enum: its ToString is ``name``,
    its value the integer, its type names ``[type_name, 'System.Enum', ...]``.
    """

    type_name: str
    name: str
    value: int

    def __str__(self) -> str:
        return self.name


@dataclasses.dataclass
class SimObject:
    """A complex object the way VMM returns it.

    ``type_names`` most-derived first (e.g. ``['Microsoft.SystemCenter.VirtualMachineManager.VM', ...]``).
    ``properties`` in a stable order; values are any of the value types below.
    ``to_string`` is what ``str(obj)`` gives on the client.
    """

    type_names: list[str]
    properties: dict[str, typing.Any]
    to_string: str = ""

    def get(self, name: str, default: typing.Any = None) -> typing.Any:
        # PowerShell member access is case-insensitive
        for key, value in self.properties.items():
            if key.lower() == name.lower():
                return value
        return default


# Value types the engine may output or receive:
#   None, bool, int (Int32 when it fits, else Int64), float (Double), str,
#   uuid.UUID (Guid), datetime.datetime (aware, UTC) (DateTime),
#   datetime.timedelta (TimeSpan), list/tuple (Object[]), dict (Hashtable),
#   SimEnum, SimObject.
# Values received from the client that are neither of these (deserialized
# complex objects) reach the engine as whatever the protocol layer produced;
# the engine treats them as opaque and refuses to bind them where VMM would.
Value = typing.Any
_ = (_dt, uuid)


class PSError(Exception):
    """A PowerShell error record.

    Raised by the engine: a terminating error (the pipeline ends Failed and
    the client sees ``had_errors`` True with this record in ``streams.error``).
    Passed to ``Output.write_error``: a non-terminating error (the pipeline
    goes on, ``had_errors`` stays False).
    """

    def __init__(
        self,
        message: str,
        *,
        error_id: str = "",
        category: str = "NotSpecified",
        target: typing.Any = None,
        exception_type: str = "System.Management.Automation.RuntimeException",
        reason: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.error_id = error_id or exception_type.rsplit(".", 1)[-1]
        self.category = category  # a System.Management.Automation.ErrorCategory name
        self.target = target
        self.exception_type = exception_type
        self.reason = reason or self.exception_type.rsplit(".", 1)[-1]


class Output(typing.Protocol):
    """Where the engine writes what a pipeline produces (thread-safe)."""

    def write_output(self, value: Value) -> None: ...

    def write_error(self, error: PSError) -> None: ...

    def write_progress(self, activity: str, status: str, percent: int, activity_id: int = 0) -> None: ...

    def write_warning(self, message: str) -> None: ...

    def stopped(self) -> bool:
        """True once the client asked to stop the pipeline; long cmdlets should return."""
        ...


class Session(typing.Protocol):
    """State of one runspace pool (its variables), created by ``Engine.open_session``."""

    def execute(self, statements: list[Statement], out: Output) -> None:
        """Run the statements in order. Raises PSError for a terminating error."""
        ...

    def close(self) -> None: ...


class Engine(typing.Protocol):
    """What the protocol layer needs from the simulated fabric."""

    def open_session(self, username: str) -> Session: ...

    def server_down(self) -> bool:
        """True while a fault says the whole server stops answering (requests hang)."""
        ...

    def control(self, command: dict) -> dict:
        """Out-of-band control (fault injection, state dump, time scale) from tests,
        benches and the demo, sent as JSON to the simulator's control endpoint."""
        ...
