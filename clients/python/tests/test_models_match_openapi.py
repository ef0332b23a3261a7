"""The client's models against the live server's OpenAPI document: every
wire field exists there with a matching type, every field the server
requires is required here, and nothing the server sends is missing."""

import dataclasses
import types
import typing
from datetime import datetime

import httpx
import pytest
from qefleet_client import models

MODELS = [cls for cls in vars(models).values() if isinstance(cls, type) and hasattr(cls, "OPENAPI")]
JSON_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    datetime: "string",
}


@pytest.fixture(scope="module")
def openapi(server):
    return httpx.get(f"{server.url}/api/v1/openapi.json", timeout=120).json()["components"]["schemas"]


def resolve(schema, schemas):
    """The JSON types a property allows, and whether null is one of them."""
    options = schema.get("anyOf", [schema])
    found, nullable = set(), False
    for option in options:
        if "$ref" in option:
            found.add(option["$ref"].rsplit("/", 1)[1])
        elif option.get("type") == "null":
            nullable = True
        elif "type" in option:
            found.add(option["type"])
        elif "enum" in option:
            found.add("string")
    return found, nullable


def python_types(annotation):
    """The JSON types a dataclass annotation stands for, and whether it is optional."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    inner = [arg for arg in args if arg is not type(None)] or [annotation]
    nullable = type(None) in args
    found = set()
    for arg in inner:
        origin = typing.get_origin(arg) or arg
        if origin is typing.Literal:
            found.add("string")
        elif origin is typing.Any:
            return None, nullable
        elif dataclasses.is_dataclass(origin):
            found.add(origin.OPENAPI)
        else:
            found.add(JSON_TYPES[origin])
    return found, nullable


@pytest.mark.parametrize("model", MODELS, ids=lambda cls: cls.__name__)
def test_model_fields_match_the_servers_schema(openapi, model):
    schema = openapi[model.OPENAPI]
    hints = typing.get_type_hints(model)
    fields = {f.name: f for f in models.wire_fields(model)}
    assert set(fields) == set(schema["properties"]), f"{model.__name__} differs from {model.OPENAPI}"
    required_here = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    # What the client cannot do without, the server always sends (a response) or always requires (a request).
    assert required_here <= set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        expected, schema_nullable = resolve(prop, openapi)
        found, optional = python_types(hints[name])
        if found is not None and expected:
            assert found == expected, f"{model.__name__}.{name}: {found} here, {expected} on the server"
        if schema_nullable:
            assert optional, f"{model.__name__}.{name} can be null on the server"


def test_every_learning_schema_an_agent_uses_has_a_model(openapi):
    mirrored = {cls.OPENAPI for cls in MODELS}
    used = {
        "TaskIn",
        "ExecutionIn",
        "ResultIn",
        "ExecutedActionIn",
        "RecommendationOut",
        "ExecutionOut",
        "LearningOut",
        "EntryOut",
        "HintOut",
        "EventOut",
        "FeedbackIn",
        "FeedbackOut",
    }
    assert used <= mirrored <= set(openapi)
