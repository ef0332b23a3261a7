"""Writing the simulated fleet: the Writer, table by table, and the bulk
inserts of the big tables (COPY on PostgreSQL, executemany elsewhere).

What is written: snapshots for every slot, a sample of the tasks as
performance metrics (--samples), the last 1,000 decisions and executions of
each agent, events of the last 30 days only (their TTL; --events in total:
the loop's notable events, one `learning:improvement` per snapshot, the rest
`learning:training` of sampled tasks), improvement cycles of the last 30
days (their retention), alerts in every state and the audit events of the
operators' actions. Snapshots cover a whole slot's tasks (the live tracker
also snapshots every 10 tasks). Decisions record how a strategy was chosen
but not a mitigation's adjustment, and the fleet's tests are decided one by
one (the live review also controls the false discovery rate across them).
"""

import hashlib
import itertools
import json
import math
import time
import uuid
import zlib
from datetime import timedelta

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from learning import versions
from learning.core import engine, stats
from learning.harness.simulator import STRATEGIES, TEST_CASES
from learning.models import (
    ABArm,
    ABLook,
    ABTest,
    ABTransition,
    Alert,
    AppliedStrategy,
    ArmRole,
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
    SharedPatternStatus,
    Snapshot,
    StateVersion,
)
from qefleet.memory.fleet import SWARM
from qefleet.memory.models import AccessLevel, Agent, AuditEvent, Event, Pattern, PerformanceMetric

from . import constants
from .constants import ACTIONS, CLASSES, HOUR, MESSAGES, NEXT_KEYS, STATE_KEYS, STATES, events_since
from .records import AlertRecord, aware, epsilon, iso


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def db_datetimes(epochs):
    """Epoch seconds as the database keeps Django's datetimes (on SQLite,
    Django's own text form, so lookups compare the same strings)."""
    text = np.datetime_as_string(np.round(np.asarray(epochs) * 1e6).astype("int64").astype("datetime64[us]"),
                                 unit="us").tolist()
    if connection.vendor == "postgresql":
        return [value.replace("T", " ") + "+00:00" for value in text]
    return [value.replace("T", " ").removesuffix(".000000") for value in text]


def insert_fast(model, fields, rows):
    """Insert value rows already in the database's form: COPY on PostgreSQL,
    versions.insert_rows (one executemany per batch) elsewhere; returns the count."""
    count = 0
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
        with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    rows = iter(rows)
    while batch := list(itertools.islice(rows, 20_000)):
        versions.insert_rows(model, fields, batch)
        count += len(batch)
    return count


def collation_ranks(strings):
    """{text: rank} in the order the database sorts text, so a generated
    state's rows are in the order versions.learned_state reads them back."""
    strings = sorted(set(strings))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT value FROM unnest(%s::text[]) AS value ORDER BY value", [strings])
            strings = [row[0] for row in cursor.fetchall()]
    return {text: rank for rank, text in enumerate(strings)}


def _json(value):
    return json.dumps(value, separators=(",", ":"))


class Writer:
    """Writes the simulated fleet table by table, each in one transaction."""

    def __init__(self, world, pasts, agents, strategies, events, say):
        self.world, self.pasts, self.agents, self.strategies = world, pasts, agents, strategies
        self.events_wanted, self.say = events, say
        self.counts = {}
        self.ranks = collation_ranks([*(t for past in pasts for t in past.types), *STATE_KEYS, *STRATEGIES])
        self.rng = np.random.default_rng([world.seed, 4])

    def step(self, name, write):
        started = time.perf_counter()
        with transaction.atomic():
            count = write()
        self.counts[name] = count
        self.say(f"  {name:<24} {count:>10,}  {time.perf_counter() - started:6.1f} s")

    def agent(self, past):
        return self.agents[past.agent_id]

    def strategy(self, index):
        return self.strategies[STRATEGIES[index]]

    def write(self, alerts, audit, imports):
        self.step("learning profiles", self.profiles)
        self.step("A/B tests", self.tests)
        self.step("A/B arms", self.arms)
        self.step("A/B transitions", self.transitions)
        self.step("A/B looks", self.looks)
        self.step("state versions", self.versions)
        self.step("live version periods", self.live_periods)
        self.step("Q entries", self.q_entries)
        self.step("learned patterns", self.patterns)
        self.step("applied strategies", self.applied)
        self.step("failure patterns", self.failure_patterns)
        self.step("mitigations", self.mitigations)
        self.step("safeguards", self.safeguards)
        self.step("rollbacks", self.rollbacks)
        self.step("decisions", self.decisions)
        self.step("executions", self.executions)
        self.step("snapshots", self.snapshots)
        self.step("alerts", lambda: self.alerts(alerts))
        self.step("audit events", lambda: self.audit(audit))
        self.step("shared patterns", self.shared)
        self.step("pattern imports", lambda: self.imports(imports))
        self.step("memory patterns", self.memory_patterns)
        self.step("improvement cycles", self.cycles)
        self.step("performance metrics", self.metrics)
        self.step("events", self.events)
        self.step("agent records", self.agent_records)
        return self.counts

    # --- learning state ----------------------------------------------------------------

    def profiles(self):
        self.profile = {}
        for past in self.pasts:
            self.profile[past.agent_id] = LearningProfile(
                agent=self.agent(past), enabled=past.enabled, exploration_rate=epsilon(past.learned),
                disabled_by=_disabled_by(past),
                task_count=past.n, baseline_score=past.baseline, baseline_set_at=aware(past.baseline_at),
                baseline_task=0)
        LearningProfile.objects.bulk_create(self.profile.values())
        return len(self.profile)

    def _tests(self):
        return [(past, test) for past in self.pasts for test in past.tests]

    def tests(self):
        pairs = self._tests()
        objects = [ABTest(
            agent=self.agent(past), task_type=test.task_type, name=test.name, hypothesis=test.hypothesis,
            state=test.state, source=test.source, created_by=test.created_by, mde=test.mde,
            power=stats.DEFAULT_POWER, horizon=test.horizon, verdict=test.verdict, decision=test.decision,
            previous_strategy=None if test.previous_strategy is None else self.strategy(test.previous_strategy),
            reference_score=test.reference_score, reference_spread=test.reference_spread,
            degraded_checks=test.degraded_checks, created_at=aware(test.created_at),
            started_at=aware(test.created_at), decided_at=aware(test.decided_at), applied_at=aware(test.applied_at),
            monitor_until=aware(test.monitor_until), finished_at=aware(test.finished_at)) for past, test in pairs]
        ABTest.objects.bulk_create(objects, batch_size=500)
        for (_, test), row in zip(pairs, objects):
            test.pk = row.pk
        return len(objects)

    def arms(self):
        rows = []
        for _, test in self._tests():
            for role, strategy, counts in ((ArmRole.CONTROL, test.control, test.arms[0]),
                                           (ArmRole.TREATMENT, test.treatment, test.arms[1])):
                rows.append(ABArm(test_id=test.pk, role=role,
                                  strategy=None if strategy is None else self.strategy(strategy), weight=0.5,
                                  n=counts[0], successes=counts[1], total_ms=counts[2], error_tasks=counts[3]))
        ABArm.objects.bulk_create(rows, batch_size=500)
        for (_, test), control, treatment in zip(self._tests(), rows[::2], rows[1::2]):
            test.arm_pks = (control.pk, treatment.pk)
        return len(rows)

    def transitions(self):
        rows = [ABTransition(test_id=test.pk, from_state=from_state, to_state=to_state, reason=reason, at=aware(at))
                for _, test in self._tests() for from_state, to_state, reason, at in test.transitions]
        ABTransition.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def looks(self):
        rows = [ABLook(test_id=test.pk, slot_start=aware(slot), n_control=n_control, n_treatment=n_treatment,
                       low=low, high=high, p_value=p_value, srm_p_value=srm, outcome=outcome, at=aware(at))
                for _, test in self._tests()
                for slot, n_control, n_treatment, low, high, p_value, srm, outcome, at in test.looks]
        ABLook.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def state(self, past, learned, applied):
        """A learned state as versions.learned_state reads it from the tables."""
        q, visits, wins, count = learned
        ranks = self.ranks
        rows = []
        for group, seen in enumerate(visits):
            if seen:
                type_index, rest = divmod(group, STATES * ACTIONS)
                state_index, strategy = divmod(rest, ACTIONS)
                rows.append([past.types[type_index], STATE_KEYS[state_index], STRATEGIES[strategy], q[group], seen])
        rows.sort(key=lambda row: (ranks[row[0]], ranks[row[1]], ranks[row[2]]))
        uses, successes = {}, {}
        for group, seen in enumerate(visits):
            key = (past.types[group // (STATES * ACTIONS)], STRATEGIES[group % ACTIONS])
            uses[key] = uses.get(key, 0) + seen
            successes[key] = successes.get(key, 0) + wins[group]
        patterns = sorted(([task_type, name, uses[key], successes[key], engine.pattern_confidence(uses[key],
                                                                                              successes[key])]
                           for key in uses if uses[key] for task_type, name in [key]),
                          key=lambda row: (ranks[row[0]], ranks[row[1]]))
        applied_rows = sorted(([past.types[type_index], STRATEGIES[strategy], self.source(source)]
                               for type_index, (strategy, source) in applied.items()),
                              key=lambda row: ranks[row[0]])
        config = dict(engine.DEFAULT_CONFIG, exploration_rate=epsilon(count))
        return {"q": rows, "patterns": patterns, "applied": applied_rows, "config": config}

    @staticmethod
    def source(source):
        kind, test = source
        return f"abtest:{test.pk}" if kind == "abtest" else f"revert:abtest:{test.pk}"

    def versions(self):
        objects = []
        for past in self.pasts:
            for version in past.versions:
                state = self.state(past, version.learned, version.applied)
                payload = zlib.compress(
                    f'{{"state":{_json(state)},"experiences":{version.experiences},"score":{_json(version.score)},'
                    f'"tasks":{version.task_count}}}'.encode(), 6)
                objects.append((version, StateVersion(
                    agent=self.agent(past), number=version.number, reason=version.reason, task_count=version.task_count,
                    score=version.score, q_entries=len(state["q"]), patterns=len(state["patterns"]),
                    exploration_rate=state["config"]["exploration_rate"], checksum=versions.checksum(state), payload=payload,
                    size_bytes=len(payload), pinned=version.pinned, known_good=version.known_good,
                    created_at=aware(version.created_at))))
        StateVersion.objects.bulk_create([row for _, row in objects], batch_size=100)
        for version, row in objects:
            version.pk = row.pk
        tests = [ABTest(pk=test.pk, version_before_id=test.version_before.pk)
                 for _, test in self._tests() if test.version_before is not None]
        ABTest.objects.bulk_update(tests, ["version_before"], batch_size=500)
        return len(objects)

    def live_periods(self):
        rows = [LiveVersion(agent=self.agent(past), version_id=version.pk, live_from=aware(start),
                            live_until=aware(end), cause=cause)
                for past in self.pasts for version, start, end, cause in past.live_periods]
        LiveVersion.objects.bulk_create(rows, batch_size=1000)
        for past in self.pasts:
            profile = self.profile[past.agent_id]
            profile.live_version_id, profile.live_since_task = past.live.pk, past.live_since
        LearningProfile.objects.bulk_update(self.profile.values(), ["live_version", "live_since_task"])
        return len(rows)

    def q_entries(self):
        rows = []
        for past in self.pasts:
            if (past.q, past.visits, past.wins, past.learned) != past.live.learned or past.applied != past.live.applied:
                raise RuntimeError(f"{past.agent_id}: the live version is not the live state.")
            for task_type, state_key, name, q, visits in self.state(past, past.live.learned, past.applied)["q"]:
                rows.append(QEntry(agent=self.agent(past), task_type=task_type, state_key=state_key,
                                   strategy=self.strategies[name], q_value=q, visits=visits))
        QEntry.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def patterns(self):
        rows = []
        for past in self.pasts:
            learned = np.flatnonzero(past.learning)
            pattern = (past.type * ACTIONS + past.strategy)[learned]
            firsts = dict(zip(*np.unique(pattern, return_index=True)))
            lasts = dict(zip(*np.unique(pattern[::-1], return_index=True)))
            for task_type, name, uses, successes, confidence in self.state(past, past.live.learned, past.applied)[
                    "patterns"]:
                key = past.types.index(task_type) * ACTIONS + STRATEGIES.index(name)
                row = LearnedPattern(agent=self.agent(past), task_type=task_type, strategy=self.strategies[name],
                                     uses=uses, successes=successes, confidence=confidence,
                                     last_used_at=aware(past.times[learned[len(pattern) - 1 - lasts[key]]]))
                row.first_used = aware(past.times[learned[firsts[key]]])
                rows.append(row)
        LearnedPattern.objects.bulk_create(rows, batch_size=1000)
        for row in rows:  # created_at is auto_now_add: set when the pattern was first used
            row.created_at = row.first_used
        LearnedPattern.objects.bulk_update(rows, ["created_at"], batch_size=500)
        return len(rows)

    def applied(self):
        rows = []
        for past in self.pasts:
            for type_index, (strategy, (kind, test)) in past.applied.items():
                applied_at = test.applied_at if kind == "abtest" else test.finished_at
                rows.append(AppliedStrategy(agent=self.agent(past), task_type=past.types[type_index],
                                            strategy=self.strategy(strategy), source=self.source((kind, test)),
                                            applied_at=aware(applied_at)))
        AppliedStrategy.objects.bulk_create(rows)
        return len(rows)

    def failure_patterns(self):
        rows = []
        for past in self.pasts:
            for type_index, class_index in zip(*np.nonzero(past.failures)):
                tasks = np.flatnonzero(past.learning & (past.type == type_index)
                                       & ((past.classes >> class_index) & 1 == 1))
                task, name = int(tasks[-1]), CLASSES[class_index]
                error_type, message = MESSAGES.get(int(past.first_class[task]), ("Error", "the run failed"))
                rows.append(FailurePattern(
                    agent=self.agent(past), task_type=past.types[type_index], failure_class=name,
                    frequency=int(past.failures[type_index, class_index]),
                    confidence=past.failure_confidence(type_index, class_index), mitigation=engine.MITIGATIONS[name],
                    last_message=message.format(budget=max(1, int(past.ms[task]) // 1000), worker=1 + task % 8,
                                                case=TEST_CASES[task % len(TEST_CASES)])[:500],
                    first_seen_at=aware(past.times[tasks[0]]), last_seen_at=aware(past.times[task])))
        FailurePattern.objects.bulk_create(rows)
        return len(rows)

    def mitigations(self):
        pairs = [(past, record) for past in self.pasts for record in past.mitigations]
        rows = [Mitigation(agent=self.agent(past), task_type=past.types[record.type_index],
                           failure_class=CLASSES[record.failure_class], adjustment=record.adjustment,
                           strategies=[STRATEGIES[strategy] for strategy in record.strategies], state=record.state,
                           tasks_before=record.tasks_before, failures_before=record.failures_before,
                           tasks_after=record.tasks_after, failures_after=record.failures_after,
                           activated_at=aware(record.activated_at), activated_after_task=record.activated_after_task,
                           concluded_at=aware(record.concluded_at)) for past, record in pairs]
        Mitigation.objects.bulk_create(rows, batch_size=500)
        for (_, record), row in zip(pairs, rows):
            record.pk = row.pk
        return len(rows)

    def safeguards(self):
        rows = [Safeguard(agent=self.agent(past), reference_score=past.reference_score,
                          reference_spread=past.reference_spread,
                          reference_version_id=past.reference.pk if past.reference else None,
                          state=past.guard["state"], consecutive_degraded=past.guard["consecutive_degraded"],
                          change_pct=past.guard["change_pct"], healthy_checks=past.guard["healthy_checks"],
                          checked_at=aware(past.guard["checked_at"])) for past in self.pasts]
        Safeguard.objects.bulk_create(rows)
        return len(rows)

    def rollbacks(self):
        count = 0
        for past in self.pasts:
            for record in past.rollbacks:
                row = Rollback.objects.create(
                    agent=self.agent(past), from_version_id=record.from_version.pk,
                    to_version_id=record.to_version.pk, automatic=record.automatic, actor=record.actor,
                    reason=record.reason, numbers=record.numbers, created_at=aware(record.created_at),
                    undo_of_id=record.undo_of.pk if record.undo_of else None)
                record.pk = row.pk
                count += 1
        return count

    # --- the last tasks ----------------------------------------------------------------

    def decisions(self):
        self.decision_rows, self.decision_ids = [], {}
        for past in self.pasts:
            agent, first = self.agent(past), max(0, past.n - constants.EXPERIENCES)
            tests = past.tests
            for task in range(first, past.n):
                decision_id = uuid.UUID(bytes=self.rng.bytes(16), version=4)
                self.decision_ids[(past.agent_id, task)] = decision_id
                arm = int(past.arm[task])
                arm_id = tests[past.test_of[task]].arm_pks[arm] if arm >= 0 else None
                ms = int(past.ms[task])
                self.decision_rows.append(Decision(
                    id=decision_id, agent=agent, task_id=f"{past.agent_id}-{task + 1:07d}",
                    task_type=past.types[past.type[task]], state_key=STATE_KEYS[past.state[task]],
                    strategy=self.strategy(int(past.strategy[task])), explored=bool(past.explored[task]),
                    propensity=float(past.propensity[task]), epsilon=float(past.eps[task]),
                    q_value=float(past.q_before[task]),
                    fallback=("", "applied", "abtest")[past.fallback[task]],
                    abtest_arm_id=arm_id, created_at=aware(past.times[task] - ms / 1000 - 0.2)))
        Decision.objects.bulk_create(self.decision_rows, batch_size=1000)
        return len(self.decision_rows)

    def executions(self):
        rows, self.execution_ids = [], {}
        decisions = iter(self.decision_rows)
        for past in self.pasts:
            agent, first = self.agent(past), max(0, past.n - constants.EXPERIENCES)
            triggers = {record.task_index - 1 for record in past.rollbacks if record.automatic}
            for task in range(first, past.n):
                decision = next(decisions)
                type_name, strategy = past.types[past.type[task]], STRATEGIES[past.strategy[task]]
                learning = bool(past.learning[task])
                uses, wins = int(past.uses_after[task]), int(past.successes_after[task])
                patterns = [{"pattern": f"{type_name}:{strategy}", "uses": uses, "success_rate": round(wins / uses, 4),
                             "confidence": round(engine.pattern_confidence(uses, wins), 4)}] if learning else []
                reward, before, after = (float(past.reward[task]), float(past.q_before[task]),
                                         float(past.q_after[task]))
                classes = int(past.classes[task])
                rows.append(Execution(
                    agent=agent, decision=decision, idempotency_key=str(decision.id),
                    request_digest=hashlib.sha256(f"{decision.id}:{task}".encode()).hexdigest(), sequence=task + 1,
                    task_id=decision.task_id, task_type=type_name, state_key=decision.state_key,
                    next_state_key=NEXT_KEYS[past.state[task]], strategy=decision.strategy,
                    success=bool(past.success[task]), execution_time_ms=int(past.ms[task]),
                    error_count=int(past.errors[task]),
                    failure_classes=",".join(sorted(name for bit, name in enumerate(CLASSES) if classes >> bit & 1)),
                    coverage=_none(float(past.coverage[task])), satisfaction=_none(float(past.satisfaction[task])),
                    efficiency=_none(float(past.efficiency[task])), reward=reward, previous_q=before, q_value=after,
                    response={"reward": round(reward, 6), "previous_q_value": round(before, 6),
                              "q_value": round(after, 6), "exploration_rate": round(float(past.rate_after[task]), 6),
                              "patterns": patterns, "learning_enabled": learning,
                              "safeguard": past.check_states[task], "rolled_back": task in triggers},
                    created_at=aware(past.times[task])))
        Execution.objects.bulk_create(rows, batch_size=1000)
        for row in rows:
            self.execution_ids[(row.agent_id, row.sequence - 1)] = row.pk
        return len(rows)

    def snapshots(self):
        pairs = []
        for past in self.pasts:
            for first, last, window, change, at in past.snapshots:
                pairs.append((past, Snapshot(
                    agent=self.agent(past), first_task=first, last_task=last, tasks=window["tasks"],
                    success_rate=window["success_rate"], avg_execution_ms=window["avg_ms"],
                    error_rate=window["error_rate"], satisfaction=window["satisfaction"],
                    efficiency=window["efficiency"], score=window["score"], improvement=change,
                    created_at=aware(at))))
        Snapshot.objects.bulk_create([row for _, row in pairs], batch_size=2000)
        self.snapshot_rows = pairs
        return len(pairs)

    # --- the operators' side -----------------------------------------------------------

    def alerts(self, alerts):
        rows = []
        for alert in alerts:
            rows.append(Alert(
                agent=self.agents.get(alert.agent), kind=alert.kind, severity=alert.severity, state=alert.state,
                dedup_key=alert.dedup() if callable(alert.dedup) else alert.dedup,
                summary=(alert.summary() if callable(alert.summary) else alert.summary)[:300], numbers=alert.numbers,
                occurrences=alert.occurrences, silenced_until=aware(alert.silenced_until),
                acknowledged_by=alert.acknowledged_by, acknowledged_at=aware(alert.acknowledged_at), note=alert.note,
                resolved_at=aware(alert.resolved_at), created_at=aware(alert.created_at),
                last_seen_at=aware(alert.last_seen_at or alert.created_at)))
        Alert.objects.bulk_create(rows)
        for alert, row in zip(alerts, rows):
            alert.pk = row.pk
        return len(rows)

    def audit(self, audit):
        rows = []
        for at, actor, action, target, detail in sorted(audit, key=lambda item: item[0]):
            if isinstance(target, AlertRecord):
                target = f"alert:{target.pk}"
            elif callable(target):
                target = target()
            rows.append(AuditEvent(actor=actor, action=action, target=target,
                                   detail=detail() if callable(detail) else detail, at=aware(at)))
        AuditEvent.objects.bulk_create(rows)
        return len(rows)

    def shared(self):
        rows = []
        for past in self.pasts:
            for shared in past.shared:
                numbers = shared.numbers
                rows.append(SharedPattern(
                    id=shared.uuid, source=self.agent(past), task_type=shared.task_type,
                    strategy=self.strategy(shared.strategy), confidence=numbers["confidence"],
                    success_rate=numbers["success_rate"], lower_bound=numbers["lower_bound"], uses=numbers["uses"],
                    source_version=shared.source_version, status=shared.status,
                    published_at=aware(shared.published_at),
                    quarantined_at=aware(shared.quarantined_at), quarantine_reason=shared.quarantine_reason))
        SharedPattern.objects.bulk_create(rows)
        return len(rows)

    def imports(self, imports):
        rows = [PatternImport(agent=self.agents[agent_id], shared_id=shared.uuid, status=status, confidence=confidence,
                              imported_at=aware(imported_at), decided_at=aware(decided_at))
                for agent_id, shared, status, confidence, imported_at, decided_at in imports]
        PatternImport.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def memory_patterns(self):
        """Each agent's copies in the memory patterns table (7-day TTL), as
        services and sharing keep them: shared ones at swarm level."""
        rows = []
        for past in self.pasts:
            agent = self.agent(past)
            shared = {(item.task_type, STRATEGIES[item.strategy]): item for item in past.shared}
            for row in LearnedPattern.objects.filter(agent=agent).select_related("strategy"):
                item = shared.get((row.task_type, row.strategy.name))
                expires = row.last_used_at + timedelta(seconds=Pattern.DEFAULT_TTL)
                if expires <= timezone.now():
                    continue
                metadata = {"success_rate": round(row.success_rate, 4)}
                level = AccessLevel.PRIVATE
                if item is not None:
                    metadata.update(lower_bound=round(item.numbers["lower_bound"], 4), shared_id=str(item.uuid),
                                    source_version=item.source_version, status=item.status)
                    level = AccessLevel.SWARM if item.status == SharedPatternStatus.ACTIVE else AccessLevel.PRIVATE
                copy = Pattern(owner=agent, access_level=level, team=agent.team, swarm=agent.swarm, expires_at=expires,
                               pattern=row.key, confidence=row.confidence, usage_count=row.uses, metadata=metadata)
                copy.touched = row.last_used_at
                copy.first = row.created_at
                rows.append(copy)
        Pattern.objects.bulk_create(rows)
        for row in rows:  # auto_now fields: when the pattern was first and last used
            row.created_at, row.updated_at = row.first, row.touched
        Pattern.objects.bulk_update(rows, ["created_at", "updated_at"])
        return len(rows)

    def cycles(self):
        rows = []
        for past in self.pasts:
            for cycle in past.cycles:
                decisions = []
                for item in cycle["decisions"]:
                    item = dict(item)
                    if "abtest" in item:
                        item["abtest"] = item["abtest"].pk
                        if item["kind"] == "abtest_decided":
                            item["agent"] = past.agent_id
                    if "mitigation" in item:
                        item["mitigation"] = item["mitigation"].pk
                    decisions.append(item)
                started = aware(cycle["at"])
                duration = cycle["duration_ms"]
                rows.append(ImprovementCycle(
                    agent=self.agent(past), slot_start=aware(self.world.start + cycle["slot"] * HOUR),
                    trigger="schedule", steps=["performance", "failures", "opportunities", "applied"],
                    inputs=cycle["inputs"], decisions=decisions, started_at=started,
                    finished_at=aware(cycle["at"] + duration / 1000), duration_ms=duration, created_at=started))
        ImprovementCycle.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    # --- the big tables ------------------------------------------------------------------

    def metrics(self):
        chosen = [(index, task) for index, past in enumerate(self.pasts) for task in past.samples.tolist()]
        times = np.array([self.pasts[index].times[task] for index, task in chosen])
        order = np.argsort(times, kind="stable")
        stamps = db_datetimes(times[order])

        def rows():
            for position, at in zip(order.tolist(), stamps):
                index, task = chosen[position]
                past = self.pasts[index]
                yield (past.agent_id, AccessLevel.PRIVATE.value, past.team, SWARM, "task_score",
                       float(past.score[task]), "score", at)

        return insert_fast(PerformanceMetric, ["owner", "access_level", "team", "swarm", "metric", "value", "unit",
                                               "timestamp"], rows())

    def events(self):
        """The last 30 days' events: the loop's notable ones, one learning:improvement
        per snapshot, and learning:training of sampled tasks up to the number asked."""
        chosen, moments = self._events_chosen()
        level = AccessLevel.SWARM.value

        def rows():
            for start in range(0, len(chosen), 50_000):
                part, at = chosen[start:start + 50_000], moments[start:start + 50_000]
                training = self.training_payloads(part)
                for (kind, index, ref), stamp, expires in zip(part.tolist(), db_datetimes(at),
                                                              db_datetimes(at + constants.EVENT_SECONDS)):
                    past = self.pasts[index]
                    if kind == 2:
                        event_type, payload = "learning:training", training.pop()
                    else:
                        event_type, payload = (self.notable_payload(past, ref) if kind == 0 else
                                               self.improvement_payload(index, ref))
                        payload = _json(payload)
                    yield past.agent_id, level, past.team, SWARM, expires, event_type, payload, stamp

        return insert_fast(Event, ["owner", "access_level", "team", "swarm", "expires_at", "type", "payload",
                                   "timestamp"], rows())

    def _events_chosen(self):
        """The events to write, oldest first: rows of (kind, agent index, reference)
        (kind 0: a notable event of the loop, 1: a snapshot's learning:improvement,
        2: a sampled task's learning:training), and their moments."""
        since = events_since(self.world.now)
        notable = sorted(((at, index, position) for index, past in enumerate(self.pasts)
                          for position, (at, _, _) in enumerate(past.events) if at > since), reverse=True)
        notable = notable[:self.events_wanted]
        left = self.events_wanted - len(notable)
        snapshots = [(row.created_at.timestamp(), index, position) for index, past in enumerate(self.pasts)
                     for position, row in enumerate(self.snapshot_rows_of(index)) if row.created_at.timestamp() > since]
        snapshots = sorted(snapshots, reverse=True)[:left]
        left -= len(snapshots)
        candidates = [(index, task) for index, past in enumerate(self.pasts) for task in past.training.tolist()]
        if left > len(candidates):
            raise RuntimeError("Too few tasks in the last 30 days for the events asked for.")
        picked = [candidates[i] for i in self.rng.choice(len(candidates), size=left, replace=False).tolist()]
        chosen = ([(at, 0, index, position) for at, index, position in notable]
                  + [(at, 1, index, position) for at, index, position in snapshots]
                  + [(float(self.pasts[index].times[task]), 2, index, task) for index, task in picked])
        times = np.array([item[0] for item in chosen])
        order = np.argsort(times, kind="stable")
        chosen, moments = np.array([item[1:] for item in chosen], dtype=np.int64).reshape(-1, 3)[order], times[order]
        return chosen, moments

    def training_payloads(self, part):
        """The learning:training payloads of a chunk's training events, last first
        (a fixed template: every value is a number, null or a plain name)."""
        payloads = [None] * len(part)
        for index, past in enumerate(self.pasts):
            mine = np.flatnonzero((part[:, 0] == 2) & (part[:, 1] == index))
            if not len(mine):
                continue
            tasks = part[mine, 2]
            columns = zip(
                mine.tolist(), tasks.tolist(), np.array(past.types)[past.type[tasks]].tolist(),
                np.array(STATE_KEYS)[past.state[tasks]].tolist(), np.array(STRATEGIES)[past.strategy[tasks]].tolist(),
                *(np.round(values[tasks].astype(float), 4).tolist()
                  for values in (past.reward, past.q_before, past.q_after, past.rate_after)))
            agent_pk = self.agent(past).pk
            for position, task, task_type, state, strategy, reward, before, after, rate in columns:
                execution = self.execution_ids.get((agent_pk, task), "null")
                decision = self.decision_ids.get((past.agent_id, task))
                decision = "null" if decision is None else f'"{decision}"'
                payloads[position] = (
                    f'{{"execution_id":{execution},"decision_id":{decision},'
                    f'"task_type":"{task_type}","state":"{state}","strategy":"{strategy}","reward":{reward!r},'
                    f'"q_before":{before!r},"q_after":{after!r},"epsilon":{rate!r}}}')
        return [payload for payload in reversed(payloads) if payload is not None]

    def snapshot_rows_of(self, index):
        if not hasattr(self, "_snapshots_by_agent"):
            self._snapshots_by_agent = {}
            for past, row in self.snapshot_rows:
                self._snapshots_by_agent.setdefault(past.agent_id, []).append(row)
        return self._snapshots_by_agent[self.pasts[index].agent_id]

    def improvement_payload(self, index, position):
        row = self.snapshot_rows_of(index)[position]
        return "learning:improvement", {
            "snapshot_id": row.pk, "score": round(row.score, 4),
            "improvement": None if row.improvement is None else round(row.improvement, 4), "tasks": row.last_task}

    def notable_payload(self, past, position):
        at, event_type, record = past.events[position]
        if event_type == "learning:rollback":
            return event_type, {"rollback_id": record.pk, "trigger": "automatic" if record.automatic else "manual",
                                "from": record.from_version.label, "to": record.to_version.label,
                                "degradation": record.numbers, "at": iso(record.created_at)}
        if event_type == "learning:pattern_shared":
            numbers = record.published_numbers
            return event_type, {"pattern": f"{record.task_type}:{STRATEGIES[record.strategy]}", "source": record.agent,
                                "shared_id": str(record.uuid), "confidence": round(numbers["confidence"], 4),
                                "success_rate": round(numbers["success_rate"], 4),
                                "source_version": record.source_version, "targets": record.targets}
        if event_type == "learning:mitigation_applied":
            rate = record.failures_before / record.tasks_before if record.tasks_before else 0.0
            return event_type, {"mitigation_id": record.pk, "task_type": past.types[record.type_index],
                                "failure_class": CLASSES[record.failure_class], "adjustment": record.adjustment,
                                "strategies": [STRATEGIES[strategy] for strategy in record.strategies],
                                "failure_rate_before": round(rate, 4)}
        test, state, reason = record
        return event_type, {"abtest_id": test.pk, "task_type": test.task_type, "state": state, "reason": reason}

    def agent_records(self):
        agents = []
        for past in self.pasts:
            _, _, window, change, at = past.snapshots[-1]
            agent = self.agent(past)
            agent.performance = {
                "score": round(window["score"], 4), "improvement": None if change is None else round(change, 4),
                "baseline": past.baseline, "epsilon": round(epsilon(past.learned), 4), "tasks": past.n,
                "updated_at": iso(at)}
            agent.last_heartbeat_at = aware(float(past.times[-1]))
            agents.append(agent)
        Agent.objects.bulk_update(agents, ["performance", "last_heartbeat_at"])
        return len(agents)


def _disabled_by(past):
    """Who turned the agent's learning off, as safeguard.freeze records it: the
    operator of a manual rollback or undo, "" for the safeguard (or when on)."""
    if past.enabled or not past.rollbacks or past.rollbacks[-1].automatic:
        return ""
    return past.rollbacks[-1].actor
