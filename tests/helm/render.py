"""A small renderer for the subset of Helm's Go-template syntax that deploy/helm/cogplane uses.

No helm binary is reachable where these tests run, so this module renders the chart instead. It is
deliberately narrow: anything outside the subset below raises ``UnsupportedSyntax`` (or
``RenderError`` at run time) instead of being skipped, so a template edit the renderer cannot
follow fails the tests rather than passing unchecked.

Supported:

* actions ``{{ ... }}`` with the trim markers ``{{- `` and `` -}}``; comments ``{{/* ... */}}``;
* ``define "name"`` (top level only), ``if`` / ``else if`` / ``else`` / ``end``, and
  ``range $key, $value := pipeline`` / ``range $value := pipeline`` / ``range pipeline``
  (maps in sorted key order, as Go does);
* operands: ``.``, ``.a.b``, ``$``, ``$.a.b``, ``$var``, ``$var.a.b``, string literals with
  escapes, integers, ``true``/``false``/``nil``, parenthesised pipelines;
* pipelines ``a | f x`` (the piped value becomes the last argument, as in Go);
* functions: Go's ``and or not eq ne lt le gt ge index print`` and Helm/Sprig's ``include required
  fail default quote toYaml nindent trunc trimSuffix trimPrefix upper int sha256sum``.

Unsupported (raises): ``with``, ``template``, ``block``, ``break``, ``continue``, ``tpl``, variable
declarations outside ``range``, raw strings, field access on a parenthesised result (``(x).f``;
``(x) .f`` is two operands, as in Go), ``else`` in a ``range``, any other function, printing a map
or a list (use ``toYaml``).

Semantics follow Helm where it matters for this chart:

* values numbers are float64 (Helm reads values through JSON), so ``gt $svc.replicas 1`` is the same
  error here as in Helm and needs ``int``; floats print as Go's ``%v`` does (8700, 1e+06);
* user values are deep-merged into values.yaml (maps merge, anything else replaces, null deletes);
* a missing map key is an error (Helm's strict mode), which is stricter than ``helm template``;
  ``index`` on a missing key gives nil, as in Go;
* ``nil`` prints as the empty string (Helm strips ``<no value>``); ``quote`` of nil is empty;
* ``and``/``or`` evaluate every argument (Go short-circuits), so ``and .a .a.b`` with a missing
  ``.a`` errors here; that is stricter, never laxer;
* ``toYaml`` dumps with sorted keys and no trailing newline, integral floats as integers.
  Its quoting style differs from Go's yaml library, but the parsed result is the same.

Dependency charts (nats, postgresql) are not rendered: only this chart's own templates.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

import yaml


class UnsupportedSyntax(Exception):
    """The template uses syntax outside the supported subset (or is malformed)."""


class RenderError(Exception):
    """Rendering failed: a missing key, a failed ``required``/``fail``, a type error."""


# ---------------------------------------------------------------------------------------------
# Lexing: split a template into text and actions, applying trim markers.

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SPACE = " \t\r\n"


@dataclass
class _Action:
    content: str
    line: int


def _lex(source: str, name: str) -> list[str | _Action]:
    """Split into text and actions; a comment vanishes, trim markers eat the adjacent whitespace.

    As in Go, a trim marker is ``-`` plus one whitespace character, and a comment must fill its
    action: ``{{/* ... */}}``, optionally with trim markers.
    """
    pieces: list[str | _Action] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if trim_next:
            text = text.lstrip(_SPACE)
        raw = match.group(1)
        line = source.count("\n", 0, match.start()) + 1
        trim_left = raw[:1] == "-" and raw[1:2] != "" and raw[1:2] in _SPACE
        trim_right = raw[-1:] == "-" and raw[-2:-1] != "" and raw[-2:-1] in _SPACE
        body = raw[2 if trim_left else 0 : len(raw) - 2 if trim_right else len(raw)]
        pieces.append(text.rstrip(_SPACE) if trim_left else text)
        if body.startswith("/*"):
            if not body.endswith("*/") or len(body) < 4:
                raise UnsupportedSyntax(
                    f"{name}:{line}: a comment must end at the delimiter: {match.group(0)!r}"
                )
        elif body.lstrip().startswith("/*"):
            raise UnsupportedSyntax(f"{name}:{line}: malformed comment {match.group(0)!r}")
        else:
            pieces.append(_Action(body.strip(), line))
        trim_next = trim_right
        pos = match.end()
    tail = source[pos:]
    if "{{" in tail:
        raise UnsupportedSyntax(f"{name}: unclosed action in {tail[:40]!r}")
    pieces.append(tail.lstrip(_SPACE) if trim_next else tail)
    return pieces


# ---------------------------------------------------------------------------------------------
# Expressions: tokens, then a parsed pipeline.

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<number>-?\d+(?![\w.]))
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.(?![\w.]))
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>:=|[|(),])
    )""",
    re.VERBOSE,
)

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    '"': '"',
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _tokenize(text: str, where: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise UnsupportedSyntax(f"{where}: cannot parse {text[pos:]!r}")
        kind = match.lastgroup
        assert kind is not None
        token = (kind, match.group(kind))
        if kind == "field" and match.start(kind) == pos and tokens[-1:] == [("op", ")")]:
            token = ("chain", token[1])  # `(x).f`, unsupported; `(x) .f` is two operands, as in Go
        tokens.append(token)
        pos = match.end()
    return tokens


def _unquote(literal: str, where: str) -> str:
    def replace(m: re.Match[str]) -> str:
        char = m.group(1)
        if char not in _ESCAPES:
            raise UnsupportedSyntax(f"{where}: unsupported escape \\{char}")
        return _ESCAPES[char]

    return re.sub(r"\\(.)", replace, literal[1:-1])


@dataclass
class _Literal:
    value: Any


@dataclass
class _Field:
    base: str  # "." for dot, "$" for root, "$name" for a variable
    path: tuple[str, ...]


@dataclass
class _Ident:
    name: str


@dataclass
class _Pipeline:
    commands: list[list[_Operand]]
    where: str


_Operand: TypeAlias = _Literal | _Field | _Ident | _Pipeline


class _ExprParser:
    def __init__(self, tokens: list[tuple[str, str]], where: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.where = where

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def pipeline(self) -> _Pipeline:
        commands = [self.command()]
        while self.peek() == ("op", "|"):
            self.pos += 1
            commands.append(self.command())
        return _Pipeline(commands, self.where)

    def command(self) -> list[_Operand]:
        operands: list[_Operand] = []
        while (token := self.peek()) is not None and token not in (("op", "|"), ("op", ")")):
            operands.append(self.operand())
        if not operands:
            raise UnsupportedSyntax(f"{self.where}: empty command")
        for position, operand in enumerate(operands):
            if isinstance(operand, _Ident) and position > 0:
                raise UnsupportedSyntax(f"{self.where}: function {operand.name!r} used as a value")
            if isinstance(operand, _Ident) and operand.name not in _FUNCTIONS:
                raise UnsupportedSyntax(
                    f"{self.where}: function {operand.name!r} is not supported by this renderer"
                )
        return operands

    def operand(self) -> _Operand:
        kind, text = self.tokens[self.pos]
        self.pos += 1
        if kind == "string":
            return _Literal(_unquote(text, self.where))
        if kind == "number":
            return _Literal(int(text))
        if kind == "ident":
            constants = {"true": True, "false": False, "nil": None}
            return _Literal(constants[text]) if text in constants else _Ident(text)
        if kind == "field":
            return _Field(".", tuple(p for p in text.split(".") if p))
        if kind == "var":
            base, *path = text.split(".")
            return _Field(base, tuple(path))
        if (kind, text) == ("op", "("):
            inner = self.pipeline()
            if self.peek() != ("op", ")"):
                raise UnsupportedSyntax(f"{self.where}: missing ')'")
            self.pos += 1
            following = self.peek()
            if following is not None and following[0] == "chain":
                raise UnsupportedSyntax(f"{self.where}: field access on a parenthesised result")
            return inner
        raise UnsupportedSyntax(f"{self.where}: unexpected {text!r}")


def _parse_pipeline(tokens: list[tuple[str, str]], where: str) -> _Pipeline:
    parser = _ExprParser(tokens, where)
    pipeline = parser.pipeline()
    if parser.peek() is not None:
        raise UnsupportedSyntax(f"{where}: unexpected {parser.peek()!r}")
    return pipeline


# ---------------------------------------------------------------------------------------------
# Template structure: text, actions, if, range, define.


@dataclass
class _Text:
    text: str


@dataclass
class _Print:
    pipeline: _Pipeline


@dataclass
class _If:
    branches: list[tuple[_Pipeline, list[_Node]]]
    otherwise: list[_Node] = field(default_factory=list)


@dataclass
class _Range:
    key_var: str | None
    value_var: str | None
    pipeline: _Pipeline
    body: list[_Node]


_Node: TypeAlias = _Text | _Print | _If | _Range

_UNSUPPORTED_KEYWORDS = {"with", "template", "block", "break", "continue"}
_Stop = tuple[list[tuple[str, str]], _Action]  # the else/end action that closed a list of nodes


def _is_variable(text: str) -> bool:
    return text != "$" and "." not in text


class _TemplateParser:
    def __init__(self, pieces: list[str | _Action], name: str) -> None:
        self.pieces = pieces
        self.pos = 0
        self.name = name
        self.defines: dict[str, list[_Node]] = {}

    def parse_file(self) -> list[_Node]:
        body, stop = self.parse_list(top_level=True)
        if stop is not None:
            raise UnsupportedSyntax(f"{self.name}:{stop[1].line}: unexpected {stop[1].content!r}")
        return body

    def parse_list(self, top_level: bool = False) -> tuple[list[_Node], _Stop | None]:
        """Parse nodes up to an ``else``/``end`` action and return that action for the caller."""
        nodes: list[_Node] = []
        while self.pos < len(self.pieces):
            piece = self.pieces[self.pos]
            self.pos += 1
            if isinstance(piece, str):
                if piece:
                    nodes.append(_Text(piece))
                continue
            where = f"{self.name}:{piece.line}"
            tokens = _tokenize(piece.content, where)
            if not tokens:
                raise UnsupportedSyntax(f"{where}: empty action")
            keyword = tokens[0][1] if tokens[0][0] == "ident" else None
            if keyword in ("else", "end"):
                return nodes, (tokens, piece)
            if keyword in _UNSUPPORTED_KEYWORDS:
                raise UnsupportedSyntax(f"{where}: '{keyword}' is not supported by this renderer")
            if keyword == "define":
                if not top_level:
                    raise UnsupportedSyntax(f"{where}: define must be at the top level")
                self.parse_define(tokens, where)
            elif keyword == "if":
                nodes.append(self.parse_if(tokens[1:], where))
            elif keyword == "range":
                nodes.append(self.parse_range(tokens[1:], where))
            elif any(token == ("op", ":=") for token in tokens):
                raise UnsupportedSyntax(
                    f"{where}: variable declarations are only supported in range"
                )
            else:
                nodes.append(_Print(_parse_pipeline(tokens, where)))
        return nodes, None

    def expect_end(self, stop: _Stop | None, what: str, where: str) -> None:
        if stop is None:
            raise UnsupportedSyntax(f"{where}: {what} without end")
        tokens, action = stop
        if tokens != [("ident", "end")]:
            raise UnsupportedSyntax(
                f"{self.name}:{action.line}: unsupported {action.content!r} in {what}"
            )

    def parse_define(self, tokens: list[tuple[str, str]], where: str) -> None:
        if len(tokens) != 2 or tokens[1][0] != "string":
            raise UnsupportedSyntax(f'{where}: expected define "name"')
        body, stop = self.parse_list()
        self.expect_end(stop, "define", where)
        self.defines[_unquote(tokens[1][1], where)] = body

    def parse_if(self, condition: list[tuple[str, str]], where: str) -> _If:
        node = _If(branches=[])
        while True:
            body, stop = self.parse_list()
            node.branches.append((_parse_pipeline(condition, where), body))
            if stop is None:
                raise UnsupportedSyntax(f"{where}: if without end")
            tokens, action = stop
            where = f"{self.name}:{action.line}"
            if tokens == [("ident", "end")]:
                return node
            if tokens[:2] == [("ident", "else"), ("ident", "if")]:
                condition = tokens[2:]
                continue
            if tokens == [("ident", "else")]:
                node.otherwise, stop = self.parse_list()
                self.expect_end(stop, "if", where)
                return node
            raise UnsupportedSyntax(f"{where}: unsupported {action.content!r}")

    def parse_range(self, tokens: list[tuple[str, str]], where: str) -> _Range:
        key_var = value_var = None
        if ("op", ":=") in tokens:
            split = tokens.index(("op", ":="))
            declared = tokens[:split]
            names = [text for kind, text in declared[::2] if kind == "var" and _is_variable(text)]
            separators = declared[1::2]
            if (
                len(names) not in (1, 2)
                or len(declared) != 2 * len(names) - 1
                or any(token != ("op", ",") for token in separators)
            ):
                raise UnsupportedSyntax(f"{where}: expected range $k, $v := ... or range $v := ...")
            key_var, value_var = (names[0], names[1]) if len(names) == 2 else (None, names[0])
            tokens = tokens[split + 1 :]
        pipeline = _parse_pipeline(tokens, where)
        body, stop = self.parse_list()
        self.expect_end(stop, "range", where)
        return _Range(key_var, value_var, pipeline, body)


# ---------------------------------------------------------------------------------------------
# Go-flavoured values: truth, comparison, printing.


def _truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, dict)):
        return bool(value)
    raise RenderError(f"cannot take the truth of {value!r}")


def _kind(value: Any, where: str) -> str:
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("string", str)):
        if isinstance(value, types):
            return kind
    raise RenderError(
        f"{where}: cannot compare {value!r} (Go's comparison functions take basic types)"
    )


def _comparable(a: Any, b: Any, where: str) -> None:
    if _kind(a, where) != _kind(b, where):
        raise RenderError(f"{where}: incompatible types for comparison: {a!r} and {b!r} (use int)")


def _go_float(value: float) -> str:
    """Format a float64 as Go's %v does: shortest digits, exponent form from 1e+06, below 1e-04."""
    if not math.isfinite(value):
        raise RenderError(f"cannot print {value!r}")
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # digits before the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _to_string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    raise RenderError(f"{where}: refusing to print {type(value).__name__} {value!r}; use toYaml")


def _go_quote(text: str) -> str:
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in "\n\t\r\a\b\f\v":
            out.append(
                {
                    "\n": "\\n",
                    "\t": "\\t",
                    "\r": "\\r",
                    "\a": "\\a",
                    "\b": "\\b",
                    "\f": "\\f",
                    "\v": "\\v",
                }[char]
            )
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _yaml_ready(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _yaml_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_ready(v) for v in value]
    return value


def _empty(value: Any) -> bool:
    return value is None or value is False or value in (0, "") or value in ([], {})


# ---------------------------------------------------------------------------------------------
# Execution.


@dataclass
class _Scope:
    dot: Any
    root: Any
    variables: dict[str, Any]


class Engine:
    """Holds every parsed template of a chart (files and defines) and executes them."""

    def __init__(self) -> None:
        self.templates: dict[str, list[_Node]] = {}
        self.depth = 0

    def add(self, name: str, source: str) -> None:
        parser = _TemplateParser(_lex(source, name), name)
        body = parser.parse_file()
        for define, define_body in parser.defines.items():
            if define in self.templates:
                raise UnsupportedSyntax(f"{name}: template {define!r} defined twice")
            self.templates[define] = define_body
        self.templates[name] = body

    def execute(self, name: str, data: Any) -> str:
        if name not in self.templates:
            raise RenderError(f"no template named {name!r}")
        self.depth += 1
        try:
            if self.depth > 50:
                raise RenderError(f"include nesting too deep at {name!r}")
            return self._run(self.templates[name], _Scope(data, data, {}))
        finally:
            self.depth -= 1

    def _run(self, nodes: list[_Node], scope: _Scope) -> str:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Print):
                out.append(_to_string(self._pipeline(node.pipeline, scope), node.pipeline.where))
            elif isinstance(node, _If):
                out.append(self._if(node, scope))
            else:
                out.append(self._range(node, scope))
        return "".join(out)

    def _if(self, node: _If, scope: _Scope) -> str:
        for condition, body in node.branches:
            if _truth(self._pipeline(condition, scope)):
                return self._run(body, scope)
        return self._run(node.otherwise, scope)

    def _range(self, node: _Range, scope: _Scope) -> str:
        collection = self._pipeline(node.pipeline, scope)
        if collection is None:
            return ""
        if isinstance(collection, dict):
            items: list[tuple[Any, Any]] = sorted(collection.items())
        elif isinstance(collection, list):
            items = list(enumerate(collection))
        else:
            raise RenderError(f"{node.pipeline.where}: range over {collection!r}")
        out = []
        for key, value in items:
            variables = dict(scope.variables)
            if node.key_var:
                variables[node.key_var] = key
            if node.value_var:
                variables[node.value_var] = value
            out.append(self._run(node.body, _Scope(value, scope.root, variables)))
        return "".join(out)

    def _pipeline(self, pipeline: _Pipeline, scope: _Scope) -> Any:
        result: Any = None
        for index, command in enumerate(pipeline.commands):
            head, args = command[0], command[1:]
            if isinstance(head, _Ident):
                values = [self._operand(arg, scope, pipeline.where) for arg in args]
                if index > 0:
                    values.append(result)
                result = self._call(head.name, values, pipeline.where)
            elif args or index > 0:
                raise UnsupportedSyntax(f"{pipeline.where}: {head!r} is not a function")
            else:
                result = self._operand(head, scope, pipeline.where)
        return result

    def _operand(self, operand: _Operand, scope: _Scope, where: str) -> Any:
        if isinstance(operand, _Literal):
            return operand.value
        if isinstance(operand, _Pipeline):
            return self._pipeline(operand, scope)
        if isinstance(operand, _Ident):
            raise UnsupportedSyntax(f"{where}: function {operand.name!r} used as a value")
        if operand.base == ".":
            value = scope.dot
        elif operand.base == "$":
            value = scope.root
        elif operand.base in scope.variables:
            value = scope.variables[operand.base]
        else:
            raise RenderError(f"{where}: undefined variable {operand.base}")
        walked = operand.base
        for key in operand.path:
            if not isinstance(value, dict):
                raise RenderError(f"{where}: nil pointer evaluating {walked}.{key}")
            if key not in value:
                raise RenderError(f"{where}: map has no entry for key {key!r} ({walked}.{key})")
            value = value[key]
            walked += "." + key
        return value

    def _call(self, name: str, args: list[Any], where: str) -> Any:
        function = _FUNCTIONS.get(name)
        if function is None:
            raise UnsupportedSyntax(f"{where}: function {name!r} is not supported by this renderer")
        if name == "include":
            if len(args) != 2 or not isinstance(args[0], str):
                raise RenderError(f"{where}: include takes a template name and one argument")
            return self.execute(args[0], args[1])
        try:
            return function(where, *args)
        except TypeError as error:
            raise RenderError(f"{where}: bad arguments to {name}: {error}") from error


def _and(where: str, *args: Any) -> Any:
    for arg in args[:-1]:
        if not _truth(arg):
            return arg
    return args[-1]


def _or(where: str, *args: Any) -> Any:
    for arg in args[:-1]:
        if _truth(arg):
            return arg
    return args[-1]


def _eq(where: str, first: Any, *others: Any) -> bool:
    if not others:
        raise RenderError(f"{where}: eq needs two or more arguments")
    for other in others:
        _comparable(first, other, where)
    return any(first == other for other in others)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(where: str, a: Any, b: Any) -> bool:
        _comparable(a, b, where)
        if isinstance(a, bool):
            raise RenderError(f"{where}: booleans are not ordered")
        return op(a, b)

    return compare


def _index(where: str, collection: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(collection, dict):
            collection = collection.get(key)
        elif isinstance(collection, list) and isinstance(key, int) and 0 <= key < len(collection):
            collection = collection[key]
        else:
            raise RenderError(f"{where}: cannot index {collection!r} with {key!r}")
    return collection


def _print(where: str, *args: Any) -> str:
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += _to_string(arg, where)
    return out


def _required(where: str, message: str, value: Any) -> Any:
    if value is None or value == "":
        raise RenderError(f"{where}: required: {message}")
    return value


def _fail(where: str, message: str) -> Any:
    raise RenderError(f"{where}: fail: {message}")


def _to_yaml(where: str, value: Any) -> str:
    dumped = yaml.safe_dump(
        _yaml_ready(value), default_flow_style=False, sort_keys=True, width=2**31
    )
    return dumped.removesuffix("\n").removesuffix("...").removesuffix("\n")


def _typed(where: str, name: str, value: Any, kind: type) -> None:
    """Go converts arguments to a function's parameter types and fails when it cannot."""
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RenderError(f"{where}: {name} expects {kind.__name__}, got {value!r}")


def _nindent(where: str, spaces: int, text: str) -> str:
    _typed(where, "nindent", spaces, int)
    _typed(where, "nindent", text, str)
    pad = " " * spaces
    return "\n" + pad + text.replace("\n", "\n" + pad)


def _trunc(where: str, length: int, text: str) -> str:
    _typed(where, "trunc", length, int)
    _typed(where, "trunc", text, str)
    if length < 0:
        raise RenderError(f"{where}: negative trunc is not supported")
    return text[:length]


def _int(where: str, value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return int(bool(value))
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0  # Sprig's int of an unparsable string is 0.
    raise RenderError(f"{where}: int of {value!r}")


def _strings(function: Callable[..., str]) -> Callable[..., str]:
    def apply(where: str, *texts: Any) -> str:
        for text in texts:
            _typed(where, function.__name__, text, str)
        return function(*texts)

    return apply


def _trim_suffix(suffix: str, text: str) -> str:
    return text.removesuffix(suffix)


def _trim_prefix(prefix: str, text: str) -> str:
    return text.removeprefix(prefix)


def _upper(text: str) -> str:
    return text.upper()


def _sha256sum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "include": lambda where, *a: None,  # handled by Engine._call
    "and": _and,
    "or": _or,
    "not": lambda where, value: not _truth(value),
    "eq": _eq,
    "ne": lambda where, a, b: not _eq(where, a, b),
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "index": _index,
    "print": _print,
    "required": _required,
    "fail": _fail,
    "default": lambda where, fallback, *given: (
        fallback if not given or _empty(given[0]) else given[0]
    ),
    "quote": lambda where, *values: " ".join(
        _go_quote(_to_string(v, where)) for v in values if v is not None
    ),
    "toYaml": _to_yaml,
    "nindent": _nindent,
    "trunc": _trunc,
    "trimSuffix": _strings(_trim_suffix),
    "trimPrefix": _strings(_trim_prefix),
    "upper": _strings(_upper),
    "int": _int,
    "sha256sum": _strings(_sha256sum),
}


# ---------------------------------------------------------------------------------------------
# Charts.


def _as_helm_numbers(value: Any) -> Any:
    """Helm reads values through JSON, so every number in them is a float64."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: _as_helm_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_helm_numbers(v) for v in value]
    return value


def merge_values(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge user values into the chart's, as Helm does: null in overrides deletes a key."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML would otherwise silently collapse."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key_node) for key_node, _ in node.value]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        raise RenderError(f"duplicate keys {sorted(map(str, duplicates))} {node.start_mark}")
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(text: str) -> list[Any]:
    """Parse a multi-document YAML stream, dropping empty documents, rejecting duplicate keys."""
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]


@dataclass
class RenderedChart:
    manifests: dict[str, str]  # template path (e.g. "cogplane/templates/service.yaml") -> output
    notes: str

    def documents(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (template path, object) for every non-empty YAML document."""
        for path, text in self.manifests.items():
            for document in load_documents(text):
                if not isinstance(document, dict):
                    raise RenderError(f"{path}: a document is not a mapping: {document!r}")
                yield path, document


def render_chart(
    chart_dir: Path,
    overrides: dict[str, Any] | None = None,
    release_name: str = "cogplane",
    namespace: str = "cogplane",
) -> RenderedChart:
    """Render a chart as ``helm template`` would (without its dependencies' templates)."""
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    values = _as_helm_numbers(merge_values(defaults, overrides or {}))
    name = chart["name"]
    base_path = f"{name}/templates"
    root = {
        "Values": values,
        "Release": {
            "Name": release_name,
            "Namespace": namespace,
            "Service": "Helm",
            "IsInstall": True,
            "IsUpgrade": False,
            "Revision": 1,
        },
        "Chart": {
            "Name": name,
            "Version": str(chart["version"]),
            "AppVersion": str(chart.get("appVersion", "")),
        },
        "Template": {"BasePath": base_path},
    }
    engine = Engine()
    files = sorted(p for p in (chart_dir / "templates").iterdir() if p.is_file())
    for path in files:
        engine.add(f"{base_path}/{path.name}", path.read_text())
    manifests: dict[str, str] = {}
    notes = ""
    for path in files:
        template = f"{base_path}/{path.name}"
        if path.name.startswith("_"):
            continue
        scope = dict(root, Template={"BasePath": base_path, "Name": template})
        output = engine.execute(template, scope)
        if path.name == "NOTES.txt":
            notes = output
        elif path.suffix in (".yaml", ".yml") and output.strip():
            manifests[template] = output
        elif path.suffix not in (".yaml", ".yml", ".tpl", ".txt"):
            raise UnsupportedSyntax(f"{template}: unexpected file in templates/")
    return RenderedChart(manifests, notes)


def render_string(source: str, data: Any, name: str = "inline") -> str:
    """Render one template source with ``data`` as its dot (used to test the renderer itself)."""
    engine = Engine()
    engine.add(name, source)
    return engine.execute(name, data)
