"""The A/B tests: the list, filtered by state and agent, and a test's page
with its arms' difference, health checks and the interval at each look."""

import math
from dataclasses import dataclass

import numpy as np
from django.core.paginator import Paginator
from django.db.models import Avg, Count, F, Max, Min, Prefetch
from django.db.models.functions import Least

from learning import abtests
from learning.core import stats
from learning.core.numbers import signed_number
from learning.models import OPEN_TEST_STATES, ABArm, ABLook, ABTest, ABTestState

from .. import charts
from . import common
from ..params import choice, page_number, text
from .common import agents_with, as_floats, options

ABTESTS_PER_PAGE = 25


@dataclass
class ABTestFilter:
    state: str = ""
    agent: str = ""

    @classmethod
    def from_query(cls, query):
        return cls(state=choice(query, "state", ABTestState.values), agent=text(query, "agent"))

    def apply(self, tests):
        if self.state:
            tests = tests.filter(state=self.state)
        if self.agent:
            tests = tests.filter(agent__agent_id=self.agent)
        return tests


def _with_arms(tests):
    return tests.select_related("agent").prefetch_related(
        Prefetch("arms", queryset=ABArm.objects.select_related("strategy")))


def abtest_page(test_filter, page_number):
    tests = test_filter.apply(_with_arms(ABTest.objects.all())).order_by("-created_at", "-pk")
    return Paginator(tests, ABTESTS_PER_PAGE).get_page(page_number)


def abtest_detail():
    """The A/B tests with what their page shows: arms, timeline, the strategy
    a winner replaced and the version captured before applying it."""
    return (_with_arms(ABTest.objects.select_related("previous_strategy", "version_before"))
            .defer("version_before__payload").prefetch_related("transitions"))


@dataclass
class Check:
    """One of a test's health checks, shown as a badge (kind, state) and words."""

    kind: str
    state: str
    detail: str


# Guardrails only block applying a winning treatment: once a test ended
# without one, nothing was applied and there is nothing for them to judge.
ENDED_WITHOUT_WINNER = (ABTestState.CONTROL_WINS, ABTestState.INCONCLUSIVE, ABTestState.ABORTED)


def abtest_checks(test):
    """The sample-ratio check and the guardrails on the arms' counts now,
    judged as abtests.review judges them at each look."""
    control, treatment = test.control.stats, test.treatment.stats
    srm = stats.srm_p_value([control.n, treatment.n], [test.control.weight, test.treatment.weight])
    if control.n + treatment.n < abtests.SRM_MIN_SAMPLES:
        srm_state = "pending"
    else:
        srm_state = "mismatch" if srm < stats.SRM_P else "ok"
    checks = [Check("srm", srm_state, f"chi-square p = {srm:.3g} for {control.n} and {treatment.n} tasks "
                                      f"against weights {test.control.weight:g} / {test.treatment.weight:g}")]
    violated = stats.guardrails(control, treatment)
    time_change = treatment.mean_ms / control.mean_ms - 1 if control.mean_ms else 0.0
    moot = test.state in ENDED_WITHOUT_WINNER
    error_change = treatment.error_rate - control.error_rate
    for name, detail in (("time", f"treatment's mean time {signed_number(time_change * 100, 1)} % against the "
                                  "control's"),
                         ("errors", f"treatment's error rate {signed_number(error_change * 100, 1)} points against "
                                    "the control's")):
        if moot:
            state, detail = "moot", f"the treatment did not win, so nothing was applied; {detail}"
        elif not (control.n and treatment.n):
            state = "pending"
        else:
            state = "violated" if name in violated else "held"
        checks.append(Check(f"{name}-guardrail", state, detail))
    return checks


@dataclass
class ArmDifference:
    """Treatment minus control (rates as fractions), with the latest look's
    interval for the success-rate difference, the decision's metric."""

    success_rate: float
    mean_ms: float
    error_rate: float
    score: float
    interval: list | None
    sequential: bool


def arm_difference(test):
    control, treatment = test.control.stats, test.treatment.stats
    return ArmDifference(
        success_rate=treatment.success_rate - control.success_rate, mean_ms=treatment.mean_ms - control.mean_ms,
        error_rate=treatment.error_rate - control.error_rate, score=treatment.score - control.score,
        interval=test.verdict.get("interval"), sequential=test.verdict.get("sequential", False))


@dataclass
class LookSeries:
    """The interval for the success-rate difference (points) at each look,
    by tasks per arm (the smaller arm, as the decision counts them)."""

    per_arm: np.ndarray
    low: np.ndarray
    high: np.ndarray
    estimate: np.ndarray


def look_series(test):
    """None before the first look. Looks at the same count (no new tasks
    between slots) are one point; more than common.MAX_POINTS counts are averaged
    in the database over buckets of tasks. The estimate is the interval's
    centre (both intervals are symmetric about the Agresti-Caffo estimate),
    left out where a bound was clipped at +-100 points."""
    looks = ABLook.objects.filter(test=test).annotate(per_arm=Least("n_control", "n_treatment"))
    span = looks.aggregate(last=Max("per_arm"), count=Count("pk"))
    if not span["count"]:
        return None
    most = common.MAX_POINTS
    bucket = 1 if span["count"] <= most else math.ceil((span["last"] + 1) / most)
    rows = list(looks.annotate(bucket=F("per_arm") / bucket).values("bucket").annotate(
        n=Max("per_arm"), mean_low=Avg("low"), mean_high=Avg("high"), lowest=Min("low"), highest=Max("high"),
    ).order_by("bucket"))
    low, high = as_floats(row["mean_low"] for row in rows), as_floats(row["mean_high"] for row in rows)
    clipped = (as_floats(row["lowest"] for row in rows) <= -1) | (as_floats(row["highest"] for row in rows) >= 1)
    return LookSeries(per_arm=as_floats(row["n"] for row in rows), low=low * 100, high=high * 100,
                      estimate=np.where(clipped, np.nan, (low + high) / 2 * 100))


def abtests_context(query):
    test_filter = ABTestFilter.from_query(query)
    return {
        "filter": test_filter, "page": abtest_page(test_filter, page_number(query)),
        "states": options(ABTestState.values), "agents": options(agents_with("abtests")),
    }


def abtest_context(test):
    looks = look_series(test)
    return {
        "test": test, "difference": arm_difference(test), "checks": abtest_checks(test),
        "interval_figure": charts.interval_figure(looks, test.horizon) if looks else None,
        "can_abort": test.state in OPEN_TEST_STATES, "monitoring": test.verdict.get("monitoring"),
    }
