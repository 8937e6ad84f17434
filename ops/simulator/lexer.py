"""Tokenizer for the simulator's PowerShell subset (see language.py for the grammar).

Produces NL SEMI PIPE COMMA EQ LPAREN RPAREN TYPE VAR STR DQ PARAM WORD EOF tokens and
refuses, with a ParserError, every character that would start something the subset
does not support (script blocks, subexpressions, splatting, call operator, redirection,
backtick escapes, typographic quotes and dashes).
"""
from __future__ import annotations

import dataclasses
import typing

from . import errors
from .ast_nodes import Const, Var

KEYWORDS = {"begin", "break", "catch", "class", "continue", "data", "define", "do", "dynamicparam",
            "else", "elseif", "end", "enum", "exit", "filter", "finally", "for", "foreach", "from",
            "function", "hidden", "if", "in", "process", "return", "static", "switch", "throw",
            "trap", "try", "until", "using", "var", "while", "workflow", "parallel", "sequence",
            "inlinescript", "configuration"}
_WORD_EXTRA = set("_.-:\\/*?+%~^!")
_REFUSED = {"{": "script blocks", "}": "script blocks", "@": "array/hashtable expressions and splatting",
            "&": "the call operator", "<": "redirection", ">": "redirection", "`": "backtick escapes",
            "[": "type literals and indexing", "]": "type literals and indexing",
            "\u2018": "typographic quotes", "\u2019": "typographic quotes", "\u201c": "typographic quotes",
            "\u201d": "typographic quotes", "\u2013": "typographic dashes", "\u2014": "typographic dashes"}
_CONSTS = {"true": True, "false": False, "null": None}


@dataclasses.dataclass
class Tok:
    kind: str      # NL SEMI PIPE COMMA EQ LPAREN RPAREN TYPE VAR STR DQ PARAM WORD EOF
    value: typing.Any
    pos: int
    colon: bool = False


# ---- tokenizer ---------------------------------------------------------------------------
def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in _WORD_EXTRA


def tokenize(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(src)

    def err(msg, eid, pos):
        raise errors.parser_error(msg, eid, src, pos)

    while i < n:
        ch = src[i]
        if ch in " \t\r\f\v\u00a0":
            i += 1
            continue
        if ch == "#":
            while i < n and src[i] != "\n":
                i += 1
            continue
        start = i
        if ch == "\n":
            toks.append(Tok("NL", None, i)); i += 1; continue
        if ch in ";|,=()":
            kind = {";": "SEMI", "|": "PIPE", ",": "COMMA", "=": "EQ", "(": "LPAREN", ")": "RPAREN"}[ch]
            if ch == "|" and i + 1 < n and src[i + 1] == "|":
                err("The token '||' is not a valid statement separator in this version.", "InvalidEndOfLine", i)
            toks.append(Tok(kind, ch, i)); i += 1; continue
        if ch == "[":
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in "._"):
                j += 1
            if j < n and src[j] == "]" and j > i + 1 and toks and toks[-1].kind in ("LPAREN", "COMMA"):
                toks.append(Tok("TYPE", src[i + 1:j], i)); i = j + 1; continue
            err("Unexpected token '[': type literals and indexing are not supported.", "UnexpectedToken", i)
        if ch == "'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    err("The string is missing the terminator: '.", "TerminatorExpectedAtEndOfString", i)
                c = src[j]
                if c in "\u2018\u2019\u201a\u201b":
                    err("Typographic quotes are not supported in strings.", "UnexpectedToken", j)
                if c == "'":
                    if j + 1 < n and src[j + 1] == "'":
                        buf.append("'"); j += 2; continue
                    break
                buf.append(c); j += 1
            toks.append(Tok("STR", "".join(buf), i)); i = j + 1
            _check_adjacent(src, i, err)
            continue
        if ch == '"':
            j, buf, parts = i + 1, [], []
            while True:
                if j >= n:
                    err('The string is missing the terminator: ".', "TerminatorExpectedAtEndOfString", i)
                c = src[j]
                if c in "\u201c\u201d\u201e`":
                    err("Escapes and typographic quotes are not supported in strings.", "UnexpectedToken", j)
                if c == '"':
                    if j + 1 < n and src[j + 1] == '"':
                        buf.append('"'); j += 2; continue
                    break
                if c == "$" and j + 1 < n and (src[j + 1] in "({"):
                    err("Subexpressions are not supported: '$" + src[j + 1] + "'.", "UnexpectedToken", j)
                if c == "$" and j + 1 < n and (src[j + 1].isalnum() or src[j + 1] == "_"):
                    k = j + 1
                    while k < n and (src[k].isalnum() or src[k] == "_"):
                        k += 1
                    if buf:
                        parts.append("".join(buf)); buf = []
                    name = src[j + 1:k]
                    parts.append(Const(_CONSTS[name.lower()]) if name.lower() in _CONSTS else Var(name))
                    j = k
                    continue
                buf.append(c); j += 1
            if buf or not parts:
                parts.append("".join(buf))
            toks.append(Tok("DQ", parts, i)); i = j + 1
            _check_adjacent(src, i, err)
            continue
        if ch == "$":
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            if j == i + 1:
                err(f"Unexpected token '${src[j:j + 1]}': only simple variables are supported.", "UnexpectedToken", i)
            name = src[i + 1:j]
            members = []
            while j < n and src[j] == ".":
                k = j + 1
                while k < n and (src[k].isalnum() or src[k] == "_"):
                    k += 1
                if k == j + 1:
                    err("Missing property name after reference operator.", "MissingPropertyName", j)
                members.append(src[j + 1:k])
                j = k
            if j < n and src[j] in "([:{":
                err(f"Unexpected token '{src[j]}': method calls, indexing and scoped variables are not supported.",
                    "UnexpectedToken", j)
            toks.append(Tok("VAR", (name, tuple(members)), i)); i = j
            _check_adjacent(src, i, err)
            continue
        if ch == "-" and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] == "_"):
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            colon = j < n and src[j] == ":"
            if j < n and not colon and src[j] not in " \t\r\n;|,)":
                err(f"Unexpected token '{src[i:j + 1]}' in expression or statement.", "UnexpectedToken", i)
            toks.append(Tok("PARAM", src[i + 1:j], i, colon)); i = j + (1 if colon else 0)
            continue
        if ch in _REFUSED:
            err(f"Unexpected token '{ch}' in expression or statement: {_REFUSED[ch]} are not supported.",
                "UnexpectedToken", i)
        if _is_word_char(ch):
            j = i
            while j < n and _is_word_char(src[j]):
                j += 1
            toks.append(Tok("WORD", src[i:j], i)); i = j
            _check_adjacent(src, i, err)
            continue
        err(f"Unexpected token '{ch}' in expression or statement.", "UnexpectedToken", start)
    toks.append(Tok("EOF", None, n))
    return toks


def _check_adjacent(src, i, err):
    if i < len(src) and (src[i] in "'\"$" or _is_word_char(src[i]) and src[i] != "."):
        err(f"Unexpected token '{src[i]}' in expression or statement.", "UnexpectedToken", i)


_MULT = {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4}


def parse_number(text: str):
    t = text.lower()
    mult = 1
    if len(t) > 2 and t[-2:] in _MULT:
        mult, t = _MULT[t[-2:]], t[:-2]
    try:
        if t.startswith("0x"):
            return int(t, 16) * mult
        return int(t) * mult
    except ValueError:
        pass
    try:
        if any(c.isdigit() for c in t) and all(c.isdigit() or c in ".-+e" for c in t):
            v = float(t) * mult
            return v
    except ValueError:
        pass
    return None


