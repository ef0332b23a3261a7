"""Errors the memory service raises; the API renders each as a JSON 4xx."""

from .models import AuditEvent


class MemoryError(Exception):
    status = 400
    code = "bad_request"
    denial = None  # (actor, operation, target, reason) when an access rule refused

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field

    def denied(self, actor, operation, target, reason):
        """Mark the error as an access denial; the API audits it."""
        self.denial = (actor, operation, target, reason)
        return self

    def audit_denial(self, request):
        if self.denial is None:
            return
        actor, operation, target, reason = self.denial
        AuditEvent.record(actor.agent_id if actor else "anonymous", "access_denied", target, request,
                          operation=operation, reason=reason, status=self.status)

    def to_dict(self):
        body = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class Invalid(MemoryError):
    status = 400
    code = "invalid"


class NotFound(MemoryError):
    status = 404
    code = "not_found"

    def __init__(self, message="Not found.", field=None):
        super().__init__(message, field)


class Forbidden(MemoryError):
    status = 403
    code = "forbidden"


class Conflict(MemoryError):
    status = 409
    code = "conflict"


class Unprocessable(MemoryError):
    status = 422
    code = "unprocessable"
