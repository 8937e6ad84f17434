"""The PowerShell subset the simulator accepts in scripts (``CommandSpec.is_script``).

Grammar (nothing more)::

    script     := [ 'param' '(' [ decl { ',' decl } ] ')' ] { statement ( NEWLINE | ';' ) }
    decl       := [ '[' type ']' ] $name [ '=' expr ]
    statement  := $var '=' ( pipeline | expr )  |  pipeline  |  expr [ '|' commands ]
    commands   := command { '|' command }
    command    := Name { -Param[:expr] | expr }
    expr       := primary { ',' primary }                     (an array)
    primary    := 'single' | "double with $simple vars" | number | bareword
                | $true | $false | $null | $var{.Member}

Everything else (``$(...)``, ``${x}``, script blocks ``{}``, ``@(...)``, ``&``, ``.``
sourcing, backticks, redirections, method calls, indexing, keywords such as
``foreach``/``if``/``function``) is refused with a ParserError before anything in the
script runs. Values are data: once tokenized, a string is never parsed again.
"""
from __future__ import annotations

import typing

from . import errors
from .contract import PSError, SimObject

from .ast_nodes import (Arg, ArrayExpr, Assign, CommandAst, Const, DQString, ExprStmt, ParamDecl,  # noqa: F401
                        ParamEl, PipelineAst, Script, Var)
from .lexer import KEYWORDS, _CONSTS, Tok, parse_number, tokenize  # noqa: F401


# ---- parser ------------------------------------------------------------------------------
class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = tokenize(src)
        self.i = 0

    def peek(self, k=0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, tok: Tok, msg=None, eid="UnexpectedToken"):
        shown = tok.value if tok.kind not in ("DQ", "VAR", "EOF") else self.src[tok.pos:tok.pos + 12]
        raise errors.parser_error(msg or f"Unexpected token '{shown}' in expression or statement.",
                                  eid, self.src, tok.pos)

    def skip_separators(self):
        while self.peek().kind in ("NL", "SEMI"):
            self.i += 1

    def parse(self) -> Script:
        params = []
        while self.peek().kind == "NL":
            self.i += 1
        t = self.peek()
        if t.kind == "WORD" and t.value.lower() == "param" and self.peek(1).kind == "LPAREN":
            self.i += 2
            params = self.parse_params()
        stmts = []
        while True:
            self.skip_separators()
            if self.peek().kind == "EOF":
                break
            stmts.append(self.parse_statement())
            t = self.peek()
            if t.kind not in ("NL", "SEMI", "EOF"):
                self.fail(t)
        return Script(params, stmts)

    def parse_params(self) -> list:
        decls = []
        while True:
            while self.peek().kind == "NL":
                self.i += 1
            t = self.next()
            if t.kind == "RPAREN" and not decls:
                return decls
            switch = False
            while t.kind == "TYPE":
                switch = switch or t.value.lower() in ("switch", "system.management.automation.switchparameter")
                t = self.next()
            if t.kind != "VAR" or t.value[1]:
                self.fail(t, "Missing variable name in param block.", "InvalidFunctionParameter")
            default = None
            if self.peek().kind == "EQ":
                self.i += 1
                default = self.parse_expr(command_mode=False)
            decls.append(ParamDecl(t.value[0], default, switch))
            while self.peek().kind == "NL":
                self.i += 1
            t = self.next()
            if t.kind == "RPAREN":
                return decls
            if t.kind != "COMMA":
                self.fail(t, "Missing ')' in function parameter list.", "MissingEndParenthesisInFunctionParameterList")

    def parse_statement(self):
        t = self.peek()
        if t.kind == "VAR" and self.peek(1).kind == "EQ":
            self.i += 2
            if t.value[1]:
                self.fail(t, "Assigning to a property is not supported.")
            if self.peek().kind in ("NL", "SEMI", "EOF"):
                self.fail(self.peek(), "You must provide a value expression following the '=' operator.",
                          "ExpectedValueExpression")
            return Assign(t.value[0], self.parse_pipeline())
        p = self.parse_pipeline()
        return ExprStmt(p)

    def parse_pipeline(self):
        t = self.peek()
        if t.kind == "WORD" and parse_number(t.value) is None:
            cmds = [self.parse_command()]
            source = None
        elif t.kind in ("VAR", "STR", "DQ", "WORD"):
            source = self.parse_expr(command_mode=False)
            if self.peek().kind != "PIPE":
                return source
            cmds = []
        else:
            self.fail(t)
        while self.peek().kind == "PIPE":
            self.i += 1
            while self.peek().kind == "NL":
                self.i += 1
            t = self.peek()
            if t.kind != "WORD" or parse_number(t.value) is not None:
                self.fail(t, "Expressions are only allowed as the first element of a pipeline.",
                          "ExpressionsMustBeFirstInPipeline")
            cmds.append(self.parse_command())
        return PipelineAst(source, cmds)

    def parse_command(self) -> CommandAst:
        t = self.next()
        name = t.value
        if name.lower() in KEYWORDS:
            self.fail(t, f"Unexpected token '{name}': the '{name}' keyword is not supported by this simulator.")
        if not all(c.isalnum() or c in "-_." for c in name) or name.startswith((".", "-")):
            self.fail(t)
        elements = []
        while True:
            t = self.peek()
            if t.kind in ("NL", "SEMI", "PIPE", "EOF"):
                break
            if t.kind == "PARAM":
                self.i += 1
                value = None
                if t.colon:
                    if self.peek().kind in ("NL", "SEMI", "PIPE", "EOF"):
                        self.fail(t, f"Missing an argument for parameter '{t.value}'.", "MissingArgument")
                    value = self.parse_expr(command_mode=True)
                elements.append(ParamEl(t.value, value, t.colon))
            elif t.kind in ("VAR", "STR", "DQ", "WORD"):
                elements.append(self.parse_expr(command_mode=True))
            else:
                self.fail(t)
        return CommandAst(name, elements, 0)

    def parse_expr(self, command_mode: bool):
        items = [self.parse_primary(command_mode)]
        while self.peek().kind == "COMMA":
            self.i += 1
            while self.peek().kind == "NL":
                self.i += 1
            items.append(self.parse_primary(command_mode))
        return items[0] if len(items) == 1 else ArrayExpr(items)

    def parse_primary(self, command_mode: bool):
        t = self.next()
        if t.kind == "STR":
            return Const(t.value)
        if t.kind == "DQ":
            if len(t.value) == 1 and isinstance(t.value[0], str):
                return Const(t.value[0])
            return DQString(t.value)
        if t.kind == "VAR":
            name, members = t.value
            if name.lower() in _CONSTS and not members:
                return Const(_CONSTS[name.lower()])
            return Var(name, members)
        if t.kind == "WORD":
            num = parse_number(t.value)
            if num is not None:
                return Const(num)
            if command_mode:
                return Const(t.value)
        self.fail(t)


def parse(src: str) -> Script:
    if not isinstance(src, str):
        raise PSError("The script text must be a string.", error_id="InvalidScript", category="ParserError",
                      exception_type="System.Management.Automation.ParseException")
    return _Parser(src).parse()


# ---- evaluation --------------------------------------------------------------------------
def ps_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, SimObject):
        return value.to_string or (value.type_names[0] if value.type_names else "")
    if isinstance(value, (list, tuple)):
        return " ".join(ps_str(v) for v in value)
    return str(value)


def get_member(value, name: str, refresh=None):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if name.lower() in ("count", "length"):
            return len(value)
        out = [get_member(v, name, refresh) for v in value]
        return out
    if isinstance(value, SimObject):
        if refresh is not None:
            value = refresh(value)
        props = value.properties
        if name in props:
            return props[name]
        return value.get(name)
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k).lower() == name.lower():
                return v
        return None
    if isinstance(value, str) and name.lower() == "length":
        return len(value)
    attr = {"name": "name", "value": "value"}.get(name.lower())
    if attr and hasattr(value, attr):  # SimEnum
        return getattr(value, attr)
    return None


class Interpreter:
    """Runs a parsed Script against a variable table.

    ``run_pipeline(commands, input_items)`` runs ``[(name, [Arg...]), ...]`` and returns
    the output list; ``refresh(obj)`` re-reads a live object (jobs) for member access.
    """

    def __init__(self, variables: dict, run_pipeline, refresh=None, emit=None):
        self.vars = variables
        self.run_pipeline = run_pipeline
        self.refresh = refresh
        self.emit = emit

    def bind_params(self, script: Script, params: list[tuple]) -> None:
        decls = script.params
        given: dict[str, typing.Any] = {}
        positional = []
        for name, value in params:
            if name is None:
                positional.append(value)
                continue
            key = name.lstrip("-").lower()
            exact = [d for d in decls if d.name.lower() == key]
            matches = exact or [d for d in decls if d.name.lower().startswith(key)]
            if not matches:
                raise errors.parameter_not_found(name)
            if len(matches) > 1:
                raise errors.ambiguous_parameter(name, [d.name for d in matches])
            d = matches[0]
            if d.name in given:
                raise errors.parameter_bound_twice(d.name)
            given[d.name] = True if (value is None and d.switch) else value
        free = [d for d in decls if d.name not in given]
        for value in positional:
            if not free:
                raise errors.positional_not_found(ps_str(value))
            given[free.pop(0).name] = value
        for d in decls:
            if d.name in given:
                self.vars[d.name.lower()] = given[d.name]
            else:
                self.vars[d.name.lower()] = False if d.switch and d.default is None else self.evaluate(d.default)

    def run(self, script: Script, params: list[tuple] = ()) -> list:
        self.bind_params(script, list(params))
        out: list = []
        for stmt in script.statements:
            if isinstance(stmt, Assign):
                self.vars[stmt.var.lower()] = self._collapse(self._value_of(stmt.value))
            else:
                result = self._value_of(stmt.value, as_output=True)
                if self.emit is not None:
                    self.emit(result)
                else:
                    out.extend(result)
        return out

    @staticmethod
    def _collapse(items):
        if not isinstance(items, list):
            return items
        if not items:
            return None
        return items[0] if len(items) == 1 else items

    def _value_of(self, node, as_output=False):
        if isinstance(node, PipelineAst):
            items = None
            if node.source is not None:
                v = self.evaluate(node.source)
                items = [] if v is None else list(v) if isinstance(v, (list, tuple)) else [v]
            cmds = [(c.name, self.command_args(c)) for c in node.commands]
            return self.run_pipeline(cmds, items)
        v = self.evaluate(node)
        if self.refresh is not None and isinstance(v, SimObject):
            v = self.refresh(v)
        if not as_output:
            return v
        if v is None:
            return []
        return list(v) if isinstance(v, (list, tuple)) else [v]

    def command_args(self, cmd: CommandAst) -> list[Arg]:
        args = []
        for el in cmd.elements:
            if isinstance(el, ParamEl):
                if el.colon:
                    args.append(Arg(el.name, self.evaluate(el.value), True))
                else:
                    args.append(Arg(el.name, None, False))
            else:
                args.append(Arg(None, self.evaluate(el), True))
        return args

    def evaluate(self, node):
        if node is None:
            return None
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Var):
            value = self.vars.get(node.name.lower())
            for m in node.members:
                value = get_member(value, m, self.refresh)
            return value
        if isinstance(node, DQString):
            return "".join(p if isinstance(p, str) else ps_str(self.evaluate(p)) for p in node.parts)
        if isinstance(node, ArrayExpr):
            return [self.evaluate(i) for i in node.items]
        raise PSError("Unsupported expression.", error_id="UnexpectedToken", category="ParserError",
                      exception_type="System.Management.Automation.ParseException")
