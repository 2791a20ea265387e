"""Generate a Cog model's OpenAPI schema the way `cog build` does, without Docker.

coglet validates inputs only against `.cog/openapi_schema.json`, which Cog's Go CLI normally writes.
This script builds the same document with Cog's own Python inspector. It runs inside the model's
virtualenv, so it imports nothing but the standard library and `cog`. Run it from the project root:

    python cog_schema.py --predict predict.py:Predictor [--train train.py:train]

On success it exits 0 and prints one JSON object on stdout:
    {"openapi_schema": {...}, "cog_version": "0.23.1", "concurrency_max": 4}   (or null)
On a problem in the model's code it exits 1 with one line on stderr:
    cog_schema: error: <file>[:<line>]: <what is wrong>
Whatever the model prints while it is imported goes to stderr, never into the JSON.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import json
import os
import sys
import traceback
import typing
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import cog  # type: ignore[import-untyped]
from cog import _adt as adt
from cog import _inspector
from cog.input import FieldInfo  # type: ignore[import-untyped]

JSON = dict[str, Any]
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class SchemaError(Exception):
    """A problem in the model's code, reported as one line that names the file and line."""


@dataclass(frozen=True)
class Mode:
    """Predictions or trainings: the names differ, the shape is the same (Cog's Go CLI)."""

    noun: str  # "prediction" -> /predictions, PredictionRequest, prediction_id, ...
    verb: str  # "predict" -> operationId predict_predictions_post, summary "Predict"
    prefix: str  # "" -> Input/Output; "Training" -> TrainingInput/TrainingOutput

    @property
    def endpoint(self) -> str:
        return f"/{self.noun}s"

    def schema(self, part: str) -> str:
        """Component names: Input, Output, Request and Response for this mode."""
        owner = self.prefix if part in ("Input", "Output") else self.noun.title()
        return owner + part


PREDICT = Mode("prediction", "predict", "")
TRAIN = Mode("training", "train", "Training")


@dataclass(frozen=True)
class Target:
    """The function whose signature becomes the schema, and where it is defined."""

    file: str
    module: ModuleType
    name: str
    is_method: bool
    function: Any
    node: FunctionNode | None

    @property
    def label(self) -> str:
        return f"{self.name}.{self.function.__name__}" if self.is_method else self.name

    def line(self, node: ast.stmt | ast.arg | None = None) -> str:
        found = node or self.node
        return f"{self.file}:{found.lineno}" if found is not None else self.file


@dataclass(frozen=True)
class Declared:
    """What the signature says about one input beyond what Cog's inspector keeps."""

    has_default: bool
    default: Any = None
    accept: str | None = None


def load_module(file: str) -> tuple[ModuleType, ast.Module]:
    """Imports `file` under its basename, as coglet does, after checking that it parses."""
    path = Path(file)
    if not path.is_file():
        raise SchemaError(f"{file}: file not found in {Path.cwd()}")
    try:
        tree = ast.parse(path.read_bytes(), filename=file)
    except SyntaxError as exc:
        raise SchemaError(f"{file}:{exc.lineno}: syntax error: {exc.msg}") from exc
    name = path.name.removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SchemaError(f"{file}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        lines = [f.lineno for f in frames if Path(f.filename).resolve() == path.resolve()]
        where = f":{lines[-1]}" if lines else ""
        raise SchemaError(f"{file}{where}: import failed: {type(exc).__name__}: {exc}") from exc
    return module, tree


def find_target(
    file: str, module: ModuleType, tree: ast.Module, ref_name: str | None, train: bool
) -> Target:
    """Finds the class or function named in the reference, and its run/predict/train method."""
    name = ref_name or ("Runner" if hasattr(module, "Runner") else "Predictor")
    obj: Any = getattr(module, name, None)
    if obj is None:
        defined = sorted(
            n
            for n, v in vars(module).items()
            if (inspect.isclass(v) or inspect.isfunction(v)) and v.__module__ == module.__name__
        )
        found = ", ".join(defined) or "nothing"
        raise SchemaError(f"{file}: no class or function named {name!r} (found: {found})")
    if inspect.isfunction(obj):
        return Target(file, module, name, False, obj, _find_def(tree, name, None))
    if not inspect.isclass(obj):
        raise SchemaError(f"{file}: {name} is neither a class nor a function")
    setup = getattr(obj, "setup", None)
    try:
        if setup is not None:
            _inspector._validate_setup(_inspector._unwrap(setup))
        if train:
            method = "train"
        else:
            method, _ = _inspector._selected_predict_method(obj, f"{module.__name__}.{name}")
    except ValueError as exc:
        raise SchemaError(f"{file}: {name}: {exc}") from exc
    if not callable(getattr(obj, method, None)):
        raise SchemaError(f"{file}: class {name} has no {method}() method")
    return Target(file, module, name, True, getattr(obj, method), _find_def(tree, name, method))


def _find_def(tree: ast.Module, name: str, method: str | None) -> FunctionNode | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node if method is None else None
        if isinstance(node, ast.ClassDef) and node.name == name and method is not None:
            methods = [item for item in node.body if isinstance(item, FunctionNode)]
            return next((item for item in methods if item.name == method), None)
    return None


def inspect_target(target: Target) -> tuple[Any, dict[str, Declared]]:
    """Runs Cog's inspector, after checking each input so that errors can name it."""
    function = _inspector._unwrap(target.function)
    _inspector._find_coders(target.module)  # custom Coder types count as supported annotations
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:
        raise SchemaError(
            f"{target.line()}: {target.label}: cannot resolve annotations: {exc}"
        ) from exc
    params = list(inspect.signature(function).parameters.values())[int(target.is_method) :]
    declared = {}
    for order, param in enumerate(params):
        if param.name in hints:
            _check_input(target, order, param, hints[param.name])
        declared[param.name] = _declared(target, param)
    try:
        info = _inspector._create_predictor_info(
            target.module.__name__, target.name, function, function.__name__, target.is_method
        )
    except (ValueError, TypeError, AssertionError) as exc:
        raise SchemaError(f"{target.line()}: {target.label}: {exc}") from exc
    return info, declared


def _check_input(target: Target, order: int, param: inspect.Parameter, hint: Any) -> None:
    arg = _arg_node(target.node, param.name)
    where = f"{target.line(arg)}: input {param.name!r} of {target.label}"
    annotation = _inspector._strip_non_opaque_annotated(hint)
    try:
        adt.FieldType.from_type(annotation)
    except (ValueError, AssertionError, TypeError) as exc:
        written = ast.unparse(arg.annotation) if arg and arg.annotation else repr(hint)
        raise SchemaError(f"{where} has an unsupported type annotation `{written}`: {exc}") from exc
    default = None if param.default is inspect.Parameter.empty else param.default
    try:  # the same checks Cog makes on defaults, choices and constraints
        _inspector._create_input_field(order, param.name, annotation, default)
    except (ValueError, TypeError, AssertionError) as exc:
        raise SchemaError(f"{where}: {exc}") from exc


def _arg_node(node: FunctionNode | None, name: str) -> ast.arg | None:
    args = node.args.args if node is not None else []
    return next((arg for arg in args if arg.arg == name), None)


def _declared(target: Target, param: inspect.Parameter) -> Declared:
    if param.default is inspect.Parameter.empty:
        return Declared(has_default=False)
    if not isinstance(param.default, FieldInfo):
        return Declared(has_default=True, default=param.default)
    info = param.default
    explicit = _input_call_sets_default(target.node, param.name)
    # Input() and Input(default=None) look the same at runtime; only the source tells them apart.
    has_default = explicit if explicit is not None else info.default is not None
    return Declared(has_default=has_default, default=info.default, accept=info.accept)


def _input_call_sets_default(node: FunctionNode | None, name: str) -> bool | None:
    if node is None:
        return None
    args, defaults = node.args.args, node.args.defaults
    default_of = dict(
        zip([arg.arg for arg in args[len(args) - len(defaults) :]], defaults, strict=True)
    )
    call = default_of.get(name)
    if not isinstance(call, ast.Call):
        return None
    return bool(call.args) or any(keyword.arg == "default" for keyword in call.keywords)


def supports_streaming(target: Target) -> bool:
    """True when the method carries `@cog.streaming` (a no-op at runtime, so read the source)."""
    for decorator in target.node.decorator_list if target.node else []:
        expr = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(expr, ast.Name) and getattr(target.module, expr.id, None) is cog.streaming:
            return True
        if (
            isinstance(expr, ast.Attribute)
            and expr.attr == "streaming"
            and isinstance(expr.value, ast.Name)
            and getattr(target.module, expr.value.id, None) is cog
        ):
            return True
    return False


def title_case(name: str) -> str:
    return name.replace("_", " ").title()


def json_value(value: Any) -> Any:
    """A default or bound as Go's encoder writes it: integral floats without a fraction."""
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    value = value.value if isinstance(value, Enum) else value
    value = os.fspath(value) if isinstance(value, os.PathLike) else value
    value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"{value!r} is not a JSON value")


def input_property(field: Any, declared: Declared) -> tuple[JSON, JSON | None, bool]:
    """One property of the Input schema, its enum component if any, and whether it is required.

    The rules are those of `buildInputSchema` in Cog's Go CLI.
    """
    ft, rep = field.type, field.type.repetition
    nullable = rep in (adt.Repetition.OPTIONAL, adt.Repetition.OPTIONAL_REPEATED)
    if (
        ft.primitive is adt.PrimitiveType.SECRET
        and rep is adt.Repetition.REQUIRED
        and declared.has_default
        and declared.default is None
    ):
        nullable = True  # `api_key: Secret = Input(default=None)` means "no credential given"
    # A None default on a non-nullable input (`seed: int = Input(default=None)`) is no default.
    has_default = declared.has_default and (declared.default is not None or nullable)
    required = not has_default and (
        ft.union_variants is not None or rep in (adt.Repetition.REQUIRED, adt.Repetition.REPEATED)
    )
    prop: JSON = {"x-order": field.order}
    enum = None
    if field.choices:
        enum = {
            "title": field.name,
            "description": "An enumeration.",
            "enum": json_value(field.choices),
            "type": ft.primitive.json_type()["type"],
        }
        prop["allOf"] = [{"$ref": f"#/components/schemas/{field.name}"}]
    else:
        prop["title"] = title_case(field.name)
        prop.update(ft.json_type())
        if ft.union_variants is not None and nullable:
            prop["anyOf"] = [{**variant, "nullable": True} for variant in prop["anyOf"]]
    if has_default:
        prop["default"] = json_value(declared.default)
    optional = {
        "nullable": True if nullable else None,
        "description": field.description,
        "minimum": json_value(field.ge),
        "maximum": json_value(field.le),
        "minLength": field.min_length,
        "maxLength": field.max_length,
        "pattern": field.regex,
        "deprecated": True if field.deprecated else None,
        "x-cog-accept": declared.accept,
    }
    prop.update({key: value for key, value in optional.items() if value is not None})
    return dict(sorted(prop.items())), enum, required


def output_schema(info: Any) -> JSON:
    schema: JSON = info.output.json_type()
    if info.output.kind is adt.OutputKind.SINGLE and not isinstance(
        info.output.type, adt.PrimitiveType
    ):
        schema["type"] = "object"  # `-> Any`: Cog's Python side leaves the type out, Go says object
    return schema


def openapi_document(target: Target, mode: Mode) -> JSON:
    """The OpenAPI 3.0.2 document for one predictor or trainer."""
    info, declared = inspect_target(target)
    properties: JSON = {}
    required: list[str] = []
    enums: JSON = {}
    for field in sorted(info.inputs.values(), key=lambda f: f.order):
        try:
            prop, enum, is_required = input_property(field, declared[field.name])
        except ValueError as exc:
            raise SchemaError(f"{target.line()}: default of input {field.name!r}: {exc}") from exc
        properties[field.name] = prop
        required += [field.name] if is_required else []
        enums |= {field.name: enum} if enum else {}
    input_schema: JSON = {"title": mode.schema("Input"), "type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    operation = _operation(mode)
    if mode is PREDICT and supports_streaming(target):
        operation["x-cog-streaming"] = True
    schemas = {
        mode.schema("Input"): input_schema,
        mode.schema("Output"): output_schema(info),
        **enums,
        **_envelopes(mode),
        **_STATUS_AND_ERRORS,
    }
    paths = {
        "/": _get("Root", "root__get"),
        "/health-check": _get("Healthcheck", "healthcheck_health_check_get"),
        mode.endpoint: {"post": operation},
        **_cancel_path(mode),
    }
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": cog.__version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _ok(schema: JSON) -> JSON:
    return {
        "description": "Successful Response",
        "content": {"application/json": {"schema": schema}},
    }


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


_INVALID = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": _ref("HTTPValidationError")}},
}
# The components that are the same in every model, as Cog's Go CLI writes them.
_STATUS_AND_ERRORS: JSON = json.loads("""{
  "Status": {"title": "Status", "description": "An enumeration.", "type": "string",
             "enum": ["starting", "processing", "succeeded", "canceled", "failed"]},
  "HTTPValidationError": {"title": "HTTPValidationError", "type": "object", "properties": {
      "detail": {"title": "Detail", "type": "array",
                 "items": {"$ref": "#/components/schemas/ValidationError"}}}},
  "ValidationError": {"title": "ValidationError", "required": ["loc", "msg", "type"],
                      "type": "object", "properties": {
      "loc": {"title": "Location", "type": "array",
              "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
      "msg": {"title": "Message", "type": "string"},
      "type": {"title": "Error Type", "type": "string"}}}
}""")


def _get(summary: str, operation_id: str) -> JSON:
    return {"get": {"summary": summary, "operationId": operation_id, "responses": {"200": _ok({})}}}


def _operation(mode: Mode) -> JSON:
    return {
        "summary": mode.verb.title(),
        "description": f"Run a single {mode.noun} on the model",
        "operationId": f"{mode.verb}_{mode.noun}s_post",
        "requestBody": {"content": {"application/json": {"schema": _ref(mode.schema("Request"))}}},
        "responses": {"200": _ok(_ref(mode.schema("Response"))), "422": _INVALID},
    }


def _cancel_path(mode: Mode) -> JSON:
    id_param = f"{mode.noun}_id"
    parameter = {
        "required": True,
        "schema": {"title": title_case(id_param), "type": "string"},
        "name": id_param,
        "in": "path",
    }
    return {
        f"{mode.endpoint}/{{{id_param}}}/cancel": {
            "post": {
                "summary": "Cancel",
                "operationId": f"cancel_{mode.noun}s__{id_param}__cancel_post",
                "parameters": [parameter],
                "responses": {"200": _ok({}), "422": _INVALID},
            }
        }
    }


def _envelopes(mode: Mode) -> JSON:
    string, stamp = {"type": "string"}, {"type": "string", "format": "date-time"}
    fields = {
        "input": _ref(mode.schema("Input")),
        "output": _ref(mode.schema("Output")),
        "id": string,
        "version": string,
        "created_at": stamp,
        "started_at": stamp,
        "completed_at": stamp,
        "status": string,
        "error": string,
        "logs": string,
        "metrics": {"type": "object"},
    }
    response = {
        name: schema if "$ref" in schema else {"title": title_case(name), **schema}
        for name, schema in fields.items()
    }
    request = {"id": {"title": "Id", "type": "string"}, "input": _ref(mode.schema("Input"))}
    return {
        mode.schema("Request"): {
            "title": mode.schema("Request"),
            "type": "object",
            "properties": request,
        },
        mode.schema("Response"): {
            "title": mode.schema("Response"),
            "type": "object",
            "properties": response,
        },
    }


def merge(predict: JSON, train: JSON) -> JSON:
    """Adds the training paths and components to the prediction document; predict wins clashes."""
    for key, value in train["paths"].items():
        predict["paths"].setdefault(key, value)
    for key, value in train["components"]["schemas"].items():
        predict["components"]["schemas"].setdefault(key, value)
    return predict


def load_target(ref: str, train: bool) -> Target:
    file, _, name = ref.partition(":")
    module, tree = load_module(file)
    return find_target(file, module, tree, name or None, train)


def generate(predict_ref: str | None, train_ref: str | None) -> JSON:
    predictor = load_target(predict_ref, train=False) if predict_ref else None
    trainer = load_target(train_ref, train=True) if train_ref else None
    documents = [openapi_document(predictor, PREDICT)] if predictor else []
    documents += [openapi_document(trainer, TRAIN)] if trainer else []
    schema = merge(*documents) if len(documents) == 2 else documents[0]
    limit = getattr(predictor.function, "__cog_concurrent_max__", None) if predictor else None
    return {
        "openapi_schema": schema,
        "cog_version": cog.__version__,
        "concurrency_max": limit if isinstance(limit, int) else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a Cog model's OpenAPI schema as JSON.")
    parser.add_argument("--predict", metavar="FILE.py:NAME", help="e.g. predict.py:Predictor")
    parser.add_argument("--train", metavar="FILE.py:NAME", help="e.g. train.py:train")
    args = parser.parse_args(argv)
    if not args.predict and not args.train:
        parser.error("give --predict, --train or both")
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # from here on, anything printed (by the model too) lands on stderr
    sys.path.insert(0, os.getcwd())
    warnings.simplefilter("ignore")  # deprecation notices about the model are not our output
    try:
        output = generate(args.predict, args.train)
    except SchemaError as exc:
        print(f"cog_schema: error: {exc}", file=sys.stderr)
        return 1
    with result:
        json.dump(output, result)
        result.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
