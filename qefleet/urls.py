from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from qefleet.api import api

admin.site.site_header = "QE Fleet administration"
admin.site.site_title = "QE Fleet"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("ops/", include("dashboard.urls")),
    # Until the operator dashboard exists, the admin is the operators' home.
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
