"""Project-wide views: the answer to an unhandled error outside the API."""

import logging

from django.http import HttpResponseServerError, JsonResponse
from django.template import loader

logger = logging.getLogger("qefleet.errors")


def server_error(request):
    """A generic 500 with the request id to quote, never a traceback.

    API paths get the API's JSON error (its own handler covers the views;
    this covers what fails around them); pages get a plain page that needs
    no context processor, static file or database, since any of those may be
    what failed.
    """
    request_id = getattr(request, "id", "")
    # Django's own record (django.request) reaches no handler with DEBUG off;
    # this one goes where settings.LOGGING sends qefleet's, traceback and id.
    logger.error("Unhandled error in %s %s (request %s)", request.method, request.path, request_id, exc_info=True)
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "server_error", "message": "The server failed; quote the request id when "
                             "reporting it.", "request_id": request_id}, status=500)
    return HttpResponseServerError(loader.get_template("500.html").render({"request_id": request_id}))
