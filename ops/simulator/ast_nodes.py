"""AST nodes of the simulator's PowerShell subset."""
from __future__ import annotations

import dataclasses
import typing


@dataclasses.dataclass
class Const:
    value: typing.Any


@dataclasses.dataclass
class Var:
    name: str
    members: tuple = ()


@dataclasses.dataclass
class DQString:
    parts: list  # str | Var


@dataclasses.dataclass
class ArrayExpr:
    items: list


@dataclasses.dataclass
class ParamEl:
    name: str
    value: typing.Any  # expression or None
    colon: bool


@dataclasses.dataclass
class CommandAst:
    name: str
    elements: list  # ParamEl | expression
    pos: int


@dataclasses.dataclass
class PipelineAst:
    source: typing.Any  # expression or None
    commands: list


@dataclasses.dataclass
class Assign:
    var: str
    value: typing.Any  # PipelineAst or expression


@dataclasses.dataclass
class ExprStmt:
    value: typing.Any


@dataclasses.dataclass
class ParamDecl:
    name: str
    default: typing.Any
    switch: bool


@dataclasses.dataclass
class Script:
    params: list
    statements: list


class Arg(typing.NamedTuple):
    """One argument of a command as the binder sees it."""
    name: str | None    # parameter name (no dash) or None for a positional value
    value: typing.Any
    has_value: bool     # False for a script's bare ``-Name`` (the binder may take the next value)


