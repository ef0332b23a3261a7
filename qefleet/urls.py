from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from qefleet.api import api
from qefleet.health import healthz

handler500 = "qefleet.views.server_error"

admin.site.site_header = "QE Fleet administration"
admin.site.site_title = "QE Fleet"


@csrf_exempt  # like every API route: agents authenticate with tokens, never cookies
def api_not_found(request):
    """Agents parse every API answer as JSON, including a path no route matches
    (Django's `path` converter stops at a newline, so a key holding one lands here)."""
    return JsonResponse({"error": "not_found", "message": "Not found."}, status=404)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/v1/", api_not_found),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("ops/", include("dashboard.urls")),
    path("", RedirectView.as_view(pattern_name="dash-fleet", permanent=False)),
]
