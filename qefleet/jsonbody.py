"""Strict JSON request bodies for the agent API.

Python's json module accepts NaN and Infinity, keeps the last of duplicate
keys, recurses without limit and lets lone surrogates and NUL characters
through to the database (PostgreSQL rejects them, SQLite stores them). Each of
those becomes a clear 4xx here, before any view runs.
"""

import json
import math

from django.http.request import RawPostDataException
from django.core.exceptions import RequestDataTooBig
from ninja.errors import HttpError
from ninja.parser import Parser

DEFAULT_BODY_LIMIT = 64 * 1024
MAX_DEPTH = 32


class BodyError(Exception):
    def __init__(self, status, code, message, field="body"):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self):
        return {"error": self.code, "message": self.message, "field": self.field}


def body_limit(limit):
    """View decorator (for ninja's decorate_view): this endpoint's body limit in bytes."""

    def decorator(view):
        def wrapped(request, *args, **kwargs):
            request.body_limit = limit
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _reject_constant(name):
    raise BodyError(400, "invalid_json", f"{name} is not valid JSON; send finite numbers only.")


def _unique_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise BodyError(400, "invalid_json", f"The key {key!r} appears twice in one object.")
        result[key] = value
    return result


def _check_text(text):
    if "\x00" in text:
        raise BodyError(400, "invalid_json", "Strings may not contain the NUL character.")
    for char in text:
        if "\ud800" <= char <= "\udfff":
            raise BodyError(400, "invalid_json", "Strings may not contain lone surrogates.")


def check_document(document):
    """Depth, finiteness and text checks over a parsed document, without recursion."""
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BodyError(400, "too_deep", f"The body nests deeper than {MAX_DEPTH} levels.")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_text(key)
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, str):
            _check_text(node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise BodyError(400, "invalid_json", "Numbers must be finite.")


def parse_strict(request):
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BodyError(415, "unsupported_media_type", "Send the body as Content-Type: application/json.")
    limit = getattr(request, "body_limit", DEFAULT_BODY_LIMIT)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyError(413, "body_too_large", f"The body is larger than this endpoint's limit of {limit} bytes.")
    try:
        raw = request.body
    except (RequestDataTooBig, RawPostDataException):
        raise BodyError(413, "body_too_large", f"The body is larger than this endpoint's limit of {limit} bytes.")
    if len(raw) > limit:
        raise BodyError(413, "body_too_large", f"The body is larger than this endpoint's limit of {limit} bytes.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "invalid_json", "The body is not valid UTF-8.") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise BodyError(400, "too_deep", f"The body nests deeper than {MAX_DEPTH} levels.") from None
    except BodyError:
        raise
    except ValueError as error:
        raise BodyError(400, "invalid_json", f"The body is not valid JSON: {error}.") from None
    check_document(document)
    return document


def check_query(data):
    """Query parameters reach database filters as sent, so the same text rules
    apply (PostgreSQL fails on a NUL in a query parameter too)."""
    for name, values in data.lists():
        for text in (name, *values):
            try:
                _check_text(text)
            except BodyError as error:
                raise BodyError(400, "invalid_query", error.message, field=name) from None


class StrictJSONParser(Parser):
    def parse_body(self, request):
        return parse_strict(request)

    def parse_querydict(self, data, list_fields, request):
        try:
            check_query(data)
        except BodyError as error:
            # Wrapped as ninja wraps the body parser's errors, which the API's handler unwraps.
            raise HttpError(error.status, error.message) from error
        return super().parse_querydict(data, list_fields, request)
