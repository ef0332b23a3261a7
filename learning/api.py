"""The learning router: recommendations, executions, feedback, status, A/B tests."""

from django.db.models import Q
from ninja import Header, Query, Router, Status

from qefleet.memory.errors import Forbidden, Invalid, NotFound
from qefleet.memory.models import Agent
from qefleet.memory.routing import ERRORS, agent_for

from . import abtests, drills, learning_health, offline_eval, services, status
from .models import ABTest, ABTestState, DrillRun, Strategy
from .schemas import (
    ABTestIn,
    ABTestOut,
    ABTestPage,
    ExecutionIn,
    ExecutionOut,
    FeedbackIn,
    FeedbackOut,
    FleetStatisticsHealthOut,
    LearningOut,
    RecommendationIn,
    RecommendationOut,
    StatisticsHealthOut,
    WhatIfIn,
    WhatIfOut,
)

router = Router(tags=["learning"])


@router.post("/agents/{agent_id}/recommendations", response={200: RecommendationOut, **ERRORS}, exclude_unset=True)
def recommend(request, agent_id: str, payload: RecommendationIn):
    return services.recommend(agent_for(request, agent_id), payload.task, payload.own_strategy)


@router.post("/agents/{agent_id}/executions", response={200: ExecutionOut, 201: ExecutionOut, **ERRORS})
def report_execution(request, agent_id: str, payload: ExecutionIn,
                     idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=128)):
    body, created = services.report_execution(
        agent_for(request, agent_id), payload, idempotency_key, payload.model_dump(mode="json")
    )
    return Status(201 if created else 200, body)


@router.post("/agents/{agent_id}/executions/{int:execution_id}/feedback", response={200: FeedbackOut, **ERRORS})
def feedback(request, agent_id: str, execution_id: int, payload: FeedbackIn):
    return services.add_feedback(agent_for(request, agent_id), execution_id, payload.rating, payload.issues)


@router.get("/agents/{agent_id}/learning", response={200: LearningOut, **ERRORS})
def learning_status(request, agent_id: str, tasks: int = Query(
        learning_health.WINDOW_TASKS, ge=learning_health.WINDOW_LIMITS[0], le=learning_health.WINDOW_LIMITS[1],
        description="The window of \"Is it learning?\": the last N tasks of each agent.")):
    return status.learning_status(agent_for(request, agent_id), tasks)


@router.get("/agents/{agent_id}/statistics-health", response={200: StatisticsHealthOut, **ERRORS})
def statistics_health(request, agent_id: str):
    run = DrillRun.objects.filter(agent=agent_for(request, agent_id)).select_related("agent").first()
    if run is None:
        raise NotFound("No drills of this agent yet: they run daily once it has 100 policy tasks.")
    return drills.agent_health(run)


@router.get("/statistics-health", response={200: FleetStatisticsHealthOut, **ERRORS})
def fleet_statistics_health(request):
    caller = request.agent
    if not caller.is_system or not caller.swarm:
        raise Forbidden("Only system agents read the fleet's statistics health.").denied(
            caller, "read", "statistics-health", "only system agents read the fleet's statistics health")
    return drills.fleet_health(Agent.objects.filter(swarm=caller.swarm))


# --- A/B tests: system agents create and read their swarm's; an agent reads its own ------------

TEST_RELATIONS = ("agent", "previous_strategy")


def _visible_tests(request):
    tests = ABTest.objects.select_related(*TEST_RELATIONS).prefetch_related("arms__strategy", "transitions")
    caller = request.agent
    if caller.is_system and caller.swarm:
        return tests.filter(Q(agent__swarm=caller.swarm) | Q(agent=caller))
    return tests.filter(agent=caller)


@router.post("/abtests", response={201: ABTestOut, **ERRORS}, tags=["abtests"])
def create_abtest(request, payload: ABTestIn):
    if not request.agent.is_system:
        raise Forbidden("Only system agents create A/B tests.").denied(
            request.agent, "create", "abtests", "only system agents create A/B tests")
    agent = agent_for(request, payload.agent)
    strategies = {name: Strategy.objects.filter(name=getattr(payload, name)).first()
                  for name in ("control", "treatment") if getattr(payload, name) is not None}
    for name, strategy in strategies.items():
        if strategy is None:
            raise Invalid(f"Unknown strategy {getattr(payload, name)!r}.", name)
    test = abtests.create(
        agent, payload.task_type, strategies.get("control"), strategies["treatment"], source="api",
        created_by=request.agent.agent_id, name=payload.name, hypothesis=payload.hypothesis, mde=payload.mde,
        power=payload.power, control_weight=payload.control_weight, start=payload.start)
    return Status(201, _visible_tests(request).get(pk=test.pk).to_dict())


@router.get("/abtests/{int:test_id}", response={200: ABTestOut, **ERRORS}, tags=["abtests"])
def get_abtest(request, test_id: int):
    test = _visible_tests(request).filter(pk=test_id).first()
    if test is None:
        error = NotFound("No such A/B test.")
        if ABTest.objects.filter(pk=test_id).exists():  # another agent's: answered alike, audited
            error.denied(request.agent, "read", f"abtest:{test_id}", "another agent's A/B test")
        raise error
    return test.to_dict()


@router.get("/abtests", response={200: ABTestPage, **ERRORS}, tags=["abtests"])
def list_abtests(request, agent: str | None = None, state: ABTestState | None = None,
                 before: int | None = Query(None, ge=1), limit: int = Query(50, ge=1, le=200)):
    tests = _visible_tests(request).order_by("-pk")
    if agent is not None:
        tests = tests.filter(agent__agent_id=agent)
    if state is not None:
        tests = tests.filter(state=state)
    if before is not None:
        tests = tests.filter(pk__lt=before)
    page = list(tests[:limit + 1])
    return {"items": [test.to_dict() for test in page[:limit]],
            "next_before": page[limit - 1].pk if len(page) > limit else None}


# --- what-if: offline estimates from logged decisions, for system agents -------------------------------------


@router.post("/whatif", response={200: WhatIfOut, **ERRORS}, tags=["whatif"])
def whatif(request, payload: WhatIfIn):
    """A candidate policy's success rate and composite score on the logged tasks of an agent, a team or the
    caller's swarm, with 95 % intervals and the effective sample size, or the reason the logs cannot tell."""
    if not request.agent.is_system:
        raise Forbidden("Only system agents ask what-if questions.").denied(
            request.agent, "evaluate", "whatif", "only system agents evaluate policies offline")
    agent = agent_for(request, payload.agent) if payload.agent else None
    policy = offline_eval.policy_for(payload.policy, agent, payload.task_type, payload.strategy, payload.version,
                                     payload.exploration_rate)
    scope = offline_eval.agents_in_scope(agent, payload.team, swarm=request.agent.swarm)
    return offline_eval.evaluate(scope, policy, days=payload.days)
