"""Shadow mode (Personalizer called it apprentice mode): an agent in shadow
runs its own choice, or the catalog default, while the server learns from
every report and logs, on each Decision, what the learned policy would have
chosen (`shadow_strategy`). The executed choice is the agent's, so its
propensity is 1.

How the learned policy would have done is estimated, not observed: the
agent's choices are deterministic, so where the two disagree no logged task
shows the learned choice and importance weighting alone cannot answer
(learning.core.offline refuses it). The estimate is doubly robust with a
reward model fitted on the agent's shadow tasks and the reference logs:
its swarm mates' logged tasks and its own from before shadow, where other
strategies were tried (offline.compare_with_reference). The agent's own
policy is its observed success rate on the same tasks.

Promotion rule: back to active once at least SHADOW_PROMOTE_MIN_DECISIONS
shadow decisions are reported and the lower 95 % bound of (learned − own)
success rate is above SHADOW_PROMOTE_MARGIN_POINTS; checked every cycle
slot (jobs.every_slot), audited as done by "system". Operators promote by
hand at any time (operations.promote)."""

import hashlib

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Max, Q

from qefleet.memory.models import Agent, AuditEvent

from . import offline_eval
from .core import offline
from .core.numbers import signed_number
from .models import Decision, LearningMode, LearningProfile, Strategy

SHADOW = "shadow"  # the Decision.fallback of a shadow answer
REPLICATES = 400   # bootstrap replicates: the page and the rule read the same figures
SYSTEM_ACTOR = "system"
# The estimate is cached under the report counts of the tasks it reads, so a
# report brings a fresh one; the timeout covers what moves without a report
# (the reference logs' 30-day window sliding, old tasks swept).
CACHE_SECONDS = 600


def margin():
    return settings.SHADOW_PROMOTE_MARGIN_POINTS / 100


def min_decisions():
    return settings.SHADOW_PROMOTE_MIN_DECISIONS


def decisions_in_shadow(agent, profile):
    return Decision.objects.filter(agent=agent, fallback=SHADOW, created_at__gte=profile.shadow_since)


def _mates(agent):
    return Agent.objects.filter(is_system=False, swarm=agent.swarm).exclude(pk=agent.pk) if agent.swarm else (
        Agent.objects.none())


def _reference(agent, profile):
    """The logs the reward model borrows from: the swarm mates' logged tasks
    and the agent's own from before it went into shadow."""
    return [offline_eval.logged_tasks(_mates(agent)), offline_eval.logged_tasks(Agent.objects.filter(pk=agent.pk),
                                                                                before=profile.shadow_since)]


def comparison(agent, profile, seed=0):
    """(offline.Comparison or None, refusal dict or None, reference rows):
    the learned policy against the agent's own on its reported shadow tasks."""
    rows = list(decisions_in_shadow(agent, profile).filter(execution__isnull=False).values_list(
        "task_type", "state_key", "strategy_id", "shadow_strategy_id", "execution__success"))
    reference = _reference(agent, profile)
    reference_rows = sum(len(tasks) for tasks in reference)
    strategies = list(Strategy.objects.order_by("pk"))
    position = {strategy.pk: index for index, strategy in enumerate(strategies)}
    codes = {}

    def code(task_type, state_key):
        return codes.setdefault((task_type, state_key), len(codes))

    contexts = [code(task_type, key) for task_type, key, *_ in rows]
    ref_contexts = [code(task_type, key) for tasks in reference for task_type, key in zip(tasks.task_types,
                                                                                          tasks.state_keys)]
    n_contexts = max(len(codes), 1)
    logs = offline.Logs.build(contexts, [position[row[2]] for row in rows], np.ones(len(rows)),
                              [float(row[4]) for row in rows], n_contexts, len(strategies))
    ref = offline.Logs.build(
        ref_contexts, [position[pk] for tasks in reference for pk in tasks.strategy_ids],
        np.concatenate([tasks.propensities for tasks in reference]),
        np.concatenate([tasks.success.astype(float) for tasks in reference]), n_contexts, len(strategies))
    target = np.zeros((len(rows), len(strategies)))
    target[np.arange(len(rows)), [position[row[3] or row[2]] for row in rows]] = 1.0
    try:
        return offline.compare_with_reference(logs, target, ref, replicates=REPLICATES, seed=seed), None, \
            reference_rows
    except offline.NotCovered as refused:
        return None, refused.as_dict(), reference_rows


def _cache_key(agent, profile):
    """Changes with every report the estimate reads (the agent's and its
    swarm mates' task counts), a new shadow period or catalog: one small query each."""
    counts = sorted(LearningProfile.objects.filter(Q(agent=agent) | Q(agent__in=_mates(agent))).values_list(
        "agent_id", "task_count"))
    catalog = Strategy.objects.aggregate(count=Count("pk"), last=Max("pk"))
    facts = repr((profile.shadow_since.isoformat(), counts, catalog["count"], catalog["last"]))
    return f"shadow-estimate:{agent.pk}:{hashlib.sha256(facts.encode()).hexdigest()}"


def cached_comparison(agent, profile):
    """`comparison` (about 0.2 s at a few thousand logged tasks), computed
    once per state of the logs it reads: every page view and cycle slot
    between two reports shares it."""
    key = _cache_key(agent, profile)
    found = cache.get(key)
    if found is None:
        found = comparison(agent, profile)
        cache.set(key, found, CACHE_SECONDS)
    return found


def _points(value):
    return f"{signed_number(value * 100, 1)} points"


def rule_status(reported, result):
    """(met, words): the promotion rule and where the agent stands."""
    rule = (f"Promotes to active when, over at least {min_decisions()} reported shadow decisions, the lower 95 % "
            f"bound of learned − own success rate is above {_points(margin())}")
    if reported < min_decisions():
        return False, f"{rule}; now {reported} reported ({min_decisions() - reported} to go)."
    if result is None:
        return False, f"{rule}; now the logs cannot estimate the learned policy (see above)."
    low = result.lift.low
    if low > margin():
        return True, f"{rule}; now met (lower bound {_points(low)}): it promotes at the next cycle slot."
    return False, f"{rule}; now not met: the lower bound is {_points(low)}."


def figures(agent, profile):
    """What the Shadow mode panel and the API show of an agent in shadow;
    None when it is active."""
    if not profile.in_shadow:
        return None
    counts = decisions_in_shadow(agent, profile).aggregate(
        total=Count("pk"), agree=Count("pk", filter=Q(shadow_strategy=F("strategy"))),
        reported=Count("execution"))
    result, refused, reference_rows = cached_comparison(agent, profile)
    met, words = rule_status(counts["reported"], result)
    return {
        "since": profile.shadow_since.isoformat(),
        "decisions": counts["total"],
        "reported": counts["reported"],
        "agreement": counts["agree"] / counts["total"] if counts["total"] else None,
        "estimator": "doubly robust",
        "reference_tasks": reference_rows,
        "own": result.logged.as_dict() if result else None,
        "learned": result.target.as_dict() if result else None,
        "lift": result.lift.as_dict() if result else None,
        "refused": refused,
        "margin": margin(),
        "min_decisions": min_decisions(),
        "promotes": met,
        "rule_words": words,
    }


def record_promotion(agent, profile, actor, reason, shown, request=None):
    """Active again (the caller holds the profile's lock), audited with the
    figures the decision was made on; False when it already was active."""
    if not profile.set_mode(LearningMode.ACTIVE):
        return False
    lift = (shown or {}).get("lift") or {}
    AuditEvent.record(actor, "promote_shadow", f"agent:{agent.agent_id}", request, reason=reason,
                      decisions=(shown or {}).get("reported"), agreement=(shown or {}).get("agreement"),
                      lift=lift.get("value"), lift_low=lift.get("low"))
    return True


def promote_ready():
    """The scheduled check: promote every agent in shadow that meets the rule."""
    promoted = []
    for profile in LearningProfile.objects.filter(mode=LearningMode.SHADOW).select_related("agent"):
        shown = figures(profile.agent, profile)
        if not shown["promotes"]:
            continue
        with transaction.atomic():
            locked = LearningProfile.locked(profile.agent)
            if locked.in_shadow and record_promotion(profile.agent, locked, SYSTEM_ACTOR, shown["rule_words"], shown):
                promoted.append(profile.agent.agent_id)
    return {"shadow_promoted": promoted}
