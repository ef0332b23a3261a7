"""The entry points: generate() a history, has_history(), clear_history()."""

import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from learning import versions
from learning.harness.simulator import STRATEGIES
from learning.models import (
    ABTest,
    Alert,
    AppliedStrategy,
    Decision,
    Execution,
    FailurePattern,
    ImprovementCycle,
    LearnedPattern,
    LearningProfile,
    LiveVersion,
    Mitigation,
    PatternImport,
    QEntry,
    Rollback,
    Safeguard,
    SharedPattern,
    Snapshot,
    StateVersion,
    Strategy,
)
from qefleet.memory.fleet import register_demo_fleet
from qefleet.memory.models import Agent, Event, Pattern, PerformanceMetric

from .constants import MAX_DAYS
from .fleet import demo_fleet, operators_at_work, plan, quarantine_by_hand, share_imports
from .writer import Writer


class HistoryExists(Exception):
    pass


def has_history():
    return Execution.objects.exists() or Snapshot.objects.exists()


def clear_history(agents):
    """Delete the learning history of `agents`, with their events, metrics and
    pattern copies, and the fleet's scheduler alerts. The audit trail is
    append-only, so its records of earlier runs stay."""
    ids = [agent.pk for agent in agents]
    names = [agent.agent_id for agent in agents]
    with transaction.atomic():
        Execution.objects.filter(agent_id__in=ids).delete()
        Decision.objects.filter(agent_id__in=ids).delete()
        PatternImport.objects.filter(Q(agent_id__in=ids) | Q(shared__source_id__in=ids)).delete()
        SharedPattern.objects.filter(source_id__in=ids).delete()
        for model in (ABTest, Mitigation, ImprovementCycle, Snapshot, QEntry, LearnedPattern, FailurePattern,
                      AppliedStrategy, Rollback, Alert, Safeguard, LiveVersion, LearningProfile, StateVersion):
            model.objects.filter(agent_id__in=ids).delete()
        Alert.objects.filter(agent__isnull=True, kind="schedule:stale").delete()
        for model in (Event, Pattern):
            model.with_expired.filter(owner_id__in=names).delete()
        PerformanceMetric.objects.filter(owner_id__in=names).delete()


def generate(days=90, events=1_000_000, samples=200_000, seed=1, replace=False, say=print):
    """Fill the database with a simulated past of the demo fleet (see the
    module docstring); returns {table: rows written}."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS} (older history is pruned).")
    if events < 0 or samples < 0:
        raise ValueError("events and samples must not be negative.")
    started = time.perf_counter()
    register_demo_fleet()
    agents = {agent.agent_id: agent for agent in Agent.objects.filter(agent_id__in=[a for a, _ in demo_fleet()])}
    if has_history():
        if not replace:
            raise HistoryExists("The database already has learning history (executions or snapshots).")
        clear_history(agents.values())
        say(f"  deleted the demo agents' history in {time.perf_counter() - started:.1f} s")
    strategies = {item.name: item for item in Strategy.objects.filter(name__in=STRATEGIES)}
    missing = sorted(set(STRATEGIES) - set(strategies))
    if missing:
        raise ValueError(f"The strategy catalog lacks {', '.join(missing)}.")
    world, pasts = plan(days, events, samples, seed, timezone.now().timestamp())
    simulating = time.perf_counter()
    for past in pasts:
        past.run()
    say(f"  simulated {len(pasts)} agents over {days} days: {sum(past.n for past in pasts):,} tasks in "
        f"{time.perf_counter() - simulating:.1f} s")
    alerts, audit = operators_at_work(world, pasts)
    quarantine_by_hand(world, pasts, audit)
    imports = share_imports(world, pasts)
    writer = Writer(world, pasts, agents, strategies, events, say)
    counts = writer.write(alerts, audit, imports)
    for past in pasts:
        profile = LearningProfile.objects.with_live_version().get(agent=agents[past.agent_id])
        if versions.checksum(versions.learned_state(profile.agent, profile)) != profile.live_version.checksum:
            raise RuntimeError(f"{past.agent_id}: the live state does not match its live version.")
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts
