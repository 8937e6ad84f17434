"""A fast reading of the one message that carries commands: CREATE_PIPELINE.

psrpcore's generic deserializer builds a PSObject for every element of a
message, ~2 ms of CPU per command on this machine: with 50 jobs submitted in
one round trip (150 commands) the simulator spent most of its time there, not
in the fabric. This reads the pipeline's statements straight from the XML:
command text, IsScript, and each parameter's name and value, for the value
types clients send as parameters (strings, numbers, booleans, GUIDs, null, and
lists or hashtables of those). Anything else in a message (a credential, a
date, a secure string, a custom object) makes ``statements`` return None and
the message goes through psrpcore as before, so the fast path can only be
faster, never different.
"""
from __future__ import annotations

import typing
import uuid
from xml.etree import ElementTree

from psrpcore.types._serializer import _deserialize_string

from .contract import CommandSpec, Statement


class _Unsupported(Exception):
    """Something the fast path does not read: let psrpcore do it."""


def statements(data: bytes) -> typing.Optional[list[Statement]]:
    """The statements of a CREATE_PIPELINE message, or None to use psrpcore instead."""
    try:
        root = ElementTree.fromstring(data)
        shell = _member(_ms(root), "PowerShell")
        if shell is None:
            return None
        ms = _ms(shell)
        extra = _member(ms, "ExtraCmds")
        if extra is not None and extra.tag == "Obj":
            groups = [_member(_ms(item), "Cmds") for item in _items(extra)]
        else:
            groups = [_member(ms, "Cmds")]
        out = []
        for group in groups:
            if group is None:
                raise _Unsupported("a statement without Cmds")
            commands = [_command(c) for c in _items(group)]
            if commands:
                out.append(Statement(commands=commands))
        return out
    except (_Unsupported, ElementTree.ParseError, ValueError):
        return None


def _ms(obj: ElementTree.Element) -> ElementTree.Element:
    ms = obj.find("MS")
    if ms is None:
        raise _Unsupported("an object without MS")
    return ms


def _member(ms: ElementTree.Element, name: str) -> typing.Optional[ElementTree.Element]:
    for child in ms:
        if child.get("N") == name:
            return child
    return None


def _items(obj: ElementTree.Element) -> list[ElementTree.Element]:
    for child in obj:
        if child.tag in ("LST", "IE", "QUE", "STK"):
            return list(child)
    raise _Unsupported("a list without items")


def _command(obj: ElementTree.Element) -> CommandSpec:
    ms = _ms(obj)
    text, is_script, args = _member(ms, "Cmd"), _member(ms, "IsScript"), _member(ms, "Args")
    if text is None or text.tag != "S":
        raise _Unsupported("a command without text")
    params = []
    if args is not None and args.tag == "Obj":
        for arg in _items(args):
            arg_ms = _ms(arg)
            name, value = _member(arg_ms, "N"), _member(arg_ms, "V")
            params.append((None if name is None or name.tag == "Nil" else _string(name.text),
                           None if value is None else _value(value, 0)))
    return CommandSpec(name=_string(text.text), is_script=_bool(is_script), parameters=params)


def _string(text: typing.Optional[str]) -> str:
    text = text or ""
    return _deserialize_string(text) if "_x" in text or "_X" in text else text


def _bool(el: typing.Optional[ElementTree.Element]) -> bool:
    return el is not None and el.tag == "B" and (el.text or "").strip().lower() == "true"


_INTS = {"I32": 2**31, "I64": 2**63}  # psrpcore refuses a value out of range: so does this, by giving up


def _value(el: ElementTree.Element, depth: int) -> typing.Any:
    tag = el.tag
    if tag == "S":
        return _string(el.text)
    if tag == "Nil":
        return None
    if tag == "B":
        return _bool(el)
    if tag in _INTS:
        value = int(el.text)
        if not -_INTS[tag] <= value < _INTS[tag]:
            raise _Unsupported(f"{tag} out of range")
        return value
    if tag in ("Db", "Sg"):
        return float(el.text)
    if tag == "G":
        return uuid.UUID(el.text)
    if tag == "Obj" and depth < 8:
        children = [c for c in el if c.tag not in ("TN", "TNRef", "ToString")]
        if len(children) == 1 and children[0].tag in ("LST", "IE"):
            return [_value(c, depth + 1) for c in children[0]]
        if len(children) == 1 and children[0].tag == "DCT":
            out = {}
            for entry in children[0]:
                key = next((c for c in entry if c.get("N") == "Key"), None)
                val = next((c for c in entry if c.get("N") == "Value"), None)
                if key is None:
                    raise _Unsupported("a hashtable entry without a key")
                out[_value(key, depth + 1)] = None if val is None else _value(val, depth + 1)
            return out
    raise _Unsupported(f"a {tag} parameter value")
