"""AgentPast's improvement loop, replayed at every slot the way
learning/improvement.py runs it: mitigations (activated, judged), A/B tests
(started, reviewed, applied, monitored, kept or reverted) and sharing."""

import math
import uuid
from types import SimpleNamespace

import numpy as np

from learning import abtests, improvement, mitigations, sharing
from learning.core import engine, stats
from learning.harness.simulator import STRATEGIES
from learning.models import ABTest, ABTestState, Adjustment, MitigationState, SafeguardState, Severity, VersionReason
from qefleet.memory import roles
from qefleet.memory.models import DAY

from . import constants
from .constants import (
    ACTIONS,
    CLASSES,
    GUARD_CONSECUTIVE,
    GUARD_THRESHOLD,
    GUARD_WINDOW,
    GUARD_Z,
    HOUR,
    REGULAR_CUTOFF,
    TASK_TYPE_SHARE,
)
from .records import MitigationRecord, Shared, Test, epsilon, iso, pattern_numbers


class ImprovementLoop:
    """The improvement cycle of one agent's past (mixed into AgentPast)."""

    def _loop_state(self, counts):
        """No test, mitigation or shared pattern yet; when the first test is due,
        and a final test's start and intent for the roles that end with one."""
        rng, world = self.rng, self.world
        self.tests, self.running, self.monitoring = [], None, []
        self.next_test_at = self.times[0] + rng.uniform(6, 30) * HOUR
        self.final = None
        end = world.start + world.slots * HOUR
        if self.role == "final_running":  # started late enough to be a fraction of the way to a typical horizon
            per_arm = TASK_TYPE_SHARE * counts[-24:].mean() / 2
            self.final = (end - min(14, max(2.2, rng.uniform(0.25, 0.45) * 200 / per_arm)) * HOUR, "running")
        elif self.role == "final_monitoring":
            self.final = (end - 3.5 * DAY, "monitoring")
        self.mitigations, self.latest_mitigation = [], {}
        self.shared, self.active_shared = [], {}
        self.cycles = []

    # --- the improvement cycle -------------------------------------------------------------

    def _cycle(self, h, at):
        """improvement.run_agent_steps at slot h: performance, failures, opportunities, applied
        winners, then the review of the running test; recorded for the cycles' retention only."""
        record = {"slot": h, "at": at, "decisions": []} if at > self.world.now - constants.CYCLE_SECONDS else None
        decisions = record["decisions"] if record is not None else []
        score, change = self.current()
        inputs = {"performance": {"score": score, "improvement": change, "baseline": self.baseline,
                                  "tasks": self.done, "epsilon": epsilon(self.learned)}}
        self._evaluate_mitigations(at, decisions)
        self._activate_mitigations(at, decisions)
        frequent = [(t, c) for t in range(len(self.types)) for c in range(len(CLASSES))
                    if self.failures[t, c] >= mitigations.MIN_FAILURES]
        inputs["failure_patterns"] = [
            {"task_type": self.types[t], "failure_class": CLASSES[c], "frequency": int(self.failures[t, c]),
             "confidence": self.failure_confidence(t, c)}
            for t, c in sorted(frequent, key=lambda item: -self.failures[item])[:5]]
        inputs["opportunities"] = self._start_test(at, decisions)
        self._monitor(at, decisions)
        self._review(h, at, decisions)
        if record is not None:
            record["inputs"] = inputs
            record["duration_ms"] = float(self.rng.lognormal(math.log(30 + 15 * len(decisions)), 0.35))
            self.cycles.append(record)

    def failure_confidence(self, type_index, class_index):
        """A failure pattern's confidence as services counts it: its failures over the task type's tasks."""
        uses = sum(self.pattern_uses[type_index * ACTIONS:(type_index + 1) * ACTIONS]) or 1
        return min(1.0, int(self.failures[type_index, class_index]) / uses)

    def _evaluate_mitigations(self, at, decisions):
        """mitigations.evaluate: judge each active mitigation after EVALUATE_AFTER tasks of its type (the
        product also withdraws one under which the type's success fell; the history does not)."""
        for record in self.mitigations:
            if record.state != MitigationState.ACTIVE:
                continue
            record.tasks_after = int(self.type_tasks[record.type_index]) - record.base[0]
            record.failures_after = int(self.type_failures[record.type_index, record.failure_class]) - record.base[1]
            # mitigations.evaluate: one that changes no strategy is never judged.
            if record.tasks_after >= mitigations.EVALUATE_AFTER and record.adjustment != Adjustment.NONE:
                rate_before = record.failures_before / record.tasks_before if record.tasks_before else 0.0
                rate_after = record.failures_after / record.tasks_after
                fell = stats.rate_fell(record.failures_before, record.tasks_before, record.failures_after,
                                       record.tasks_after)
                record.state = MitigationState.EFFECTIVE if fell else MitigationState.INEFFECTIVE
                record.concluded_at = at
                decisions.append({"kind": "mitigation_judged", "mitigation": record, "state": record.state,
                                  "rate_before": round(rate_before, 4), "rate_after": round(rate_after, 4)})

    def _activate_mitigations(self, at, decisions):
        """mitigations.activate: every frequent failure pattern without a mitigation in force."""
        for type_index in range(len(self.types)):
            for class_index in range(len(CLASSES)):
                if self.failures[type_index, class_index] < mitigations.MIN_FAILURES:
                    continue
                if self.failure_confidence(type_index, class_index) < mitigations.FREQUENT:
                    continue
                latest = self.latest_mitigation.get((type_index, class_index))
                if latest is not None and (latest.state in mitigations.APPLYING
                                           or latest.concluded_at >= at - mitigations.RETRY_AFTER.total_seconds()):
                    continue
                recent = np.array(self.type_index[type_index][-mitigations.BEFORE_WINDOW:])
                failed = (self.classes[recent] >> class_index) & 1 == 1
                name, adjustment = CLASSES[class_index], engine.ADJUSTMENTS[CLASSES[class_index]]
                tasks = np.bincount(self.strategy[recent], minlength=ACTIONS)
                failures = np.bincount(self.strategy[recent][failed], minlength=ACTIONS)
                # mitigations.implicated_strategies also asks for IMPLICATING_MARGIN over the other strategies'
                # pooled rate; this older rule is kept so a seed makes the same history (the margin would
                # change about one activation in five).
                implicated = [strategy for strategy in range(ACTIONS)
                              if failures[strategy] >= mitigations.MIN_IMPLICATING
                              and failures[strategy] / tasks[strategy] >= mitigations.FREQUENT]
                if adjustment != "none" and not implicated:
                    continue  # spread over every strategy: changing strategy would not help
                record = MitigationRecord(
                    type_index, class_index, adjustment, implicated, len(recent), int(failed.sum()), at, self.done,
                    (int(self.type_tasks[type_index]), int(self.type_failures[type_index, class_index])))
                self.mitigations.append(record)
                self.latest_mitigation[(type_index, class_index)] = record
                self.events.append((at, "learning:mitigation_applied", record))
                decisions.append({"kind": "mitigation_applied", "mitigation": record,
                                  "task_type": self.types[type_index], "failure_class": name,
                                  "adjustment": record.adjustment,
                                  "strategies": [STRATEGIES[strategy] for strategy in implicated]})
                if record.adjustment == "none":
                    self.raise_alert("failure:needs_operator", Severity.INFO,
                                     f"{self.agent_id}: frequent {name} failures in {self.types[type_index]} need an "
                                     "operator", {"task_type": self.types[type_index], "failure_class": name,
                                                  "frequency": int(self.failures[type_index, class_index])},
                                     f"failure:{self.agent_id}:{self.types[type_index]}:{name}", at)

    def _start_test(self, at, decisions):
        """improvement.start_tests, for the agent's main task type."""
        intent = self._due_intent(at)
        if intent is None:
            return []
        ty, task_type = self.main, self.types[self.main]
        control = self.applied[ty][0] if ty in self.applied else None
        why, treatment = self._opportunity(ty, control, at)
        control_label = "the learned policy" if control is None else STRATEGIES[control]
        treatment_name = STRATEGIES[treatment]
        if why is not None:
            source, created_by, mde = "loop", "improvement cycle", self.world.loop_mde
        else:
            source, created_by, mde = "admin", roles.OPERATOR, stats.DEFAULT_MDE
            why = f"An operator's question: is {treatment_name} better than {control_label} for {task_type}?"
        base_rate = self._base_rate(ty, control)
        horizon = stats.samples_per_arm(mde, stats.DEFAULT_POWER, base_rate=base_rate)
        delta = self._intended_delta(intent)
        test = Test(ty, task_type, intent, delta, control, treatment,
                    f"{task_type}: {treatment_name} vs {'learned policy' if control is None else control_label}", why,
                    source, created_by, mde, horizon, at, control_share=0.62 if intent == "srm" else 0.5,
                    slower=intent == "guardrail")
        test.transitions.append(("", ABTestState.DRAFT, f"created by {source}", at))
        self._transition(test, ABTestState.RUNNING, f"horizon {horizon} tasks per arm (control success rate "
                         f"{base_rate:.2f})", at)
        self.tests.append(test)
        self.running = test
        if intent == "aborted":
            self.agenda.append((at + self.rng.uniform(4, 10) * HOUR, "abort", test))
            self.agenda.sort(key=lambda item: item[0])
        if source != "loop":
            return []
        control_name = None if control is None else STRATEGIES[control]
        decisions.append({"kind": "abtest_created", "abtest": test, "task_type": task_type, "control": control_name,
                          "treatment": treatment_name})
        return [{"task_type": task_type, "control": control_name, "candidate": treatment_name, "why": why}]

    def _due_intent(self, at):
        """The intent of the test to start now, or None: none while the main task
        type has a test running or monitored; a final test when its time has
        come, else the next intent once the pause since the last test is over."""
        if self.running is not None or any(test.type_index == self.main for test in self.monitoring):
            return None
        if self.final is not None and at >= self.final[0]:
            intent, self.final = self.final[1], None
            return intent
        if self.next_test_at is not None and at >= self.next_test_at and (
                self.final is None or at < self.final[0] - REGULAR_CUTOFF):
            return next(self.intents)
        return None

    def _base_rate(self, type_index, control):
        """abtests._base_rate: the control strategy's success rate, or the task type's under the policy."""
        patterns = [control] if control is not None else range(ACTIONS)
        uses = sum(self.pattern_uses[type_index * ACTIONS + strategy] for strategy in patterns)
        return sum(self.pattern_wins[type_index * ACTIONS + strategy] for strategy in patterns) / uses \
            if uses >= 10 else 0.5

    def _intended_delta(self, intent):
        """The treatment's success over the control's that the intent sets up (every draw is made, whichever)."""
        rng = self.rng
        return {"kept": rng.uniform(0.10, 0.16), "reverted": rng.uniform(0.10, 0.16), "inconclusive": 0.0,
                "control_wins": -rng.uniform(0.12, 0.18), "guardrail": rng.uniform(0.12, 0.16), "srm": 0.05,
                "aborted": 0.02, "running": 0.0, "monitoring": 0.12}[intent]

    def _opportunity(self, type_index, control, at):
        """improvement.find_opportunities for one task type: (why, candidate) when
        always using a strategy looks better off-policy than the type's latest
        tasks; otherwise (None, the best-looking candidate) for an operator's test."""
        first = max(0, self.done - improvement.EXPERIENCES)
        mine = np.flatnonzero(self.type[first:self.done] == type_index)[::-1] + first  # newest first
        strategies, successes, propensities = self.strategy[mine], self.success[mine], self.propensity[mine]
        current = float(successes[:improvement.RECENT].mean()) if len(mine) else 0.0
        recent = {(test.control, test.treatment) for test in self.tests
                  if test.type_index == type_index and test.created_at >= at - improvement.RETEST_AFTER.total_seconds()}
        estimates = []
        for candidate in range(ACTIONS):
            if candidate == control or (control, candidate) in recent:
                continue
            estimate, effective = stats.off_policy_value(strategies == candidate, successes, propensities)
            if estimate is not None:
                estimates.append((estimate, effective, candidate))
        found = [item for item in estimates if item[1] >= improvement.MIN_EVIDENCE
                 and item[0] - current >= improvement.SUCCESS_MARGIN]
        if not found:
            fallback = max(estimates) if estimates else (0, 0, (control or 0) + 1 if control != ACTIONS - 1 else 0)
            return None, fallback[2]
        estimate, effective, candidate = max(found)
        return (f"always using {STRATEGIES[candidate]} would succeed in about {estimate:.0%} of "
                f"{self.types[type_index]} tasks (off-policy estimate from {len(mine)} logged tasks, effective "
                f"sample {effective:.0f}) against {current:.0%} now; testing whether it is really better"), candidate

    def _schedule_next_test(self, at):
        """A pause after a test, longer in a longer history: about six tests per agent in 90 days."""
        self.next_test_at = at + self.rng.uniform(0.5, 1.5) * max(0.5, self.world.slots / 24 / 8) * DAY

    def _transition(self, test, to_state, reason, at, **fields):
        test.transitions.append((test.state, to_state, reason, at))
        test.state = to_state
        for name, value in fields.items():
            setattr(test, name, value)
        if to_state in abtests.EVENTS:
            self.events.append((at, abtests.EVENTS[to_state], (test, to_state, reason)))

    def _finish_test(self, test, state, reason, at, decided=False):
        fields = {"decision": reason, "finished_at": at}
        if decided:
            fields["decided_at"] = at
        self._transition(test, state, reason, at, **fields)
        if test is self.running:
            self.running = None
        self._schedule_next_test(at)

    def _count_arms(self, span, test):
        """Book tasks already run into the running test's arms."""
        arm = self.arm[span]
        for role in (0, 1):
            mine = arm == role
            counts = test.arms[role]
            counts[0] += int(mine.sum())
            counts[1] += int(self.success[span][mine].sum())
            counts[2] += int(self.ms[span][mine].sum())
            counts[3] += int((self.errors[span][mine] > 0).sum())
        test.treatment_scores.extend(self.score[span][arm == 1].tolist())

    def _review(self, h, at, decisions):
        """abtests.review for the agent's running test (one look per slot)."""
        test = self.running
        if test is None:
            return
        control, treatment = (stats.ArmStats(n, wins, float(ms), errors) for n, wins, ms, errors in test.arms)
        srm = stats.srm_p_value([control.n, treatment.n], [0.5, 0.5])
        verdict = stats.decide(control, treatment, test.horizon, previous_p=test.verdict.get("p_min", 1.0))
        test.looks.append((self.world.start + h * HOUR, control.n, treatment.n, verdict.interval[0],
                           verdict.interval[1], verdict.p_value, srm, verdict.outcome, at))
        test.verdict = {
            "outcome": verdict.outcome, "interval": [round(value, 4) for value in verdict.interval],
            "p_value": verdict.p_value,
            "p_min": min(verdict.p_value, test.verdict.get("p_min", 1.0)) if verdict.sequential
            else test.verdict.get("p_min", 1.0),
            "sequential": verdict.sequential, "blocked_by": list(verdict.blocked_by), "srm_p_value": srm,
            "control": control.to_dict(), "treatment": treatment.to_dict(),
        }
        test.decision = verdict.reason
        control_name = test.control_label
        if srm < stats.SRM_P and control.n + treatment.n >= abtests.SRM_MIN_SAMPLES:
            reason = abtests.mismatch(srm, control.n, treatment.n)
            self._finish_test(test, ABTestState.ABORTED, reason, at, decided=True)
            self.raise_alert("abtest:srm", Severity.WARNING, lambda: f"A/B test {test.pk} of {self.agent_id} aborted: "
                             "sample ratio mismatch", test.verdict, lambda: f"abtest:srm:{test.pk}", at)
            decisions.append({"kind": "abtest_decided", "abtest": test, "outcome": ABTestState.ABORTED})
            return
        if verdict.outcome == "running":
            return
        state, reason, to_apply = abtests.conclusion(verdict, control_name)
        if to_apply:
            self._transition(test, ABTestState.WINNER, reason, at, decision=reason, decided_at=at)
            self._apply(test, at)
            decisions.append({"kind": "abtest_decided", "abtest": test, "outcome": ABTestState.APPLIED})
            return
        self._finish_test(test, state, reason, at, decided=True)
        decisions.append({"kind": "abtest_decided", "abtest": test, "outcome": state})

    def _apply(self, test, at):
        before = self.capture(VersionReason.BEFORE_APPLY, at)
        previous = self.applied.get(test.type_index)
        self.applied[test.type_index] = (test.treatment, ("abtest", test))
        self.changed = True
        scores = np.array(test.treatment_scores)
        previous_name = STRATEGIES[previous[0]] if previous else "the learned policy"
        self._transition(test, ABTestState.APPLIED, f"{STRATEGIES[test.treatment]} applied for {test.task_type} "
                         f"(was {previous_name})", at, previous_strategy=previous[0] if previous else None,
                         version_before=before, applied_at=at,
                         reference_score=float(scores.mean()) if len(scores) else None,
                         reference_spread=stats.standard_error(scores) if len(scores) else 0.0)
        self._transition(test, ABTestState.MONITORING, f"watched for {ABTest.MONITOR_DAYS} days with the safeguard's "
                         "rule", at, monitor_until=at + ABTest.MONITOR_DAYS * DAY)
        if test.intent == "reverted":
            test.degrade_at = at + self.rng.uniform(8, 30) * HOUR
        self.running = None
        self.monitoring.append(test)

    def _monitor(self, at, decisions):
        """abtests.monitor: the safeguard's rule on each applied winner's task type."""
        for test in list(self.monitoring):
            first = int(np.searchsorted(self.times, test.applied_at))
            window = [task for task in self.type_index[test.type_index][-GUARD_WINDOW:] if task >= first]
            if test.reference_score is not None and len(window) >= GUARD_WINDOW:
                state, change = stats.judge(self.score[window], test.reference_score, test.reference_spread,
                                                GUARD_THRESHOLD, GUARD_Z)
                test.degraded_checks = test.degraded_checks + 1 if state == SafeguardState.DEGRADED else 0
                test.verdict = {**test.verdict, "monitoring": {
                    "state": str(state), "change_pct": round(change, 2), "checks": test.degraded_checks,
                    "at": iso(at)}}
                if test.degraded_checks >= GUARD_CONSECUTIVE:
                    self._revert(test, f"degraded {change:+.1f}% against the winning arm's score on "
                                       f"{test.degraded_checks} checks in a row", at)
                    decisions.append({"kind": "applied_strategy", "abtest": test, "outcome": ABTestState.REVERTED})
                    continue
            if at >= test.monitor_until:
                self._transition(test, ABTestState.KEPT, f"healthy through {ABTest.MONITOR_DAYS} days of monitoring",
                                 at, finished_at=at)
                self.monitoring.remove(test)
                self._schedule_next_test(at)
                decisions.append({"kind": "applied_strategy", "abtest": test, "outcome": ABTestState.KEPT})

    def _revert(self, test, reason, at):
        source = self.applied.get(test.type_index, (None, None))[1]
        if source == ("abtest", test):
            if test.previous_strategy is not None:
                self.applied[test.type_index] = (test.previous_strategy, ("revert", test))
            else:
                del self.applied[test.type_index]
            self.changed = True
        self._transition(test, ABTestState.REVERTED, reason, at, finished_at=at)
        self.monitoring.remove(test)
        self._schedule_next_test(at)
        self.raise_alert("abtest:reverted", Severity.WARNING,
                         f"{self.agent_id}: {STRATEGIES[test.treatment]} reverted for {test.task_type}; {reason}",
                         test.verdict.get("monitoring", {}), lambda: f"abtest:reverted:{test.pk}", at)

    # --- sharing -----------------------------------------------------------------------

    def pattern_numbers(self, pattern):
        return pattern_numbers(self.pattern_uses[pattern], self.pattern_wins[pattern])

    def _share(self, h, at):
        """sharing.publish for this agent: share every pattern not shared yet that sharing.qualifies."""
        for pattern, uses in enumerate(self.pattern_uses):
            if uses < sharing.SHARE_MIN_USES or pattern in self.active_shared:
                continue  # the quick test first: most patterns are shared already or have too few uses
            numbers = self.pattern_numbers(pattern)
            # What qualifies reads of a LearnedPattern.
            learned = SimpleNamespace(uses=uses, successes=self.pattern_wins[pattern], confidence=numbers["confidence"])
            if sharing.qualifies(learned)[0]:
                type_index, strategy = divmod(pattern, ACTIONS)
                shared = Shared(self.agent_id, type_index, self.types[type_index], strategy, h, at,
                                self.live.label if self.live else "", numbers,
                                uuid.UUID(bytes=self.rng.bytes(16), version=4), published_numbers=dict(numbers))
                self.shared.append(shared)
                self.active_shared[pattern] = shared
                self.events.append((at, "learning:pattern_shared", shared))
