"""Cross-agent pattern sharing (seed section 5): publish, import, probation,
quarantine, and the fleet learning metrics.

Every cycle slot `share_and_import` runs:

1. publish: an agent's `task_type:strategy` pattern is shared with its swarm
   once it is trustworthy (see `qualifies`). The SharedPattern row is the
   record (served as `phase2/learning/shared/patterns/{id}`); the source's
   copy in the memory patterns table is raised to swarm access so the swarm
   can query it there too; a `learning:pattern_shared` event names the
   agents that will import it. Published patterns' numbers are refreshed
   every slot.
2. import: every other agent of the swarm takes in the shared patterns it
   does not know, on probation at a discounted confidence. Its own tasks
   decide: after CONFIRM_USES of them with that strategy an import becomes
   active (full shared confidence) or rejected.
3. an import informs recommendations only where the agent has nothing of its
   own (`imported_choice`, a fallback after the agent's own and nearest
   states and its applied strategy).

A rollback quarantines what the rolled-back agent shared since the version
it returned to (`quarantine_since`): that knowledge came from the state the
safeguard just rejected.

Writes are short transactions (one per pattern or per batch of imports) so
agents' requests never wait on this job; every step is idempotent, so a
killed and re-run slot creates nothing twice (the unique constraints back
this up under concurrent runs).
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.utils import timezone

from qefleet.memory import store as memory_store
from qefleet.memory.models import AccessLevel, Agent, AgentStatus, Event

from .core import engine
from .models import (
    ImportStatus,
    LearnedPattern,
    LearningProfile,
    PatternImport,
    SharedPattern,
    SharedPatternStatus,
)
from .tracker import current_improvements

# The seed shares patterns with confidence > 0.8. Confidence (engine.
# pattern_confidence) is already capped by the 95 % Wilson lower bound and
# ramps with use, so today it alone implies a lower bound > 0.8 on >= 32
# tasks; the explicit bars keep that promise if the confidence rule changes
# or a row was written by other means.
SHARE_CONFIDENCE = 0.8
SHARE_LOWER_BOUND = 0.7
SHARE_MIN_USES = 30
# An import starts at half the source's confidence: it is someone else's
# evidence, about an agent that may work on different code.
PROBATION_DISCOUNT = 0.5
# The importer's own tasks with the strategy that settle probation, and how
# far below the source's success rate its own may be and still confirm.
CONFIRM_USES = 10
# How long a quarantined pattern stays unshared (its source may relearn it).
QUARANTINE_DAYS = 7
CONFIRM_TOLERANCE = 0.15

LIVE_IMPORTS = (ImportStatus.ACTIVE, ImportStatus.PROBATION)


def qualifies(pattern):
    """Whether a LearnedPattern is trustworthy enough to share: (bool, lower bound)."""
    lower_bound = engine.wilson_lower_bound(pattern.successes, pattern.uses)
    ok = (pattern.confidence > SHARE_CONFIDENCE and pattern.uses >= SHARE_MIN_USES
          and lower_bound >= SHARE_LOWER_BOUND)
    return ok, lower_bound


def _importers_by_swarm(swarms):
    """{swarm: [agent]} of the agents that import what their swarm shares:
    not terminated, learning on and imports on (an agent without a learning
    profile yet has the defaults, both on: a newcomer bootstraps from its swarm)."""
    eligible = Q(learning__isnull=True) | Q(learning__enabled=True, learning__imports_patterns=True)
    found = {}
    agents = (Agent.objects.filter(swarm__in=swarms).exclude(status=AgentStatus.TERMINATED)
              .filter(eligible).order_by("agent_id"))
    for agent in agents:
        found.setdefault(agent.swarm, []).append(agent)
    return found


def _known_patterns(agent_ids):
    """(agent, task type, strategy) an agent has enough evidence of itself not to import."""
    return set(LearnedPattern.objects.filter(agent_id__in=agent_ids, uses__gte=SHARE_MIN_USES)
               .values_list("agent_id", "task_type", "strategy_id"))


def _targets(shared, members, known, imported):
    return [agent for agent in members
            if agent.pk != shared.source_id and (agent.pk, shared.pk) not in imported
            and (agent.pk, shared.task_type, shared.strategy_id) not in known]


def _memory_copy(shared, access_level):
    """The source's own copy in the patterns table, at `access_level`, tagged
    with the shared record so a reader of the table can find it."""
    metadata = {"success_rate": round(shared.success_rate, 4), "lower_bound": round(shared.lower_bound, 4),
                "shared_id": str(shared.pk), "source_version": shared.source_version, "status": shared.status}
    memory_store.upsert_pattern(shared.source, shared.key, shared.confidence, metadata, access_level=access_level,
                                usage_count=shared.uses)


def _numbers(pattern, lower_bound):
    return {"confidence": pattern.confidence, "success_rate": pattern.success_rate, "lower_bound": lower_bound,
            "uses": pattern.uses}


def publish(now=None):
    """Share every qualifying pattern not shared yet, and refresh the numbers
    of the active shared ones: {"published": n, "refreshed": n}.

    Only agents with learning on publish (a frozen or rolled-back agent's
    state is under review) and only agents in a swarm (no one else could
    read it). A pattern quarantined in the last QUARANTINE_DAYS is not
    shared again meanwhile, or a quarantine would last one slot."""
    now = now or timezone.now()
    active = {(item.source_id, item.task_type, item.strategy_id): item
              for item in SharedPattern.objects.filter(status=SharedPatternStatus.ACTIVE)
              .select_related("source", "strategy")}
    quarantined = set(SharedPattern.objects.filter(
        status=SharedPatternStatus.QUARANTINED, quarantined_at__gte=now - timedelta(days=QUARANTINE_DAYS))
        .values_list("source_id", "task_type", "strategy_id"))
    sources = {source_id for source_id, _, _ in active}
    patterns = (LearnedPattern.objects.filter(agent__learning__enabled=True).exclude(agent__swarm="")
                .filter(Q(confidence__gt=SHARE_CONFIDENCE, uses__gte=SHARE_MIN_USES) | Q(agent_id__in=sources))
                .select_related("agent", "agent__learning__live_version", "strategy")
                .defer("agent__learning__live_version__payload").order_by("pk"))
    published = refreshed = 0
    new = []
    for pattern in patterns:
        shared = active.get((pattern.agent_id, pattern.task_type, pattern.strategy_id))
        ok, lower_bound = qualifies(pattern)
        if shared is not None:
            refreshed += _refresh(shared, pattern, lower_bound)
        elif ok and (pattern.agent_id, pattern.task_type, pattern.strategy_id) not in quarantined:
            new.append((pattern, lower_bound))
    if new:
        members = _importers_by_swarm({pattern.agent.swarm for pattern, _ in new})
        known = _known_patterns([agent.pk for agents in members.values() for agent in agents])
        for pattern, lower_bound in new:
            published += _publish_one(pattern, lower_bound, members.get(pattern.agent.swarm, []), known, now)
    return {"published": published, "refreshed": refreshed}


def _publish_one(pattern, lower_bound, members, known, now):
    live = pattern.agent.learning.live_version
    shared = SharedPattern(source=pattern.agent, task_type=pattern.task_type, strategy=pattern.strategy,
                           source_version=live.label if live else "", published_at=now,
                           **_numbers(pattern, lower_bound))
    targets = _targets(shared, members, known, imported=set())
    try:
        with transaction.atomic():
            shared.save(force_insert=True)
            _memory_copy(shared, AccessLevel.SWARM)
            memory_store.create_owned(shared.source, Event, None, None, type="learning:pattern_shared", payload={
                "pattern": shared.key, "source": shared.source.agent_id, "shared_id": str(shared.pk),
                "confidence": round(shared.confidence, 4), "success_rate": round(shared.success_rate, 4),
                "source_version": shared.source_version, "targets": [agent.agent_id for agent in targets],
            })
    except IntegrityError:
        return 0  # a concurrent run published it first
    return 1


def _refresh(shared, pattern, lower_bound):
    """Bring a shared pattern's numbers up to its source's; 1 when they changed."""
    numbers = _numbers(pattern, lower_bound)
    if all(getattr(shared, name) == value for name, value in numbers.items()):
        return 0
    with transaction.atomic():
        if not SharedPattern.objects.filter(pk=shared.pk, status=SharedPatternStatus.ACTIVE).update(**numbers):
            return 0  # quarantined meanwhile
        for name, value in numbers.items():
            setattr(shared, name, value)
        _memory_copy(shared, AccessLevel.SWARM)
    return 1


def import_shared(now=None):
    """Import the active shared patterns each swarm member does not know yet,
    then settle probation: {"imported": n, "confirmed": n, "rejected": n}.

    A shared pattern whose refreshed confidence fell to the bar or below is
    no longer imported (the design's "filter: confidence > 0.8"); imports taken
    earlier stay and are judged by the importer's own tasks."""
    now = now or timezone.now()
    shared_patterns = list(SharedPattern.objects.filter(status=SharedPatternStatus.ACTIVE,
                                                        confidence__gt=SHARE_CONFIDENCE)
                           .exclude(source__swarm="").select_related("source").order_by("published_at", "pk"))
    imported = 0
    if shared_patterns:
        members = _importers_by_swarm({shared.source.swarm for shared in shared_patterns})
        known = _known_patterns([agent.pk for agents in members.values() for agent in agents])
        taken = set(PatternImport.objects.filter(shared__status=SharedPatternStatus.ACTIVE)
                    .values_list("agent_id", "shared_id"))
        for shared in shared_patterns:
            targets = _targets(shared, members.get(shared.source.swarm, []), known, taken)
            if targets:
                # One INSERT; ignore_conflicts leaves a concurrent run's rows alone.
                PatternImport.objects.bulk_create(
                    [PatternImport(agent=agent, shared=shared, confidence=shared.confidence * PROBATION_DISCOUNT,
                                   imported_at=now) for agent in targets], ignore_conflicts=True)
                imported += len(targets)
    return {"imported": imported, **decide_probation(now)}


def decide_probation(now=None):
    """Confirm or reject imports whose importer has now used the strategy on
    the task type CONFIRM_USES times: {"confirmed": n, "rejected": n}."""
    now = now or timezone.now()
    pending = list(PatternImport.objects.filter(status=ImportStatus.PROBATION).select_related("shared"))
    own = {(row.agent_id, row.task_type, row.strategy_id): row for row in LearnedPattern.objects.filter(
        agent_id__in={item.agent_id for item in pending}, uses__gte=CONFIRM_USES)}
    counts = {"confirmed": 0, "rejected": 0}
    for item in pending:
        mine = own.get((item.agent_id, item.shared.task_type, item.shared.strategy_id))
        if mine is None:
            continue
        if mine.success_rate >= item.shared.success_rate - CONFIRM_TOLERANCE:
            change, outcome = {"status": ImportStatus.ACTIVE, "confidence": item.shared.confidence}, "confirmed"
        else:
            change, outcome = {"status": ImportStatus.REJECTED}, "rejected"
        # Conditional on probation: a quarantine meanwhile wins.
        counts[outcome] += PatternImport.objects.filter(pk=item.pk, status=ImportStatus.PROBATION).update(
            decided_at=now, **change)
    return counts


def share_and_import(now=None):
    """The scheduled job (every cycle slot): publish, refresh, import, decide."""
    now = now or timezone.now()
    return {**publish(now), **import_shared(now)}


# --- quarantine --------------------------------------------------------------------


def quarantine(shared_patterns, reason, now=None):
    """Quarantine active shared patterns (a queryset) and every import of
    them; withdraw the sources' patterns-table copies from the swarm. Returns
    the patterns quarantined. They stay readable, with their status and
    reason, for operators."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(shared_patterns.filter(status=SharedPatternStatus.ACTIVE).select_related("source", "strategy"))
        ids = [shared.pk for shared in rows]
        SharedPattern.objects.filter(pk__in=ids).update(status=SharedPatternStatus.QUARANTINED, quarantined_at=now,
                                                        quarantine_reason=reason)
        PatternImport.objects.filter(shared_id__in=ids).update(status=ImportStatus.QUARANTINED)
        for shared in rows:
            shared.status = SharedPatternStatus.QUARANTINED
            _memory_copy(shared, AccessLevel.PRIVATE)
    return rows


def quarantine_since(agent, version, reason):
    """After `agent` was rolled back to `version` (a StateVersion): quarantine
    what it shared after that version was captured, in its importers too.
    Runs inside the rollback's transaction; returns the count."""
    return len(quarantine(SharedPattern.objects.filter(source=agent, published_at__gt=version.created_at), reason))


# --- recommendations -----------------------------------------------------------------


def imported_choice(agent, task_type, strategies):
    """(index into `strategies`, PatternImport) of the agent's best live import
    for `task_type` (active before probation, then highest confidence), or
    None. One query on the (agent, shared) index; an import whose strategy
    is not in `strategies` (no longer active) is passed over."""
    index = {strategy.pk: position for position, strategy in enumerate(strategies)}
    imports = (PatternImport.objects.filter(agent=agent, status__in=LIVE_IMPORTS, shared__task_type=task_type)
               .select_related("shared__source")
               .order_by(Case(When(status=ImportStatus.ACTIVE, then=Value(0)), default=Value(1),
                              output_field=IntegerField()), "-confidence", "pk"))
    for item in imports:
        if item.shared.strategy_id in index:
            return index[item.shared.strategy_id], item
    return None


# --- fleet learning metrics ----------------------------------------------------------


def fleet_metrics(profiles=None, improvements=None):
    """The design's fleet learning metrics, live (README, "Fleet learning metrics"),
    in three queries whatever the fleet's size (two when `profiles`, every
    learning profile, are given; one when `improvements` too, the
    {agent pk: improvement} of tracker.current_improvements(profiles), which
    the fleet page shows beside them):

    - patterns_shared: active shared patterns (quarantined ones excluded).
    - avg_patterns_per_agent: patterns_shared / learning agents (agents with a
      learning profile); the design's 247 shared over 17 agents is its 14.5.
    - cross_agent_imports: imports in use, on probation or active (rejected
      and quarantined ones excluded).
    - fleet_improvement_rate: the mean over agents with a baseline of their
      current improvement against it (tracker.current_improvements; 0.124 =
      +12.4 %), or None when no agent has a baseline yet.
    - learning_agents, agents_with_baseline: the denominators.

    The learning speed-up is not a live figure: the simulator measures it
    (learning.harness.sharing_sim.measure_speedup, reported by the benchmark).
    """
    profiles = list(LearningProfile.objects.all() if profiles is None else profiles)
    # One pass over the shared patterns joined to their imports.
    counts = SharedPattern.objects.aggregate(
        shared=Count("pk", distinct=True, filter=Q(status=SharedPatternStatus.ACTIVE)),
        imports=Count("imports", filter=Q(imports__status__in=LIVE_IMPORTS)))
    if improvements is None:
        improvements = current_improvements(profiles)
    improvements = list(improvements.values())
    return {
        "patterns_shared": counts["shared"],
        "avg_patterns_per_agent": counts["shared"] / len(profiles) if profiles else 0.0,
        "cross_agent_imports": counts["imports"],
        "fleet_improvement_rate": sum(improvements) / len(improvements) if improvements else None,
        "learning_agents": len(profiles),
        "agents_with_baseline": len(improvements),
    }
