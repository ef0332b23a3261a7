"""The operator dashboard: pages (GET, login and a role's view permission)
and operator actions (POST-only, CSRF-protected, permission-checked).

Each action names its target (a version number, a rollback id, an alert
id, an A/B test, the current cycle slot), so a second click does nothing;
it answers with a redirect to `next` (or the page of what it acted on) and
a message. Pages and actions read their parameters with dashboard.params
before anything else, so a parameter they cannot use answers 400 and
changes nothing.
"""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from learning import alerts, drills, operations, report, versions
from learning.models import LearningProfile, StateVersion
from qefleet.memory.models import Agent

from . import params
from .pages.abtests import abtest_context, abtest_detail, abtests_context
from .pages.agent import agent_context, cycle_message
from .pages.alerts import alerts_context, silence_rule_input
from .pages.compare import compare_context
from .pages.fleet import fleet_context
from .pages.incidents import incidents_context
from .pages.overhead import overhead_context
from .pages.patterns import patterns_context
from .pages.report import decisions_csv, download, period_of, report_context
from .pages.rollback import preview_in_words, rollback_confirmation, undo_message
from .pages.statistics import statistics_context
from .pages.timeline import timeline_context
from .pages.whatif import abtest_outlook_context, version_estimate, whatif_context


def answers_bad_parameters(view):
    """A parameter the view cannot use answers 400 with the reader's message,
    which names the parameter (it never holds what was sent); a name that
    matches nothing answers 404. Both as a dashboard page, whatever DEBUG says."""

    @wraps(view)
    def answer(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (params.BadParameter, operations.InvalidAction) as error:
            return render(request, "dashboard/error.html", {"status": 400, "message": str(error)}, status=400)
        except Http404:
            return render(request, "dashboard/error.html", {"status": 404}, status=404)

    return answer


def dashboard_page(permission):
    """GET only; anonymous users go to the login page, users without the
    role's view permission get 403."""

    def decorate(view):
        return login_required(permission_required(permission, raise_exception=True)(
            require_GET(answers_bad_parameters(view))))

    return decorate


def operator_action(permission):
    """POST only (CSRF-protected by the middleware); users without the
    action's permission get 403."""

    def decorate(view):
        return require_POST(permission_required(permission, raise_exception=True)(answers_bad_parameters(view)))

    return decorate


def render_page(request, template, context):
    return render(request, template, {**context, "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS})


@dashboard_page("learning.view_learningprofile")
def fleet(request):
    return render_page(request, "dashboard/fleet.html", {**fleet_context(request.GET), **incidents_context()})


@dashboard_page("learning.view_learningprofile")
def timeline(request):
    return render_page(request, "dashboard/timeline.html", timeline_context(request.GET))


@dashboard_page("learning.view_learningprofile")
def compare(request):
    return render_page(request, "dashboard/compare.html", compare_context(request.GET))


@dashboard_page("learning.view_learningprofile")
def agent_page(request, agent_id):
    agent = get_object_or_404(Agent.objects.select_related("learning__live_version", "safeguard")
                              .defer("learning__live_version__payload"), agent_id=agent_id)
    return render_page(request, "dashboard/agent.html", agent_context(agent, request.GET))


@dashboard_page("learning.view_alert")
def alert_inbox(request):
    return render_page(request, "dashboard/alerts.html", alerts_context(request.GET))


@dashboard_page("learning.view_abtest")
def abtest_list(request):
    return render_page(request, "dashboard/abtests.html", abtests_context(request.GET))


@dashboard_page("learning.view_abtest")
def abtest_page(request, test_id):
    test = get_object_or_404(abtest_detail(), pk=test_id)
    return render_page(request, "dashboard/abtest.html", {**abtest_context(test), **abtest_outlook_context(test)})


@dashboard_page("learning.view_sharedpattern")
def pattern_sharing(request):
    return render_page(request, "dashboard/patterns.html", patterns_context(request.GET))


@dashboard_page("learning.view_learningprofile")
def what_if(request):
    return render_page(request, "dashboard/whatif.html", whatif_context(request.GET))


@dashboard_page("learning.view_learningprofile")
def learning_overhead(request):
    return render_page(request, "dashboard/overhead.html", overhead_context(request.GET))


@dashboard_page("learning.view_learningprofile")
def statistics_health(request, agent_id=None):
    agent = get_object_or_404(Agent, agent_id=agent_id) if agent_id else None
    return render_page(request, "dashboard/statistics.html", statistics_context(agent))


@dashboard_page("learning.view_learningprofile")
def improvement_report(request, agent_id=None, fmt="html"):
    """The fleet's or an agent's improvement report as a page, CSV or JSON."""
    agent = get_object_or_404(Agent, agent_id=agent_id) if agent_id else None
    now = timezone.now()
    period = period_of(request.GET, now)
    data = report.build(period, now, agent)
    if fmt != "html":
        return download(data, fmt)
    return render(request, "dashboard/report.html", report_context(data, period, request.GET, agent))


@dashboard_page("learning.view_decision")
def decision_log(request, agent_id):
    """An agent's decisions and executions in a period, streamed as CSV."""
    agent = get_object_or_404(Agent, agent_id=agent_id)
    return decisions_csv(agent, period_of(request.GET, timezone.now()))


def back(request, agent=None, fallback=None):
    """To `next` when it is on this site, else to `fallback` (a URL), the
    agent's page or the alerts inbox."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    if fallback is not None:
        return redirect(fallback)
    if agent is not None:
        return redirect("dash-agent", agent_id=agent.agent_id)
    return redirect("dash-alerts")


def version_to_roll_back_to(query):
    number = params.whole_number(query, "version", minimum=1)
    if number is None:
        raise params.BadParameter("version must name the version to roll back to.")
    return number


@dashboard_page("learning.rollback_agent")
def confirm_rollback(request, agent_id):
    """The confirmation step: the preview, and the reason the rollback needs."""
    agent = get_object_or_404(Agent.objects.select_related("learning"), agent_id=agent_id)
    number = version_to_roll_back_to(request.GET)
    return render_page(request, "dashboard/rollback_confirm.html", rollback_confirmation(agent, number))


@operator_action("learning.rollback_agent")
def rollback(request, agent_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    number = version_to_roll_back_to(request.POST)
    reason = params.text(request.POST, "reason")
    record = operations.roll_back_to(agent, number, request.user, reason, request)
    if record is None:
        messages.info(request, f"v{number} is already live for {agent_id}; nothing to do.")
    else:
        messages.success(request, f"Rolled {agent_id} back to v{number}; its learning is paused until resumed.")
    return back(request, agent)


@operator_action("learning.rollback_agent")
def undo_rollback(request, agent_id, rollback_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    record = operations.undo(agent, rollback_id, request.user, request)
    if record is None:
        messages.info(request, f"Rollback #{rollback_id} can no longer be undone; nothing changed.")
    else:
        messages.success(request, undo_message(agent, record))
    return back(request, agent)


@operator_action("learning.pause_learning")
def pause(request, agent_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    changed = operations.pause(agent, request.user, params.text(request.POST, "reason"), request)
    messages.success(request, f"Learning of {agent_id} is {'paused' if changed else 'already off'}.")
    return back(request, agent)


@operator_action("learning.pause_learning")
def re_enable(request, agent_id):
    """Resume learning, in shadow when asked: operations.may_resume says who
    may (403 otherwise)."""
    agent = get_object_or_404(Agent, agent_id=agent_id)
    in_shadow = params.choice(request.POST, "mode", ["active", "shadow"], "active") == "shadow"
    changed = operations.re_enable(agent, request.user, request, in_shadow=in_shadow)
    how = " in shadow" if in_shadow else ""
    messages.success(request, f"Learning of {agent_id} is {'on again' + how if changed else 'already on'}.")
    return back(request, agent)


@operator_action("learning.shadow_learning")
def put_in_shadow(request, agent_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    changed = operations.put_in_shadow(agent, request.user, params.text(request.POST, "reason"), request)
    messages.success(request, f"{agent_id} is {'now' if changed else 'already'} in shadow: it runs its own choices "
                              "while the learned policy's are logged.")
    return back(request, agent)


@operator_action("learning.shadow_learning")
def promote(request, agent_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    if params.text(request.POST, "confirm") != "yes":
        raise params.BadParameter("confirm must be ticked: promoting hands the choices to the learned policy.")
    changed = operations.promote(agent, request.user, params.text(request.POST, "reason"), request)
    messages.success(request, f"{agent_id} is {'promoted to' if changed else 'already'} active: the learned policy "
                              "chooses its strategies.")
    return back(request, agent)


@operator_action("learning.run_cycle")
def run_cycle(request, agent_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    cycle = operations.run_cycle(agent, request.user, request)
    level = messages.SUCCESS if cycle is not None else messages.INFO
    messages.add_message(request, level, cycle_message(agent, cycle))
    return back(request, agent)


@operator_action("learning.run_cycle")
def run_drills(request, agent_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    try:
        run = operations.run_drills(agent, request.user, request)
    except drills.TooFewTasks as error:
        messages.info(request, str(error))
    else:
        verdict = drills.STATE_SENTENCES[drills.run_state(run.figures["health"])]
        messages.success(request, f"Drilled {agent_id} in {run.seconds:.1f} s: {verdict}.")
    return back(request, fallback=reverse("dash-agent-statistics", args=[agent_id]))


@operator_action("learning.change_safeguard")
def apply_calibration(request, agent_id):
    agent = get_object_or_404(Agent, agent_id=agent_id)
    run_id = params.whole_number(request.POST, "drill_run", minimum=1)
    guard = operations.apply_calibration(agent, run_id, request.user, request)
    if guard is None:
        messages.info(request, f"The safeguard of {agent_id} already had that setting.")
    else:
        messages.success(request, f"The safeguard of {agent_id} now checks the last {guard.window} tasks every "
                                  f"{guard.check_every}, z {guard.confidence_z}, acting on {guard.consecutive} in a row.")
    return back(request, fallback=reverse("dash-agent-statistics", args=[agent_id]))


@operator_action("learning.change_abtest")
def abort_test(request, test_id):
    test = operations.abort_test(test_id, request.user, request, params.text(request.POST, "reason").strip())
    if test is None:
        messages.info(request, f"A/B test #{test_id} had already ended; nothing to abort.")
    else:
        messages.success(request, f"Aborted A/B test #{test_id} ({test.name}) of {test.agent.agent_id}.")
    return back(request, fallback=reverse("dash-abtest", args=[test_id]))


ALERT_ACTIONS = {"acknowledge": "acknowledged", "silence": "silenced", "resolve": "resolved"}
ALERT_NOTE_LENGTH = 500  # the forms' maxlength


def alert_action_input(form, action):
    """(note, until): a silence needs a time from now to MAX_SILENCE ahead."""
    note = params.text(form, "note", max_length=ALERT_NOTE_LENGTH)
    now = timezone.now()
    return note, params.moment(form, "until", now, now + alerts.MAX_SILENCE) if action == "silence" else None


@operator_action("learning.act_on_alert")
def alert_action(request, alert_id, action):
    if action not in ALERT_ACTIONS:
        raise Http404("No such alert action.")
    note, until = alert_action_input(request.POST, action)
    alert = operations.act_on_alert(alert_id, action, request.user, note, until, request)
    messages.success(request, f"Alert {alert.pk} {ALERT_ACTIONS[action]}.")
    return back(request, alert.agent)


@operator_action("learning.act_on_alert")
def alerts_bulk(request):
    """One action on the alerts a card's checkboxes name: one transaction, one audit row."""
    action = params.choice(request.POST, "action", operations.ALERT_ACTIONS)
    if not action:
        raise params.BadParameter(f"action must be one of: {', '.join(operations.ALERT_ACTIONS)}.")
    ids = params.whole_numbers(request.POST, "alert", minimum=1)
    note, until = alert_action_input(request.POST, action)
    done = operations.act_on_alerts(ids, action, request.user, note, until, request)
    messages.success(request, f"{len(done)} alert{'s' if len(done) != 1 else ''} {ALERT_ACTIONS[action]}.")
    return back(request)


@operator_action("learning.act_on_alert")
def create_silence(request):
    rule, quieted = operations.create_silence(request.user, request=request, **silence_rule_input(request.POST))
    messages.success(request, f"Silence rule #{rule.pk} ({rule.describe()}) until {rule.until:%Y-%m-%d %H:%M} UTC; "
                              f"it quieted {quieted} open alert{'s' if quieted != 1 else ''}.")
    return back(request, fallback=reverse("dash-alerts") + "#silences")


@operator_action("learning.act_on_alert")
def end_silence(request, rule_id):
    rule = operations.end_silence(rule_id, request.user, request)
    messages.success(request, f"Silence rule #{rule_id} {'ended' if rule else 'had already ended'}.")
    return back(request, fallback=reverse("dash-alerts") + "#silences")


@dashboard_page("learning.view_learningprofile")
def preview(request, agent_id):
    """What rolling back to a version (default: the last known good) would change."""
    agent = get_object_or_404(Agent, agent_id=agent_id)
    profile = get_object_or_404(LearningProfile.objects.with_live_version(), agent=agent)
    number = params.whole_number(request.GET, "version", minimum=1)
    versions_of_agent = StateVersion.objects.filter(agent=agent)
    if number is not None:
        version = get_object_or_404(versions_of_agent, number=number)
    else:
        version = versions_of_agent.filter(known_good=True).order_by("-number").first()
        if version is None:
            raise Http404("No known-good version yet.")
    return JsonResponse({**preview_in_words(versions.preview(agent, profile, version)),
                         "offline": version_estimate(agent, version)})
