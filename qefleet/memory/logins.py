"""Password guessing on the two login pages (the dashboard's and the
admin's), with django-axes: who a login attempt comes from, and each counted
failure written to the audit trail. The limits are settings (AXES_*, from
LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES)."""

import ipaddress

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from django.conf import settings

from .models import AuditEvent


def client_address(request):
    """The address a login attempt comes from. Behind TRUSTED_PROXY_COUNT
    proxies, each appending the peer it saw to X-Forwarded-For, it is the
    entry that many places from the right (what the client itself wrote
    further left is ignored); else, or when the header is not as expected,
    the peer's address."""
    peer = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if not count:
        return peer
    forwarded = [item.strip() for item in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < count:
        return peer
    try:
        return str(ipaddress.ip_address(forwarded[-count]))
    except ValueError:
        return peer


class AuditedLoginHandler(AxesDatabaseHandler):
    """Axes' database handler, which also writes each failure it counts to
    the audit trail. An attempt refused while locked out is neither counted
    nor audited: it checks no password, and an outsider could otherwise grow
    the trail without bound."""

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        refused = getattr(request, "axes_locked_out", False)
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        if request is None or refused or getattr(request, "axes_failures_since_start", None) is None:
            return  # no request, refused while locked, or a whitelisted client: nothing counted
        username = get_client_username(request, credentials) or ""
        # The user name as typed (at most 150 characters, the form's limit), in
        # the detail; the target stays short enough after encoding controls.
        AuditEvent.record("anonymous", "login_failed", f"user:{username[:140]}", request,
                          username=username, page=request.path, client=request.axes_ip_address,
                          failures=request.axes_failures_since_start, locked_out=request.axes_locked_out)
