from django.urls import path

from . import views

urlpatterns = [
    path("", views.fleet, name="dash-fleet"),
    path("agents/<slug:agent_id>/", views.agent_page, name="dash-agent"),
    path("alerts/", views.alert_inbox, name="dash-alerts"),
    path("agents/<slug:agent_id>/rollback", views.rollback, name="dash-rollback"),
    path("agents/<slug:agent_id>/rollbacks/<int:rollback_id>/undo", views.undo_rollback, name="dash-undo-rollback"),
    path("agents/<slug:agent_id>/re-enable", views.re_enable, name="dash-re-enable"),
    path("agents/<slug:agent_id>/preview", views.preview, name="dash-preview"),
    path("alerts/<int:alert_id>/<str:action>", views.alert_action, name="dash-alert-action"),
]
