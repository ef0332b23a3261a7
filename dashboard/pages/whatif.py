"""The What-if page: what a candidate policy would have scored on the tasks
already logged (learning.offline_eval), with its 95 % interval, effective
sample size, or the reason the logs cannot tell; and the same estimate
beside an A/B test that has not decided yet and in the rollback preview."""

from django.db.models import Count

from learning import offline_eval
from learning.models import ABTestState, Decision, StateVersion, Strategy
from qefleet.memory.errors import Invalid
from qefleet.memory.models import Agent

from ..params import BadParameter, choice, text, whole_number
from .common import options

POLICIES = (("fixed", "Always one strategy for a task type (an A/B test's treatment)"),
            ("version", "A stored version (what a rollback would bring back)"),
            ("current", "The current learned policy at another exploration rate"))
UNDECIDED_TESTS = (ABTestState.DRAFT, ABTestState.RUNNING)


def _form(query):
    agent_id = text(query, "agent", max_length=64)
    agent = Agent.objects.filter(agent_id=agent_id).first() if agent_id else None
    if agent_id and agent is None:
        raise BadParameter("agent must be an agent of the fleet.")
    return {
        "policy": choice(query, "policy", [value for value, _ in POLICIES], default="fixed"),
        "agent": agent, "team": text(query, "team", max_length=64),
        "task_type": text(query, "task_type", max_length=64), "strategy": text(query, "strategy", max_length=64),
        "version": whole_number(query, "version", minimum=1),
        "exploration_pct": whole_number(query, "exploration_pct", minimum=0, maximum=100),
        "days": whole_number(query, "days", default=offline_eval.DEFAULT_WINDOW_DAYS, minimum=1, maximum=365),
    }


def _choices(agent):
    task_types = (Decision.objects.filter(agent=agent) if agent else Decision.objects.all()).values(
        "task_type").annotate(n=Count("pk")).order_by("-n").values_list("task_type", flat=True)[:50]
    return {
        "policies": POLICIES,
        "agents": options(Agent.objects.filter(is_system=False).order_by("agent_id").values_list("agent_id", flat=True)),
        "teams": options(Agent.objects.exclude(team="").order_by("team").values_list("team", flat=True).distinct()),
        "task_types": options(task_types),
        "strategies": options(Strategy.objects.active().values_list("name", flat=True)),
        "versions": [(str(number), f"v{number}") for number in StateVersion.objects.filter(agent=agent)
                     .order_by("-number").values_list("number", flat=True)] if agent else [],
    }


def whatif_context(query):
    form = _form(query)
    context = {"form": form, **_choices(form["agent"]), "asked": bool(query.get("policy"))}
    if not context["asked"]:
        return context
    try:
        exploration = None if form["exploration_pct"] is None else form["exploration_pct"] / 100
        policy = offline_eval.policy_for(form["policy"], form["agent"], form["task_type"], form["strategy"],
                                         form["version"], exploration)
    except Invalid as error:
        context["error"] = {"field": error.field, "message": str(error.message)}
        return context
    scope = offline_eval.agents_in_scope(form["agent"], form["team"])
    context["answer"] = offline_eval.evaluate(scope, policy, days=form["days"])
    if form["policy"] == "fixed":
        context["outlook"] = offline_eval.abtest_outlook(context["answer"])
    return context


def abtest_outlook_context(test):
    """Beside an A/B test not yet decided: the offline estimate of its
    treatment on the agent's logs, and the days to its horizon at the logged
    traffic of the task type."""
    treatment = next((arm for arm in test.arms.all() if arm.role == "treatment"), None)
    if test.state not in UNDECIDED_TESTS or treatment is None or treatment.strategy is None:
        return {}
    answer = offline_eval.evaluate(offline_eval.agents_in_scope(test.agent),
                                   offline_eval.Fixed(test.task_type, treatment.strategy))
    control_weight = next((arm.weight for arm in test.arms.all() if arm.role == "control"), 0.5)
    return {"whatif": answer, "whatif_outlook": offline_eval.abtest_outlook(answer, test.mde, test.power,
                                                                           control_weight)}


def version_estimate(agent, version):
    """The rollback preview's offline estimate of a version's policy."""
    answer = offline_eval.evaluate(offline_eval.agents_in_scope(agent), offline_eval.VersionPolicy(version))
    if "refused" in answer:
        return {"refused": answer["refused"]["message"], "rows": answer["rows"]}
    return {"success": answer["success"]["doubly_robust"], "score": answer["score"]["doubly_robust"],
            "logged_score": answer["score"]["logged"]["value"], "effective_samples": answer["effective_samples"],
            "rows": answer["rows"]}
