"""Prediction inputs checked against the version's schema before admission, Replicate's way."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from cogplane.common.errors import InvalidInput


def _input_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    components = openapi.get("components", {})
    return {"$ref": "#/components/schemas/Input", "components": components}


def _nullable(openapi: dict[str, Any]) -> set[str]:
    properties = (
        openapi.get("components", {}).get("schemas", {}).get("Input", {}).get("properties", {})
    )
    return {name for name, prop in properties.items() if prop.get("nullable")}


def _describe(error: ValidationError) -> dict[str, str]:
    path = ".".join(str(p) for p in error.absolute_path)
    field = f"input.{path}" if path else "input"
    kind, limit = str(error.validator), error.validator_value
    bounds = {
        "maximum": ("number_lte", "less than or equal to"),
        "minimum": ("number_gte", "greater than or equal to"),
        "exclusiveMaximum": ("number_lt", "less than"),
        "exclusiveMinimum": ("number_gt", "greater than"),
    }
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in str(error.message) else "a field"
        return {"type": "required", "field": field, "description": f"{missing} is required"}
    if kind in bounds:
        name, words = bounds[kind]
        return {"type": name, "field": field, "description": f"Must be {words} {limit}"}
    if kind in ("maxLength", "minLength"):
        words = "less" if kind == "maxLength" else "greater"
        description = f"String length must be {words} than or equal to {limit}"
        return {"type": "string_length", "field": field, "description": description}
    if kind == "enum":
        choices = ", ".join(repr(c) for c in list(limit))  # type: ignore[arg-type]
        return {"type": "enum", "field": field, "description": f"Must be one of: {choices}"}
    if kind == "type":
        given = _json_type(error.instance)
        description = f"Invalid type. Expected: {limit}, given: {given}"
        return {"type": "invalid_type", "field": field, "description": description}
    return {"type": kind, "field": field, "description": str(error.message)}


def _json_type(value: Any) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


_validators: OrderedDict[str, Draft202012Validator] = OrderedDict()
_MAX_VALIDATORS = 512


def _validator(openapi: dict[str, Any], key: str | None) -> Draft202012Validator:
    """The compiled validator of a schema; versions are immutable, so it is kept by version id."""
    if key is None:
        return Draft202012Validator(_input_schema(openapi))
    if key not in _validators:
        _validators[key] = Draft202012Validator(_input_schema(openapi))
        while len(_validators) > _MAX_VALIDATORS:
            _validators.popitem(last=False)
    _validators.move_to_end(key)
    return _validators[key]


def validate_input(
    openapi: dict[str, Any], given: dict[str, Any], *, key: str | None = None
) -> dict[str, Any]:
    """The input to send to Cog, or 422 listing every invalid field.

    An explicit ``null`` for a nullable input means "not given" (Replicate accepts it; Cog's
    validator would not), so it is dropped.
    """
    nullable = _nullable(openapi)
    cleaned = {k: v for k, v in given.items() if not (v is None and k in nullable)}
    validator = _validator(openapi, key)
    errors = sorted(validator.iter_errors(cleaned), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidInput([_describe(e) for e in errors])
    return cleaned
