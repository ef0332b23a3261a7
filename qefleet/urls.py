from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from qefleet.api import api

admin.site.site_header = "QE Fleet administration"
admin.site.site_title = "QE Fleet"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("ops/", include("dashboard.urls")),
    path("", RedirectView.as_view(pattern_name="dash-fleet", permanent=False)),
]
