"""AgentPast's versions, safeguard and rollbacks: the role's incidents and
the operators' agenda, state versions (captured, made live, restored,
pruned), the safeguard's checks and the rollbacks they or operators make."""

import json
import math

from learning import mitigations, safeguard
from learning.core import stats
from learning.harness.simulator import STRATEGIES
from learning.models import (
    ABTestState,
    AlertState,
    LiveCause,
    MitigationState,
    SafeguardState,
    Severity,
    SharedPatternStatus,
    StateVersion,
    VersionReason,
)
from qefleet.memory import roles

from . import constants
from .constants import (
    ACTIONS,
    GUARD_CONSECUTIVE,
    GUARD_EVERY,
    GUARD_THRESHOLD,
    GUARD_WINDOW,
    GUARD_Z,
    HOUR,
    KNOWN_GOOD_AFTER,
    NEXT_KEYS,
    STATE_KEYS,
    STATES,
)
from .records import RollbackRecord, Version


class Rollbacks:
    """Versions, the safeguard and rollbacks of one agent's past (mixed into AgentPast)."""

    def _versions_state(self):
        """No version yet, no safeguard reference, no rollback and nothing on the operators' agenda."""
        self.versions, self.live, self.live_since = [], None, 0
        self.live_periods = []
        self.clean_since_live = True
        self.reference = None
        self.reference_score, self.reference_spread = None, 0.0
        self.watching = False
        self.degraded_run = 0
        self.rollbacks = []
        self.agenda = []

    # --- the role's incidents and the operators' agenda ----------------------------------

    def _plan_role(self, end):
        """The dips and the operators' agenda of the agent's role (an automatic or a manual rollback)."""
        start, span = self.world.start, self.world.slots * HOUR
        if self.role == "auto_rollback":
            at = start + math.floor(0.4 * self.world.slots) * HOUR + 20 * 60
            self.dips.append([at, at + 8 * HOUR, 0.5])
            self.watching, self.watch_from = True, at
        elif self.role == "rollback_and_undo":
            at = start + math.floor(0.72 * self.world.slots) * HOUR + 15 * 60
            self.dips.append([at - 16 * HOUR, at, 0.12])
            self.agenda += [(at, "rollback", (at - 16 * HOUR, "score slipping for a day; back to the last "
                                              "known-good version while we look")),
                            (at + 2 * HOUR, "undo", None), (at + 3 * HOUR, "re_enable", roles.ADMIN)]
        elif self.role == "rollback_pending":
            at = max(end - 36 * HOUR, start + 0.5 * span) + 10 * 60
            self.dips.append([at - 8 * HOUR, at, 0.18])
            self.agenda.append((at, "rollback", (at - 8 * HOUR, "flaky results since this morning; learning "
                                                 "stays off until the staging database is fixed")))
        self.agenda.sort(key=lambda item: item[0])

    def _dip(self, at):
        """How much success the dips take at `at`."""
        return sum(depth for start, end, depth in self.dips if start <= at < end)

    def _agenda(self, kind, detail, at):
        """An operator's action when it is due: roll back, undo, re-enable learning, abort a test."""
        if kind == "rollback":
            dip_start, reason = detail
            target = next((version for version in reversed(self.versions)
                           if version.known_good and version.created_at < dip_start), None)
            if target is None or not self.enabled:
                return
            record = self.roll_back(target, at, automatic=False, actor=roles.OPERATOR, reason=reason, numbers={})
            self.audit.append((at + 1, roles.OPERATOR, "rollback", f"agent:{self.agent_id}",
                               lambda: {"to": record.to_version.label, "from_": record.from_version.label,
                                        "reason": reason}))
        elif kind == "undo" and self.rollbacks and not self.enabled:  # the rollback happened and is live
            last = self.rollbacks[-1]
            record = self.roll_back(last.from_version, at, automatic=False, actor=roles.OPERATOR,
                                    reason="", numbers={}, undo_of=last)
            self.audit.append((at + 1, roles.OPERATOR, "undo_rollback", f"agent:{self.agent_id}",
                               lambda: {"rollback": last.pk, "to": record.to_version.label}))
        elif kind == "re_enable" and not self.enabled:
            self.enabled = True
            self.audit.append((at, detail, "re_enable_learning", f"agent:{self.agent_id}", dict))
        elif kind == "abort" and detail is self.running and self.enabled:
            why = "the staging environment was unstable while the test ran"
            self._finish_test(detail, ABTestState.ABORTED, f"aborted by {roles.OPERATOR}: {why}", at, decided=True)
            self.audit.append((at, roles.OPERATOR, "abort_abtest", lambda: f"abtest:{detail.pk}",
                               lambda: {"agent": self.agent_id, "reason": why}))

    # --- versions ------------------------------------------------------------------------

    def capture(self, reason, at):
        """versions.capture: a version of the learned state (none at a cycle when nothing changed)."""
        if reason == VersionReason.CYCLE and not self.changed:
            return None
        first = max(0, self.done - constants.EXPERIENCES)
        newest_first = slice(self.done - 1, first - 1 if first else None, -1)
        experiences = [[task + 1, self.types[t], STATE_KEYS[s], STRATEGIES[a], r, NEXT_KEYS[s]]
                       for task, t, s, a, r in zip(range(self.done - 1, first - 1, -1),
                                                   self.type[newest_first].tolist(), self.state[newest_first].tolist(),
                                                   self.strategy[newest_first].tolist(),
                                                   self.reward[newest_first].tolist())]
        version = Version(number=len(self.versions) + 1, reason=reason, created_at=at, task_count=self.done,
                          score=self.current()[0], learned=(list(self.q), list(self.visits), list(self.wins),
                                                            self.learned),
                          applied=dict(self.applied), experiences=json.dumps(experiences, separators=(",", ":")))
        self.versions.append(version)
        self._make_live(version, at, LiveCause.CAPTURED)
        self.changed = False
        return version

    def _make_live(self, version, at, cause):
        if self.live_periods:
            self.live_periods[-1][2] = at
        self.live_periods.append([version, at, None, cause])
        self.live, self.live_since = version, self.done
        self.clean_since_live = True

    def restore(self, version, at):
        """versions.restore: the version's learned state and applied strategies become live."""
        q, visits, wins, learned = version.learned
        self.q, self.visits, self.wins, self.learned = list(q), list(visits), list(wins), learned
        uses, pattern_wins = [0] * len(self.pattern_uses), [0] * len(self.pattern_wins)
        for group, count in enumerate(visits):
            pattern = group // (STATES * ACTIONS) * ACTIONS + group % ACTIONS
            uses[pattern] += count
            pattern_wins[pattern] += wins[group]
        self.pattern_uses, self.pattern_wins = uses, pattern_wins
        self.applied = dict(version.applied)
        self._make_live(version, at, LiveCause.RESTORED)
        self.changed = True  # the next scheduled capture differs from the latest version

    def _prune_versions(self):
        """versions.prune: the latest KEEP_LATEST, plus known-good, pinned and live ones."""
        known = [version for version in self.versions if version.known_good]
        if known:
            middle = self.world.start + 0.33 * self.world.slots * HOUR
            min(known, key=lambda version: abs(version.created_at - middle)).pinned = True
        latest = set(self.versions[-StateVersion.KEEP_LATEST:])
        kept = [version for version in self.versions
                if version in latest or version.known_good or version.pinned or version is self.live]
        self.versions = kept
        self.live_periods = [period for period in self.live_periods if period[0] in set(kept)]

    # --- the safeguard -------------------------------------------------------------------

    def policy_scores(self, lo, hi, count):
        """Scores of the last `count` tasks the agent's own policy chose in
        lo..hi-1: the safeguard leaves tasks an A/B test fixed to the test."""
        lo = max(lo, hi - 20 * count)  # while both arms are fixed, the policy still runs the other task types
        return self.score[lo:hi][self.fallback[lo:hi] != 2][-count:]

    def _mark_known_good(self, h):
        """At the end of slot h: the live version becomes known good (and the
        safeguard's reference) after KNOWN_GOOD_AFTER healthy tasks."""
        live = self.live
        if live is None or not self.enabled:
            return
        healthy = self.clean_since_live and not self._dip(self.world.start + h * HOUR)
        if healthy and self.done - self.live_since >= KNOWN_GOOD_AFTER:
            if not live.known_good or live is self.reference:
                live.known_good = True
                self.reference = live
                scores = self.policy_scores(self.live_since, self.done, safeguard.REFERENCE_TASKS)
                self.reference_score, self.reference_spread = float(scores.mean()), stats.standard_error(scores)

    def _check(self, task):
        """The safeguard's check after `task`; True when it rolled back."""
        scores = self.policy_scores(0, task + 1, GUARD_WINDOW)
        if self.reference_score is None or len(scores) < GUARD_WINDOW:
            return False
        state, change = stats.judge(scores, self.reference_score, self.reference_spread, GUARD_THRESHOLD, GUARD_Z)
        self.degraded_run = self.degraded_run + 1 if state == SafeguardState.DEGRADED else 0
        if self.degraded_run < GUARD_CONSECUTIVE or not self.enabled or self.reference is None:
            return False
        self._count(slice(self.done, task + 1), self.running if self.enabled else None)
        numbers = {"window_score": round(float(scores.mean()), 4), "reference": round(self.reference_score, 4),
                   "change_pct": round(change, 2), "checks": self.degraded_run, "tasks": task + 1}
        at = float(self.times[task])
        self.roll_back(self.reference, at, automatic=True, actor="",
                       reason=f"{self.degraded_run} consecutive degraded checks", numbers=numbers)
        self.degraded_run = 0
        self.watching = False
        for dip in self.dips:
            if dip[0] <= at < dip[1]:
                dip[1] = at  # the known-good state is back
        self.agenda.append((at + self.rng.uniform(2, 5) * HOUR, "re_enable", roles.ADMIN))
        self.agenda.sort(key=lambda item: item[0])
        return True

    def _final_checks(self):
        """The safeguard's checks over the kept executions: their responses and the final state."""
        first = max(0, self.n - constants.EXPERIENCES)
        self.check_states = {}
        state, change, degraded, healthy = SafeguardState.INSUFFICIENT, None, 0, 0
        for task in range(first, self.n):
            if (task + 1) % GUARD_EVERY == 0:
                scores = self.policy_scores(0, task + 1, GUARD_WINDOW)
                if self.reference_score is None or len(scores) < GUARD_WINDOW:
                    state, change = SafeguardState.INSUFFICIENT, None
                else:
                    state, change = stats.judge(scores, self.reference_score, self.reference_spread,
                                                    GUARD_THRESHOLD, GUARD_Z)
                degraded = degraded + 1 if state == SafeguardState.DEGRADED else 0
                healthy = healthy + 1 if state == SafeguardState.OK else 0
            self.check_states[task] = {"state": str(state), "consecutive_degraded": degraded,
                                       "change_pct": None if change is None else round(change, 2)}
        self.guard = {"state": str(state), "change_pct": change, "consecutive_degraded": degraded,
                      "healthy_checks": healthy, "checked_at": float(self.times[-1])}

    # --- rollbacks -----------------------------------------------------------------------

    def roll_back(self, target, at, automatic, actor, reason, numbers, undo_of=None):
        """safeguard.roll_back: capture, restore, freeze, record, end experiments, quarantine."""
        before = self.capture(VersionReason.BEFORE_ROLLBACK, at)
        self.restore(target, at + 0.05)
        self.enabled = False
        record = RollbackRecord(before, target, automatic, actor, reason, numbers, at, self.done, undo_of)
        self.rollbacks.append(record)
        if self.running is not None:
            self._finish_test(self.running, ABTestState.ABORTED, f"aborted: {self.agent_id} was rolled back to "
                              f"{target.label}", at, decided=True)
        for test in [test for test in self.monitoring if test.applied_at > target.created_at]:
            self.monitoring.remove(test)
            self._transition(test, ABTestState.REVERTED, f"reverted: {self.agent_id} was rolled back to "
                             f"{target.label}", at, finished_at=at)
        for _, (kind, test) in self.applied.values():
            if kind == "abtest" and test.state == ABTestState.REVERTED:
                self._transition(test, ABTestState.MONITORING, f"applied again: {self.agent_id} returned to "
                                 f"{target.label}, which applies it", at, finished_at=None)
                self.monitoring.append(test)
        self._schedule_next_test(at)
        for mitigation in self.mitigations:  # mitigations.withdraw_since
            if mitigation.state in mitigations.APPLYING and mitigation.activated_at > target.created_at:
                mitigation.state, mitigation.concluded_at = MitigationState.WITHDRAWN, at
        for shared in [item for item in self.active_shared.values() if item.published_at > target.created_at]:
            shared.status, shared.quarantined_at = SharedPatternStatus.QUARANTINED, at
            shared.quarantine_reason = f"{self.agent_id} was rolled back to {target.label}"
            shared.quarantined_slot = int((at - self.world.start) // HOUR)
            shared.numbers = self.pattern_numbers(shared.type_index * ACTIONS + shared.strategy)
            del self.active_shared[shared.type_index * ACTIONS + shared.strategy]
        self.reference, self.reference_score, self.reference_spread = target, target.score, 0.0
        self.events.append((at, "learning:rollback", record))
        if not automatic:  # safeguard.roll_back alerts on its own rollbacks only
            return record
        alert = self.raise_alert("safeguard:rollback", Severity.HIGH,
                                 f"{self.agent_id} rolled back automatically to {target.label}; learning is disabled",
                                 {**numbers, "from": before.label, "to": target.label},
                                 lambda: f"rollback:{record.pk}", at)
        healthy = self.done + GUARD_CONSECUTIVE * GUARD_EVERY
        if healthy < self.n:  # resolve_healthy after three ok checks, whether learning is on or not
            alert.state, alert.resolved_at = AlertState.RESOLVED, float(self.times[healthy])
            alert.note = "Resolved by healthy safeguard checks."
        return record
