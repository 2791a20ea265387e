"""A version's OpenAPI schema as a form: one field per input, in ``x-order``.

Cog's schemas (research/cog.md §4): strings (``format: uri`` for files, ``x-cog-secret`` for
secrets), integers and numbers with ``minimum``/``maximum``, booleans, choices as ``allOf`` with a
``$ref`` to an enum component, arrays, and anything else (unions, objects) as JSON. The Run tab
renders these fields; code snippets take their values as example inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputField:
    """One input of a version's schema, as the Run tab shows it."""

    name: str
    title: str
    kind: str  # text, textarea, integer, number, boolean, choice, file, files, secret, list, json
    required: bool = False
    description: str | None = None
    value: str = ""
    checked: bool = False
    has_default: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: list[tuple[str, str, bool]] = field(default_factory=list)
    accept: str | None = None
    deprecated: bool = False
    items: str | None = None

    @property
    def slider(self) -> bool:
        return self.minimum is not None and self.maximum is not None

    @property
    def step(self) -> str:
        return "1" if self.kind == "integer" else "any"

    def hint(self) -> str:
        """The constraints in words, shown under the field."""
        parts = []
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"from {_num(self.minimum)} to {_num(self.maximum)}")
        elif self.minimum is not None:
            parts.append(f"at least {_num(self.minimum)}")
        elif self.maximum is not None:
            parts.append(f"at most {_num(self.maximum)}")
        if self.min_length is not None and self.max_length is not None:
            parts.append(f"{self.min_length} to {self.max_length} characters")
        elif self.max_length is not None:
            parts.append(f"at most {self.max_length} characters")
        elif self.min_length is not None:
            parts.append(f"at least {self.min_length} characters")
        if self.kind in ("list", "files") or self.kind == "json":
            parts.append(
                {"list": "one per line", "files": "one or more files", "json": "JSON"}[self.kind]
            )
        return "; ".join(parts)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    found = openapi.get("components", {}).get("schemas", {})
    return found if isinstance(found, dict) else {}


def _resolve(prop: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A property with its ``allOf``/``$ref`` to an enum component merged in."""
    refs = [prop] if "$ref" in prop else [x for x in prop.get("allOf", []) if isinstance(x, dict)]
    merged = dict(prop)
    for ref in refs:
        target = str(ref.get("$ref", "")).rsplit("/", 1)[-1]
        if isinstance(schemas.get(target), dict):
            # Not the component's title and description: Cog names it after the field and
            # describes it as "An enumeration."
            found = {k: v for k, v in schemas[target].items() if k not in ("title", "description")}
            merged = {**found, **merged}
    return merged


def _string_kind(prop: dict[str, Any]) -> str:
    if prop.get("x-cog-secret") or prop.get("format") == "password":
        return "secret"
    if prop.get("format") == "uri":
        return "file"
    short = prop.get("maxLength") is not None and int(prop["maxLength"]) <= 120
    return "text" if short or prop.get("pattern") else "textarea"


def _array_kind(prop: dict[str, Any]) -> str:
    items = prop.get("items")
    if not isinstance(items, dict):
        return "json"
    if items.get("format") == "uri":
        return "files"
    return "list" if items.get("type") in ("string", "integer", "number") else "json"


def _kind(prop: dict[str, Any]) -> str:
    """How the form asks for an input (see ``InputField.kind``)."""
    kind = prop.get("type")
    if "enum" in prop:
        return "choice"
    if kind == "string":
        return _string_kind(prop)
    if kind == "array":
        return _array_kind(prop)
    return str(kind) if kind in ("integer", "number", "boolean") else "json"


def _text(value: Any, kind: str) -> str:
    """A value as a form control holds it."""
    if value is None:
        return ""
    if kind in ("list", "files") and isinstance(value, list):
        return "\n".join(str(x) for x in value)
    if kind == "json" or not isinstance(value, str | int | float) or isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def input_field(name: str, prop: dict[str, Any], required: bool, given: Any) -> InputField:
    """The form field of one input; ``given`` (or else the default) fills it in."""
    kind = _kind(prop)
    has_default = "default" in prop
    value = given if given is not None else prop.get("default")
    if kind == "secret":
        value = None  # a stored secret is never shown again
    found = InputField(
        name=name,
        title=str(prop.get("title") or name.replace("_", " ").title()),
        kind=kind,
        required=required,
        description=prop.get("description"),
        value=_text(value, kind),
        checked=value is True,
        has_default=has_default,
        default=prop.get("default"),
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        min_length=prop.get("minLength"),
        max_length=prop.get("maxLength"),
        pattern=prop.get("pattern"),
        accept=prop.get("x-cog-accept"),
        deprecated=bool(prop.get("deprecated")),
        items=(prop.get("items") or {}).get("type") if kind == "list" else None,
    )
    if kind == "choice":
        found.choices = [
            (json.dumps(c), str(c), c == value or (value is None and i == 0 and required))
            for i, c in enumerate(prop.get("enum", []))
        ]
    return found


def input_fields(openapi: dict[str, Any], given: dict[str, Any] | None = None) -> list[InputField]:
    """The Run tab's fields, in ``x-order``."""
    schemas = _schemas(openapi)
    schema = schemas.get("Input", {})
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    required = set(schema.get("required", [])) if isinstance(schema, dict) else set()
    given = given or {}
    ordered = sorted(
        ((k, v) for k, v in properties.items() if isinstance(v, dict)),
        key=lambda item: (item[1].get("x-order", 1_000_000), item[0]),
    )
    return [
        input_field(key, _resolve(prop, schemas), key in required, given.get(key))
        for key, prop in ordered
    ]


def output_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """The version's ``Output`` schema (what the page scripts render outputs by)."""
    schemas = _schemas(openapi)
    found = schemas.get("Output", {})
    return _resolve(found, schemas) if isinstance(found, dict) else {}


def secret_inputs(openapi: dict[str, Any]) -> set[str]:
    """Names of the inputs that are secrets (never shown back)."""
    return {f.name for f in input_fields(openapi) if f.kind == "secret"}


def streams(openapi: dict[str, Any]) -> bool:
    post = openapi.get("paths", {}).get("/predictions", {}).get("post", {})
    return bool(post.get("x-cog-streaming")) if isinstance(post, dict) else False


# -- example inputs (for code snippets) -------------------------------------------------------

EXAMPLES: dict[str, Any] = {
    "text": "hello",
    "textarea": "hello",
    "integer": 1,
    "number": 1.0,
    "boolean": False,
    "file": "https://example.com/input.png",
    "secret": "your-secret",
}


def example_input(fields: list[InputField]) -> dict[str, Any]:
    """Inputs for the snippets: what the form holds, examples for required ones left empty."""
    found: dict[str, Any] = {}
    for f in fields:
        value = _field_value(f)
        if value is None and f.required:
            value = EXAMPLES.get(f.kind, [] if f.kind in ("list", "files") else {})
            if f.kind == "choice" and f.choices:
                value = json.loads(f.choices[0][0])
            elif f.kind in ("integer", "number") and f.minimum is not None:
                value = int(f.minimum) if f.kind == "integer" else f.minimum
        if value is not None:
            found[f.name] = value
    return found


def _field_value(f: InputField) -> Any:
    """The value a field holds, as JSON (None when empty)."""
    if f.kind == "boolean":
        return f.checked if f.has_default or f.checked else None
    if f.kind == "choice":
        chosen = [c for c in f.choices if c[2]]
        return json.loads(chosen[0][0]) if chosen and (f.has_default or f.required) else None
    return _parsed(f) if f.value else None


def _parsed(f: InputField) -> Any:
    if f.kind in ("list", "files"):
        return [_item(x, f.items) for x in f.value.splitlines() if x.strip()]
    try:
        if f.kind == "json":
            return json.loads(f.value)
        if f.kind in ("integer", "number"):
            number = float(f.value)
            return int(number) if f.kind == "integer" else number
    except ValueError:
        return None
    return f.value


def _item(text: str, kind: str | None) -> Any:
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        pass
    return text.strip()
