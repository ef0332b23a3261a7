"""The agent API: one NinjaAPI at /api/v1/ that mounts every app's router."""

import logging
import sqlite3

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from learning.api import router as learning_router
from qefleet.jsonbody import BodyError, StrictJSONParser
from qefleet.memory.api import router as memory_router
from qefleet.memory.auth import AgentTokenAuth
from qefleet.memory.errors import MemoryError
from qefleet.memory.ratelimit import RateLimited

logger = logging.getLogger("qefleet.api")

api = NinjaAPI(
    title="QE Fleet agent API",
    version="1",
    description="Recommendations, executions and the swarm memory for the QE agent fleet. "
    "Authenticate with `Authorization: Bearer <agent token>`.",
    auth=AgentTokenAuth(),
    parser=StrictJSONParser(),
    urls_namespace="api",
)
api.add_router("/", memory_router)
api.add_router("/", learning_router)


def error(request, status, code, message, field=None):
    body = {"error": code, "message": message}
    if field:
        body["field"] = field
    return api.create_response(request, body, status=status)


@api.exception_handler(MemoryError)
def memory_error(request, exc):
    # Audited here, after the refused operation's transaction rolled back.
    exc.audit_denial(request)
    return api.create_response(request, exc.to_dict(), status=exc.status)


@api.exception_handler(RateLimited)
def rate_limited(request, exc):
    response = api.create_response(request, exc.to_dict(), status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def validation_error(request, exc):
    first = exc.errors[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "payload", "query", "path")]
    field = ".".join(location) or "body"
    message = f"{field}: {first.get('msg', 'is invalid')}"
    return api.create_response(
        request,
        {"error": "validation_error", "message": message, "field": field,
         "errors": [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")} for e in exc.errors]},
        status=422,
    )


@api.exception_handler(AuthenticationError)
def unauthorized(request, exc):
    response = error(request, 401, "unauthorized", "Send a valid agent token: Authorization: Bearer <token>.")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def http_error(request, exc):
    # The strict parser's errors reach here wrapped by ninja; unwrap them.
    if isinstance(exc.__cause__, BodyError):
        return api.create_response(request, exc.__cause__.to_dict(), status=exc.__cause__.status)
    return error(request, exc.status_code, "error", str(exc))


@api.exception_handler(RequestDataTooBig)
def body_too_large(request, exc):
    return error(request, 413, "body_too_large", "The body is larger than the server accepts.", "body")


@api.exception_handler(Http404)
def not_found(request, exc):
    return error(request, 404, "not_found", "Not found.")


# How long a client should wait after a full disk: time for an operator or
# the retention jobs to free space.
STORAGE_FULL_RETRY_AFTER_SECONDS = 60


def is_storage_full(exc):
    """Whether a database error is a full disk or database quota: SQLite's
    SQLITE_FULL ("database or disk is full") or PostgreSQL's disk_full (53100)."""
    cause = exc.__cause__ or exc
    return (getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or getattr(cause, "sqlstate", None) == "53100"
            or "database or disk is full" in str(exc))


@api.exception_handler(OperationalError)
def storage_full(request, exc):
    # The write's transaction has rolled back, so nothing was saved and the
    # same request can be sent again once space is freed.
    if not is_storage_full(exc):
        return server_error(request, exc)
    logger.error("Storage full in %s %s (request %s): %s", request.method, request.path,
                 getattr(request, "id", ""), exc)
    response = error(request, 503, "storage_full",
                     "The server's storage is full; nothing was saved. Send the same request again later.")
    response["Retry-After"] = str(STORAGE_FULL_RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(Exception)
def server_error(request, exc):
    request_id = getattr(request, "id", "")
    logger.exception("Unhandled error in %s %s (request %s)", request.method, request.path, request_id)
    body = {"error": "server_error", "message": "The server failed; quote the request id when reporting it.",
            "request_id": request_id}
    return api.create_response(request, body, status=500)
