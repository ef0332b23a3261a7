"""One task's learning: the recommendation and the execution report.

An execution report (and late feedback) runs in one transaction. A
recommendation runs in none: its one write, the Decision, is a single
statement, so on SQLite it holds the database's only write lock for that
INSERT, not while it reads and computes the policy (under IMMEDIATE an
atomic block takes the lock at BEGIN, and every other worker's write waits
for it). Each of its reads sees the rows committed when it runs, as
PostgreSQL's READ COMMITTED reads did inside the transaction. Per-task work
reads and writes a bounded number of rows (one Q row, one state's Q
entries, one pattern, the last window of tasks), so it does not grow with
the learned state.
"""

import hashlib
import json
import threading
from contextlib import contextmanager

import numpy as np
from django.db import transaction
from django.utils import timezone

from qefleet.memory import rows
from qefleet.memory import store as memory_store
from qefleet.memory.errors import Conflict, Invalid, NotFound, Unprocessable
from qefleet.memory.models import PerformanceMetric

from . import abtests, mitigations, overhead, safeguard, sharing, tracker, versions
from .core import engine, scoring
from .events import emit
from .models import (
    AppliedStrategy,
    Decision,
    Execution,
    FailurePattern,
    LearnedPattern,
    LearningProfile,
    PooledValue,
    QEntry,
    Safeguard,
    Strategy,
    VersionReason,
)

_local = threading.local()


def rng():
    """A random generator per thread (numpy generators are not thread-safe)."""
    if not hasattr(_local, "rng"):
        _local.rng = np.random.default_rng()
    return _local.rng


@contextmanager
def seeded_exploration(seed):
    """Exploration draws of this thread from a generator seeded with `seed`,
    for harnesses that must repeat a run decision for decision (production
    never seeds). In-process requests (Django's test client) run in the
    calling thread, so they draw from it too; the thread's unseeded
    generator is back afterwards."""
    previous = getattr(_local, "rng", None)
    _local.rng = np.random.default_rng(seed)
    try:
        yield
    finally:
        if previous is None:
            del _local.rng
        else:
            _local.rng = previous


# A task's reads and writes go through qefleet.memory.rows: the rows the
# ORM would read and write, without compiling each statement every time.
# With its live version (for policy_version; not its payload) in the same statement.
PROFILE = rows.Query(LearningProfile, "agent", related="live_version", related_defer=("payload",))
LOCKED_PROFILE = rows.Query(LearningProfile, "agent", lock=True)
SAFEGUARD = rows.Query(Safeguard, "agent")
APPLIED = rows.Query(AppliedStrategy, "agent", "task_type")
DECISION = rows.Query(Decision, "id", "agent", extra={
    "reported_id": f"(SELECT E.id FROM {Execution._meta.db_table} E WHERE E.decision_id = T.id)"})
EXECUTION_BY_KEY = rows.Query(Execution, "agent", "idempotency_key")
Q_ENTRIES = rows.Query(QEntry, "agent", "task_type", "state_key__in")
POOLED = rows.Query(PooledValue, "swarm", "task_type", "abstract_key__in")
PATTERNS_OF_TYPE = rows.Query(LearnedPattern, "agent", "task_type")
FAILURE_PATTERNS = rows.Query(FailurePattern, "agent", "task_type", "failure_class__in")


def _profile(agent, query, live_version=True):
    """The agent's profile (created if missing), with its live version
    (without the payload) read now or, with live_version=False, on first
    access."""
    profile = query.first(agent)
    if profile is None:
        LearningProfile.objects.get_or_create(agent=agent)
        profile = query.first(agent)
    profile.agent = agent
    if live_version:
        versions.live_version(profile)
    return profile


def profile_for(agent):
    return _profile(agent, PROFILE)


def task_state(task):
    """(state vector, state key) of a task as the agent described it."""
    vector = engine.state_vector(
        task.complexity, len(task.required_capabilities), task.previous_attempts, task.available_resources,
        task.time_constraint_ms,
    )
    return vector, engine.state_key(vector)


# --- recommendation ----------------------------------------------------------------


def pool_of(agent):
    """The pool an agent's outcomes go to and its recommendations read: its
    swarm's, or its own when it has no swarm."""
    return agent.swarm or f"agent:{agent.pk}"


def _levels(agent, task_type, vector, key, strategies, with_pool):
    """(values, visits) per action: the agent's own Q entries of this state,
    and (with_pool) the swarm's pooled values per level, finest first (the
    state's bucket, then the task type)."""
    index = {strategy.pk: position for position, strategy in enumerate(strategies)}

    def level(entries, value_of, visits_of):
        values, visits = np.zeros(len(strategies)), np.zeros(len(strategies), dtype=int)
        for entry in entries:
            if entry.strategy_id in index:
                values[index[entry.strategy_id]] = value_of(entry)
                visits[index[entry.strategy_id]] = visits_of(entry)
        return values, visits

    own = level(Q_ENTRIES(agent, task_type, [key]), lambda entry: entry.q_value, lambda entry: entry.visits)
    pooled = []
    if with_pool:
        pooled_rows = POOLED(pool_of(agent), task_type, engine.abstract_keys(vector))
        for abstract_key in engine.abstract_keys(vector):
            # A pooled value stands for its visits since it last restarted.
            pooled.append(level([row for row in pooled_rows if row.abstract_key == abstract_key],
                                lambda row: row.value, lambda row: row.current_visits))
    return own, pooled


def _known_values(agent, profile, task_type, vector, key, strategies):
    """Q-values and visits to choose by, how they were found ("" this
    state's own, blended with the swarm's; "pooled" or "pooled-type" the
    swarm's only; "nearest"; or None: nothing known), the state they came
    from for "nearest", and the visits of the cell the choice is made in
    (for the exploration rate)."""
    own, pooled = _levels(agent, task_type, vector, key, strategies, profile.imports_patterns)
    own_visits = int(own[1].sum())
    pooled_visits = [int(visits.sum()) for _, visits in pooled]
    if own_visits or any(pooled_visits):
        q, visits = engine.backed_off(own, pooled)
        how = "" if own_visits else ("pooled" if pooled_visits[0] else "pooled-type")
        # The cell: the state's bucket in the swarm, or the state itself for an agent that learns alone.
        return q, visits, how, None, pooled_visits[0] if pooled_visits else own_visits
    neighbours = engine.neighbour_keys(vector)
    by_key = {}
    for entry in Q_ENTRIES(agent, task_type, [neighbour for _, neighbour in neighbours]):
        by_key.setdefault(entry.state_key, []).append(entry)
    index = {strategy.pk: position for position, strategy in enumerate(strategies)}
    q, visits = np.zeros(len(strategies)), np.zeros(len(strategies), dtype=int)
    for _, neighbour in neighbours:
        if neighbour in by_key:
            for entry in by_key[neighbour]:
                if entry.strategy_id in index:
                    q[index[entry.strategy_id]] = entry.q_value
                    visits[index[entry.strategy_id]] = entry.visits
            return q, visits, "nearest", neighbour, 0
    return q, visits, None, None, 0


def _policy(agent, task_type, strategies, q, learned, visits):
    """The greedy choices before exploration: (indexes, how, detail, mitigated_for).

    In order: the strategy applied for the task type (by an operator or an
    A/B test), the best learned values (ranked by engine.optimistic), a
    pattern imported from the swarm,
    the catalog default; then the task type's active mitigations adjust it.
    """
    index = {strategy.pk: position for position, strategy in enumerate(strategies)}
    applied = APPLIED.first(agent, task_type)
    if applied is not None and applied.strategy_id in index:
        greedy, how, detail = (index[applied.strategy_id],), "applied", applied.source
    elif learned is not None:
        ranked = engine.optimistic(q, visits)
        greedy, how, detail = tuple(int(i) for i in np.flatnonzero(ranked == ranked.max())), learned, None
    elif (imported := sharing.imported_choice(agent, task_type, strategies)) is not None:
        greedy, how, detail = (imported[0],), "shared", imported[1]
    else:
        greedy, how, detail = (index[Strategy.default().pk],), "default", None
    chosen, mitigated_for = greedy[0], []
    adjustments = mitigations.active_adjustments(agent, task_type)
    if adjustments:
        actions = [(strategy.parallelization, strategy.retry_policy) for strategy in strategies]
        for failure_class, adjustment, names in adjustments:
            implicated = {position for position, strategy in enumerate(strategies) if strategy.name in names}
            adjusted = engine.mitigated_choice(adjustment, actions, chosen, q, implicated, visits)
            if adjusted != chosen:
                chosen = adjusted
                mitigated_for.append(failure_class)
    return ((chosen,) if mitigated_for else greedy), how, detail, mitigated_for


def _reasoning(strategies, choice, epsilon, q, visits, how, detail, source_key, mitigated_for):
    strategy = strategies[choice.index]
    if choice.explored:
        return (f"Exploring: picked {strategy.name} at random (exploration rate {epsilon:.3f}) "
                "to keep learning about the other strategies.")
    position = choice.index
    if mitigated_for:
        return (f"Mitigating frequent {' and '.join(mitigated_for)} failures of the usual choice in this task "
                f"type: using {strategy.name} instead.")
    if how == "applied":
        origin = f"A/B test {detail.split(':', 1)[1]}" if detail.startswith("abtest:") else detail or "an operator"
        return f"Using {strategy.name}, the strategy applied for this task type (by {origin})."
    if how == "":
        return (f"Exploiting: {strategy.name} ranks first in this state "
                f"({q[position]:.3f}, its own value blended with its swarm's, over {visits[position]} visits; "
                "a value on fewer visits ranks a little higher).")
    if how in ("pooled", "pooled-type"):
        level = "tasks like this one" if how == "pooled" else "this task type"
        return (f"This state is new to this agent; its swarm's outcomes on {level} favour {strategy.name} "
                f"(value {q[position]:.3f} on {visits[position]} visits since the swarm last saw it change).")
    if how == "nearest":
        return (f"This state is new; the nearest visited state ({source_key}) favours {strategy.name} "
                f"(Q {q[position]:.3f} over {visits[position]} visits).")
    if how == "shared":
        return (f"Nothing is learned for this task type yet; {detail.shared.source.agent_id} shared that "
                f"{strategy.name} works for it (imported, {detail.status}, confidence {detail.confidence:.2f}).")
    return f"Nothing is learned for this task type yet; using the catalog default, {strategy.name}."


def _describe(strategy, strategies, index, q, visits):
    order = sorted((i for i in range(len(strategies)) if i != index), key=lambda i: -q[i])
    return {
        "strategy": strategy.name,
        "parallelization": strategy.parallelization,
        "retry_policy": strategy.retry_policy,
        "action_key": strategy.action_key,
        "confidence": round(engine.confidence(q[index], int(visits[index])), 4),
        "expected_improvement": round(engine.expected_improvement(q[index], q, visits), 4),
        "alternatives": [
            {"strategy": strategies[i].name, "action_key": strategies[i].action_key,
             "confidence": round(engine.confidence(q[i], int(visits[i])), 4)}
            for i in order[:3]
        ],
    }


def _own_choice(strategies, own_strategy):
    """The position of the strategy an agent in shadow says it runs (the
    catalog default when it says none)."""
    if own_strategy is None:
        return strategies.index(Strategy.default())
    found = next((position for position, strategy in enumerate(strategies) if strategy.name == own_strategy), None)
    if found is None:
        raise Invalid(f"Unknown strategy {own_strategy!r}: own_strategy names an active catalog strategy.",
                      "own_strategy")
    return found


def _shadow_answer(agent, profile, task, key, strategies, q, visits, learned, own_strategy):
    """In shadow: the agent's own choice is what runs (propensity 1), the
    learned policy's greedy choice is logged beside it, never returned."""
    own = _own_choice(strategies, own_strategy)
    greedy, _how, _detail, _mitigated = _policy(agent, task.type, strategies, q, learned, visits)
    would = greedy[0] if own not in greedy else own
    strategy = strategies[own]
    decision = rows.insert(Decision(
        agent=agent, task_id=task.id, task_type=task.type, state_key=key, strategy=strategy, explored=False,
        propensity=1.0, epsilon=0.0, q_value=float(q[own]), fallback="shadow", shadow_strategy=strategies[would],
    ))
    whose = "your own choice" if own_strategy is not None else "the catalog default"
    return {
        "decision_id": str(decision.pk),
        **_describe(strategy, strategies, own, q, visits),
        "state_key": key,
        "reasoning": (f"Shadow mode: running {whose}, {strategy.name}. The server learns from the report and "
                      "records what its learned policy would have chosen, until it is promoted to active."),
        "explored": False,
        "propensity": 1.0,
        "policy_version": profile.policy_version,
        "mode": "shadow",
    }


def recommend(agent, task, own_strategy=None):
    """Choose a strategy for `task`, store the Decision and describe it.

    A task covered by a running A/B test gets its arm (drawn with the test's
    weights, the same arm for every request about the same task id);
    otherwise the policy's choice, explored with probability epsilon. An
    agent in shadow gets `own_strategy` (or the default) back: see
    learning/shadow.py."""
    profile = profile_for(agent)
    strategies = Strategy.catalog()
    if not strategies:
        raise Conflict("The strategy catalog has no active strategy.")
    vector, key = task_state(task)
    q, visits, learned, source_key, cell_visits = _known_values(agent, profile, task.type, vector, key, strategies)
    if profile.in_shadow:
        body = _shadow_answer(agent, profile, task, key, strategies, q, visits, learned, own_strategy)
        overhead.complete("recommendation")
        return body
    if own_strategy is not None:
        _own_choice(strategies, own_strategy)  # a name that is no strategy is a bad request in any mode
    arm = abtests.assigned_arm(agent, task.type, task.id) if profile.enabled else None
    positions = {strategy.pk: position for position, strategy in enumerate(strategies)}
    if arm is not None and arm.strategy_id in positions:
        choice = engine.Choice(positions[arm.strategy_id], False, arm.share, ())
        epsilon, how = 0.0, "abtest"
        reasoning = (f"A/B test {arm.test_id} ({arm.test.name}) covers this task type: "
                     f"this task runs its {arm.role} arm, {strategies[choice.index].name}.")
    else:
        greedy, how, detail, mitigated_for = _policy(agent, task.type, strategies, q, learned, visits)
        epsilon = engine.cell_epsilon(profile.exploration_rate, cell_visits,
                                      profile.min_exploration_rate) if profile.enabled else 0.0
        choice = engine.choose(q, epsilon, rng(), greedy)
        reasoning = _reasoning(strategies, choice, epsilon, q, visits, how, detail, source_key, mitigated_for)
        if arm is not None and arm.strategy_id is None:
            # The control arm is the agent's own policy: chosen as usual, with
            # the probability of landing in this arm folded in.
            choice = engine.Choice(choice.index, choice.explored, arm.share * choice.propensity, choice.greedy)
            reasoning = (f"A/B test {arm.test_id} ({arm.test.name}) covers this task type; this task runs its "
                         f"control arm, the learned policy. {reasoning}")
        else:
            arm = None
    strategy = strategies[choice.index]
    decision = rows.insert(Decision(
        agent=agent, task_id=task.id, task_type=task.type, state_key=key, strategy=strategy,
        explored=choice.explored, propensity=choice.propensity, epsilon=epsilon,
        q_value=float(q[choice.index]), fallback=how,
        abtest_arm=arm,
    ))
    body = {
        "decision_id": str(decision.pk),
        **_describe(strategy, strategies, choice.index, q, visits),
        "state_key": key,
        "reasoning": reasoning,
        "explored": choice.explored,
        "propensity": round(choice.propensity, 6),
        "policy_version": profile.policy_version,
        "mode": "active",
    }
    if arm is not None:
        body["abtest"] = {"id": arm.test_id, "arm": arm.role}
    overhead.complete("recommendation")
    return body


# --- execution report ----------------------------------------------------------------


def request_digest(payload):
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _strategy_of(report, decision):
    if decision is not None:
        return Strategy.by_id(decision.strategy_id)
    action = report.action
    if action is None:
        raise Invalid("Send decision_id, or the action you took.", "action")
    strategy = Strategy.objects.filter(name=action.strategy).first()
    if strategy is None:
        raise Invalid(f"Unknown strategy {action.strategy!r}.", "action.strategy")
    if (abs(strategy.parallelization - action.parallelization) > 1e-9
            or strategy.retry_policy != action.retry_policy):
        raise Invalid(
            f"{strategy.name} runs with parallelization {strategy.parallelization} and retry policy "
            f"{strategy.retry_policy}; a variant is a separate catalog entry.", "action",
        )
    return strategy


def _next_state_key(report):
    if report.next_task is not None:
        return task_state(report.next_task)[1]
    task = report.task
    attempts, resources = engine.next_attempt(task.previous_attempts, task.available_resources)
    vector = engine.state_vector(task.complexity, len(task.required_capabilities), attempts, resources,
                                 task.time_constraint_ms)
    return engine.state_key(vector)


def _update_patterns(agent, task_type, strategy, success, of_type):
    """Count the task in its pattern, one of `of_type` (the agent's patterns
    of the task type, which gains it when it is new)."""
    pattern = next((item for item in of_type if item.strategy_id == strategy.pk), None)
    created = pattern is None
    if created:
        pattern = LearnedPattern(agent=agent, task_type=task_type)
        of_type.append(pattern)
    pattern.strategy = strategy  # already loaded; spares a query for the key
    pattern.uses += 1
    pattern.successes += int(success)
    pattern.confidence = engine.pattern_confidence(pattern.uses, pattern.successes)
    pattern.last_used_at = timezone.now()
    if created:
        rows.insert(pattern)
    else:
        rows.update(pattern, ("uses", "successes", "confidence", "last_used_at"))
    memory_store.upsert_pattern(
        agent, pattern.key, pattern.confidence, {"success_rate": round(pattern.success_rate, 4)},
        usage_count=pattern.uses,
    )
    if created:
        emit(agent, "learning:pattern_discovered", {"pattern": pattern.key, "task_type": task_type})
    return pattern


def failure_classes(errors):
    return sorted({engine.failure_class(error.type, error.message) for error in errors}) or ["other"]


def _update_failures(agent, task_type, classes, message, of_type):
    tasks_of_type = sum(pattern.uses for pattern in of_type) or 1
    now = timezone.now()
    known = {failure.failure_class: failure for failure in FAILURE_PATTERNS(agent, task_type, classes)}
    for name in classes:
        failure = known.get(name) or FailurePattern(agent=agent, task_type=task_type, failure_class=name,
                                                     mitigation=engine.MITIGATIONS[name], first_seen_at=now)
        failure.frequency += 1
        failure.confidence = min(1.0, failure.frequency / tasks_of_type)
        failure.last_seen_at = now
        failure.last_message = message[:500]
        if name in known:
            rows.update(failure, ("frequency", "confidence", "last_seen_at", "last_message"))
        else:
            rows.insert(failure)
            emit(agent, "learning:failure_detected",
                 {"task_type": task_type, "failure_class": name, "pattern_id": failure.pk})
    return classes


def report_execution(agent, report, idempotency_key, payload):
    """Learn from one reported task, in one transaction; a repeat returns the
    first response. Each stage's time goes to the live overhead figures
    (overhead.lap), measured here and recorded after the commit."""
    overhead.begin()
    digest = request_digest(payload)
    key = idempotency_key or (str(report.decision_id) if report.decision_id else None)
    if key is None:
        raise Invalid("Send an Idempotency-Key header or a decision_id, so a retried report counts once.",
                      "Idempotency-Key")
    with transaction.atomic():
        # One agent's reports are serialised on its profile row. Only the
        # safeguard's checks (one task in ten) read the live version.
        profile = _profile(agent, LOCKED_PROFILE, live_version=False)
        decision = None
        if report.decision_id is not None:
            # With whether it was reported already.
            decision = DECISION.first(report.decision_id, agent)
            if decision is None:
                raise NotFound("No such decision.", "decision_id")
        reported = decision.reported_id if decision else None
        if key == str(report.decision_id):
            previous = Execution.objects.get(pk=reported) if reported else None
        else:
            previous = EXECUTION_BY_KEY.first(agent, key)
        if previous is not None:
            if previous.request_digest != digest:
                raise Unprocessable("This Idempotency-Key was used with a different report.", "Idempotency-Key")
            return {"execution_id": previous.pk, **previous.response}, False
        if reported is not None:
            raise Conflict("This decision was already reported under another Idempotency-Key.", "decision_id")
        overhead.lap("lookup")
        body = _learn(agent, profile, report, decision, key, digest)
    overhead.lap("commit")
    overhead.complete("report")
    return body, True


def _learn(agent, profile, report, decision, key, digest):
    """One reported task's learning, step by step; each step's time is a lap
    of the live overhead figures."""
    task, result = report.task, report.result
    strategy = _strategy_of(report, decision)
    task_type = decision.task_type if decision else task.type
    state_key = decision.state_key if decision else task_state(task)[1]
    next_key = _next_state_key(report)
    reward = _reward(report)
    entry, previous_q = _update_q(agent, profile, task_type, state_key, next_key, strategy, reward)
    overhead.lap("reward_q")

    satisfaction = result.user_satisfaction if result.user_satisfaction is not None else (
        report.feedback.rating if report.feedback else None)
    classes = [] if result.success else failure_classes(result.errors)
    execution = Execution(
        agent=agent, decision=decision, idempotency_key=key, request_digest=digest, sequence=profile.task_count,
        task_id=task.id, task_type=task_type, state_key=state_key, next_state_key=next_key, strategy=strategy,
        success=result.success, execution_time_ms=result.execution_time_ms, error_count=len(result.errors),
        failure_classes=",".join(classes), coverage=result.coverage, satisfaction=satisfaction,
        efficiency=result.resource_efficiency,
        reward=reward, previous_q=previous_q, q_value=entry.q_value, response={},
    )
    patterns = _learn_patterns(agent, profile, task_type, strategy, result, classes)
    overhead.lap("patterns")
    if decision is not None and decision.abtest_arm_id is not None:
        abtests.record_outcome(decision.abtest_arm_id, result.success, result.execution_time_ms, bool(result.errors))
    overhead.lap("abtest")
    _record_score(agent, execution)
    overhead.lap("performance")
    guard = SAFEGUARD.first(agent) or Safeguard.objects.create(agent=agent)
    rolled_back = safeguard.check(agent, profile, guard, execution)
    overhead.lap("safeguard")
    execution.response = {
        "reward": round(reward, 6),
        "previous_q_value": round(previous_q, 6),
        "q_value": round(entry.q_value, 6),
        "exploration_rate": round(profile.exploration_rate, 6),
        "patterns": patterns,
        "learning_enabled": profile.enabled,
        "safeguard": guard.to_dict(),
        "rolled_back": rolled_back,
    }
    rows.insert(execution)
    overhead.lap("experience")
    _emit_training(agent, execution, strategy, profile)
    overhead.lap("events")
    tracker.after_task(agent, profile)
    if versions.capture_due(profile.task_count):
        versions.capture(agent, VersionReason.TASKS, profile)
    overhead.lap("snapshot")
    return {"execution_id": execution.pk, **execution.response}


def _reward(report):
    result, feedback = report.result, report.feedback
    return scoring.reward(
        result.success, result.execution_time_ms, len(result.errors), result.coverage,
        feedback.rating if feedback else None, len(feedback.issues) if feedback else 0,
    )


def _update_q(agent, profile, task_type, state_key, next_key, strategy, reward):
    """Q(s, a) and epsilon learn (while learning is enabled) and the task is
    counted; returns the entry and its value before."""
    # One query reads Q(s, a) and the next state's row; the profile lock
    # already serialises this agent's reports, so the entry cannot change.
    entries = Q_ENTRIES(agent, task_type, {state_key, next_key})
    entry = next((row for row in entries if row.state_key == state_key and row.strategy_id == strategy.pk), None)
    if entry is None:
        entry = QEntry(agent=agent, task_type=task_type, state_key=state_key, strategy=strategy)
    previous_q = entry.q_value
    if profile.enabled:
        max_next = max((row.q_value for row in entries if row.state_key == next_key), default=0.0)
        entry.q_value = engine.q_update(previous_q, reward, max_next, profile.learning_rate, profile.discount_factor)
        entry.visits += 1
        if entry.pk is None:
            rows.insert(entry)
        else:
            rows.update(entry, ("q_value", "visits", "updated_at"))
        pool_outcome(agent, task_type, state_key, strategy, reward + profile.discount_factor * max_next)
        profile.exploration_rate = engine.decayed_epsilon(
            profile.exploration_rate, profile.exploration_decay, profile.min_exploration_rate)
    profile.task_count += 1
    rows.update(profile, ("exploration_rate", "task_count", "updated_at"))
    return entry, previous_q


def _pool_upsert_sql():
    """One statement that counts an outcome in the pooled rows named in its
    VALUES (creating them at the first): engine.pooled_update in SQL, so the
    database applies each agent's update to the row as it is, under its row
    lock, and concurrent agents lose none. The VALUES carry a new row:
    value step x target, reference target, one visit, shortfall
    min(0, target + slack); an existing row takes the outcome into its value
    and reference, unless its shortfall says it restarts from the outcome
    (every SET reads the row as it was)."""
    table = PooledValue._meta.db_table
    step = engine.POOL_STEP
    drop = f"({table}.shortfall + excluded.reference - {table}.reference + {engine.SHORTFALL_SLACK!r})"
    restart = f"{table}.current_visits >= {engine.RESTART_AFTER} AND {drop} < {-engine.SHORTFALL_LIMIT!r}"
    # The reference's step, 1 / min(visits so far + 1, span): an integer divisor, valid in both databases.
    span = (f"CASE WHEN {table}.current_visits + 1 < {engine.REFERENCE_SPAN} THEN {table}.current_visits + 1 "
            f"ELSE {engine.REFERENCE_SPAN} END")
    return (f"INSERT INTO {table} (swarm, task_type, abstract_key, strategy_id, value, reference, visits, "
            f"current_visits, shortfall, updated_at) "
            f"VALUES (%s, %s, %s, %s, %s, %s, 1, 1, %s, %s), (%s, %s, %s, %s, %s, %s, 1, 1, %s, %s) "
            f"ON CONFLICT (swarm, task_type, abstract_key, strategy_id) DO UPDATE SET "
            f"value = CASE WHEN {restart} THEN excluded.value ELSE {table}.value * {1 - step!r} + excluded.value END, "
            f"reference = CASE WHEN {restart} THEN excluded.reference "
            f"ELSE {table}.reference + (excluded.reference - {table}.reference) / ({span}) END, "
            f"current_visits = CASE WHEN {restart} THEN 1 ELSE {table}.current_visits + 1 END, "
            f"shortfall = CASE WHEN {restart} OR {drop} > 0 THEN 0 ELSE {drop} END, "
            f"visits = {table}.visits + 1, updated_at = excluded.updated_at")


def pool_outcome(agent, task_type, state_key, strategy, target):
    """Count one outcome (its Q-learning target) in the agent's pool, at each
    abstract level of its state."""
    connection = transaction.get_connection()
    now = PooledValue._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    target = float(target)
    params = []
    for abstract_key in engine.abstract_keys(engine.parse_state_key(state_key)):
        params += [pool_of(agent), task_type, abstract_key, strategy.pk, engine.POOL_STEP * target, target,
                   min(0.0, target + engine.SHORTFALL_SLACK), now]
    with connection.cursor() as cursor:
        cursor.execute(_pool_upsert_sql(), params)


def _learn_patterns(agent, profile, task_type, strategy, result, classes):
    """The task type's success pattern and failure patterns; what the response lists."""
    if not profile.enabled:
        return []
    of_type = PATTERNS_OF_TYPE(agent, task_type)
    patterns = [_update_patterns(agent, task_type, strategy, result.success, of_type).to_dict()]
    if classes:
        _update_failures(agent, task_type, classes, result.errors[0].message if result.errors else "", of_type)
    return patterns


def _record_score(agent, execution):
    """The task's composite score as a `task_score` performance sample."""
    score = scoring.task_score(execution.success, execution.execution_time_ms, execution.error_count,
                               execution.satisfaction, execution.efficiency)
    rows.insert(PerformanceMetric(owner=agent, team=agent.team, swarm=agent.swarm, metric="task_score", value=score,
                                  unit="score"))


def _emit_training(agent, execution, strategy, profile):
    emit(agent, "learning:training", {
        "execution_id": execution.pk, "decision_id": str(execution.decision_id) if execution.decision_id else None,
        "task_type": execution.task_type, "state": execution.state_key, "strategy": strategy.name,
        "reward": round(execution.reward, 4), "q_before": round(execution.previous_q, 4),
        "q_after": round(execution.q_value, 4), "epsilon": round(profile.exploration_rate, 4),
    })


@transaction.atomic
def add_feedback(agent, execution_id, rating, issues):
    """Late user satisfaction for a reported task; the tracker's figures use it."""
    execution = Execution.objects.select_for_update().filter(pk=execution_id, agent=agent).first()
    if execution is None:
        raise NotFound("No such execution.", "execution_id")
    execution.satisfaction = rating
    execution.save(update_fields=["satisfaction"])
    emit(agent, "learning:feedback", {"execution_id": execution.pk, "rating": rating, "issues": len(issues)})
    return {"execution_id": execution.pk, "satisfaction": rating}
