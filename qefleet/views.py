"""Project-wide views: the answer to an unhandled error outside the API."""

from django.http import HttpResponseServerError, JsonResponse
from django.template import loader


def server_error(request):
    """A generic 500 with the request id to quote, never a traceback.

    API paths get the API's JSON error (its own handler covers the views;
    this covers what fails around them); pages get a plain page that needs
    no context processor, static file or database, since any of those may be
    what failed.
    """
    request_id = getattr(request, "id", "")
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "server_error", "message": "The server failed; quote the request id when "
                             "reporting it.", "request_id": request_id}, status=500)
    return HttpResponseServerError(loader.get_template("500.html").render({"request_id": request_id}))
