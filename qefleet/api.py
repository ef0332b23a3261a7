"""The agent API: one NinjaAPI at /api/v1/ that mounts every app's router."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from learning.api import router as learning_router
from qefleet.jsonbody import BodyError, StrictJSONParser
from qefleet.memory.api import router as memory_router
from qefleet.memory.auth import AgentTokenAuth
from qefleet.memory.errors import MemoryError

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
    return api.create_response(request, exc.to_dict(), status=exc.status)


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


@api.exception_handler(Exception)
def server_error(request, exc):
    request_id = getattr(request, "id", "")
    logger.exception("Unhandled error in %s %s (request %s)", request.method, request.path, request_id)
    body = {"error": "server_error", "message": "The server failed; quote the request id when reporting it.",
            "request_id": request_id}
    return api.create_response(request, body, status=500)
