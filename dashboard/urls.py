from django.urls import path

from . import views

urlpatterns = [
    path("", views.fleet, name="dash-fleet"),
    path("agents/<slug:agent_id>/", views.agent_page, name="dash-agent"),
    path("alerts/", views.alert_inbox, name="dash-alerts"),
    path("timeline/", views.timeline, name="dash-timeline"),
    path("compare/", views.compare, name="dash-compare"),
    path("abtests/", views.abtest_list, name="dash-abtests"),
    path("abtests/<int:test_id>/", views.abtest_page, name="dash-abtest"),
    path("abtests/<int:test_id>/abort", views.abort_test, name="dash-abort-test"),
    path("patterns/", views.pattern_sharing, name="dash-patterns"),
    path("overhead/", views.learning_overhead, name="dash-overhead"),
    path("report/", views.improvement_report, name="dash-report"),
    path("report.csv", views.improvement_report, {"fmt": "csv"}, name="dash-report-csv"),
    path("report.json", views.improvement_report, {"fmt": "json"}, name="dash-report-json"),
    path("agents/<slug:agent_id>/report/", views.improvement_report, name="dash-agent-report"),
    path("agents/<slug:agent_id>/report.csv", views.improvement_report, {"fmt": "csv"}, name="dash-agent-report-csv"),
    path("agents/<slug:agent_id>/report.json", views.improvement_report, {"fmt": "json"},
         name="dash-agent-report-json"),
    path("agents/<slug:agent_id>/decisions.csv", views.decision_log, name="dash-agent-decisions"),
    path("agents/<slug:agent_id>/rollback", views.rollback, name="dash-rollback"),
    path("agents/<slug:agent_id>/rollbacks/<int:rollback_id>/undo", views.undo_rollback, name="dash-undo-rollback"),
    path("agents/<slug:agent_id>/re-enable", views.re_enable, name="dash-re-enable"),
    path("agents/<slug:agent_id>/preview", views.preview, name="dash-preview"),
    path("agents/<slug:agent_id>/run-cycle", views.run_cycle, name="dash-run-cycle"),
    path("alerts/<int:alert_id>/<str:action>", views.alert_action, name="dash-alert-action"),
]
