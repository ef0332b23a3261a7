"""The fleet-level steps: plan the world and each agent's part in it, then,
after every agent's past is simulated, what happens between agents and
operators: imports of shared patterns, a quarantine by hand, the operators'
handling of alerts and the audit trail of it all."""

import math

import numpy as np
from django.conf import settings

from learning import sharing
from learning.core import engine, stats
from learning.harness.simulator import STRATEGIES, FleetEnvironment
from learning.models import AlertState, ImportStatus, Severity, SharedPatternStatus
from qefleet.memory import roles
from qefleet.memory.fleet import DEMO_TEAMS
from qefleet.memory.models import DAY

from . import constants
from .constants import ACTIONS, HOUR, INTENT_WEIGHTS, INTENTS, NEWCOMERS_JOIN, ROLES, events_since
from .past import AgentPast
from .records import AlertRecord, World, iso, pattern_numbers, utc


def demo_fleet():
    return [(agent_id, team) for team, members in DEMO_TEAMS.items() for agent_id in members]


def _allocate(total, weights):
    """Split `total` in proportion to `weights` (largest remainder), exactly."""
    weights = np.asarray(weights, dtype=float)
    shares = total * weights / weights.sum()
    counts = np.floor(shares).astype(np.int64)
    counts[np.argsort(-(shares - counts))[:total - counts.sum()]] += 1
    return counts


def plan(days, events, samples, seed, now):
    """The world, and each agent's task counts per slot, role, test intents and incidents."""
    fleet = demo_fleet()
    slots = days * 24
    end = math.floor((now - 120) / HOUR) * HOUR  # the last slot boundary, a little in the past
    start = end - slots * HOUR
    world = World(seed, now, start, slots, FleetEnvironment(dict(fleet), seed),
                  capture_every=round(min(2.5, max(1.0, days / 36)) * 24),
                  loop_mde=min(stats.MDE_RANGE[1], settings.ABTEST_MDE_POINTS / 100))
    rng = np.random.default_rng([seed, 0])
    boundaries = start + HOUR * np.arange(slots + 1)
    recent = boundaries[:-1] >= events_since(now)   # slots whose tasks all fall in the events' 30 days
    # Every snapshot of the 30 days gives an improvement event; training events
    # are drawn from the tasks of those days, so the fleet works fast enough for them.
    rate = max(constants.BASE_TASKS_PER_HOUR, 1.1 * events / (len(fleet) * max(1, recent.sum())),
               1.1 * samples / (len(fleet) * slots))
    hour_of_day = (boundaries[:-1] // HOUR % 24).astype(int)
    busy = np.where((hour_of_day >= 8) & (hour_of_day < 20), 1.4, 0.6)
    counts = [np.maximum(1, rng.poisson(rate * rng.uniform(0.85, 1.15) * busy)) for _ in fleet]
    largest = sorted(DEMO_TEAMS, key=lambda team: -len(DEMO_TEAMS[team]))[:2]
    newcomers = [[agent for agent, _ in fleet].index(rng.choice(DEMO_TEAMS[team])) for team in largest]
    order = [int(index) for index in rng.permutation(len(fleet)) if index not in newcomers]
    roles_ = {index: role for index, role in zip(order, ROLES)}
    roles_.update((index, "newcomer") for index in newcomers)
    for index, role in roles_.items():
        if role == "newcomer":
            counts[index][:int(NEWCOMERS_JOIN * slots)] = 0
    capacity = np.array([int(c[recent].sum()) for c in counts])
    snapshots = sum(int(((c > 0) & (boundaries[1:] > events_since(now))).sum()) for c in counts)
    training = max(0, events - snapshots)
    if capacity.sum() < training:
        raise RuntimeError("The simulated fleet has too few tasks for the events asked for.")
    training_split = _allocate(training, capacity) if training else np.zeros(len(fleet), dtype=np.int64)
    sample_split = _allocate(samples, [c.sum() for c in counts]) if samples else np.zeros(len(fleet), dtype=np.int64)
    calm = [int(index) for index in order[len(ROLES):]]
    incidents = {}
    for index in calm[:4]:
        at = start + rng.uniform(0.15, 0.85) * slots * HOUR
        incidents[index] = [(at, at + rng.uniform(6, 24) * HOUR, rng.uniform(0.06, 0.1))]
    finals = [index for index in range(len(fleet)) if roles_.get(index, "").startswith("final")]
    regular = [index for index in range(len(fleet)) if index not in finals] + finals
    pasts = []
    for index, (agent_id, team) in enumerate(fleet):
        intents = _intents(INTENTS[regular.index(index) % len(INTENTS)], np.random.default_rng([seed, index, 5]))
        pasts.append(AgentPast(world, index, agent_id, team, counts[index], roles_.get(index), intents,
                               incidents.get(index, []), int(training_split[index]), int(sample_split[index])))
    return world, pasts


def _intents(first, rng):
    yield first
    names, weights = list(INTENT_WEIGHTS), list(INTENT_WEIGHTS.values())
    while True:
        yield names[rng.choice(len(names), p=weights)]


def _confidence_history(source, shared):
    """The shared pattern's refreshed confidence and success rate at each slot boundary."""
    pattern = shared.type_index * ACTIONS + shared.strategy
    uses, wins = source.history_uses[:, pattern], source.history_wins[:, pattern]
    confidence = np.array([engine.pattern_confidence(u, w) if u else 0.0 for u, w in zip(uses.tolist(), wins.tolist())])
    return confidence, np.where(uses > 0, wins / np.maximum(uses, 1), 0.0)


def share_imports(world, pasts):
    """sharing.import_shared and decide_probation over the fleet's history: [(agent, shared, status,
    confidence, imported_at, decided_at)]; the pattern_shared events learn their targets."""
    imports = []
    slots = world.slots + 1
    for source in pasts:
        for shared in source.shared:
            confidence, success_rate = _confidence_history(source, shared)
            until = shared.quarantined_slot if shared.quarantined_slot is not None else slots
            live = np.zeros(slots, dtype=bool)
            live[shared.published_slot:until] = True
            for other in pasts:
                if other is source:
                    continue
                if shared.task_type in other.types:
                    pattern = other.types.index(shared.task_type) * ACTIONS + shared.strategy
                    uses, wins = other.history_uses[:, pattern], other.history_wins[:, pattern]
                else:
                    uses = wins = np.zeros(slots, dtype=np.int64)
                eligible = live & other.history_enabled & (confidence > sharing.SHARE_CONFIDENCE)
                if not eligible.any():
                    continue
                slot = int(np.argmax(eligible))
                if uses[slot] >= sharing.SHARE_MIN_USES:
                    continue  # it has evidence of its own
                imported_at = shared.published_at + 1 if slot == shared.published_slot else (
                    world.start + slot * HOUR + source.offsets[slot][2] + 1)
                if slot == shared.published_slot:
                    shared.targets.append(other.agent_id)
                status, decided_at = ImportStatus.PROBATION, None
                first_confidence = float(confidence[slot]) * sharing.PROBATION_DISCOUNT
                value = first_confidence
                settled = np.flatnonzero((uses[slot:until] >= sharing.CONFIRM_USES))
                if len(settled):
                    at_slot = slot + int(settled[0])
                    own = wins[at_slot] / uses[at_slot]
                    decided_at = max(imported_at + 1, world.start + at_slot * HOUR + source.offsets[at_slot][2] + 2)
                    if own >= success_rate[at_slot] - sharing.CONFIRM_TOLERANCE:
                        status, value = ImportStatus.ACTIVE, float(confidence[at_slot])
                    else:
                        status = ImportStatus.REJECTED
                if shared.status == SharedPatternStatus.QUARANTINED:
                    status = ImportStatus.QUARANTINED
                imports.append((other.agent_id, shared, status, value, imported_at, decided_at))
    return imports


def quarantine_by_hand(world, pasts, audit):
    """An admin quarantines the fleet's first shared pattern still active at 70 % of the period."""
    at = world.start + 0.7 * world.slots * HOUR
    candidates = [(shared.published_at, source, shared) for source in pasts for shared in source.shared
                  if shared.published_at < at and shared.status == SharedPatternStatus.ACTIVE]
    if not candidates:
        return
    _, source, shared = min(candidates, key=lambda item: item[0])
    slot = int((at - world.start) // HOUR)
    shared.status, shared.quarantined_at, shared.quarantined_slot = SharedPatternStatus.QUARANTINED, at, slot
    shared.quarantine_reason = f"quarantined by {roles.ADMIN} from the admin"
    pattern = shared.type_index * ACTIONS + shared.strategy
    uses, wins = int(source.history_uses[slot, pattern]), int(source.history_wins[slot, pattern])
    shared.numbers = pattern_numbers(uses, wins)
    audit.append((at, roles.ADMIN, "quarantine_shared_pattern", f"shared_pattern:{shared.uuid}",
                  {"pattern": f"{shared.task_type}:{STRATEGIES[shared.strategy]}", "source": shared.agent}))


NOTES = {
    "abtest:reverted": "Looking at the runs since the switch.",
    "abtest:srm": "The agent's task router dropped treatment reports; fixed in release 2.4.1.",
    "failure:needs_operator": "Fixture refresh scheduled with the team.",
}


def operators_at_work(world, pasts):
    """What operators did with the alerts (acknowledged, silenced, resolved), the
    scheduler alert of a cluster restart, and the audit trail of it all."""
    rng = np.random.default_rng([world.seed, 3])
    audit = [entry for past in pasts for entry in past.audit]
    alerts = [alert for past in pasts for alert in past.alerts]
    for kind in ("abtest:reverted", "abtest:srm", "failure:needs_operator"):
        mine = sorted((alert for alert in alerts if alert.kind == kind), key=lambda alert: alert.created_at)
        for position, alert in enumerate(mine):
            at = min(world.now - 60, alert.created_at + rng.uniform(0.5, 20) * HOUR)
            age = position / len(mine)  # 0 for the oldest
            if kind == "abtest:reverted":
                action = "resolve" if position < len(mine) - 1 else "acknowledge"
            elif kind == "failure:needs_operator":
                action = "resolve" if age < 0.35 else "acknowledge" if age < 0.65 else (
                    "silence" if position % 2 else "leave")
            else:
                action = "acknowledge"
            if action == "resolve":
                _resolve(alert, max(at, alert.last_seen_at + 60), "Checked and dealt with; nothing more to do.", audit)
            elif action == "acknowledge":
                _acknowledge(alert, at, NOTES[kind], audit)
            elif action == "silence":
                alert.silenced_until = world.now + rng.uniform(1, 3) * DAY
                audit.append((at, roles.OPERATOR, "alert_silence", alert,
                              {"note": "", "until": iso(alert.silenced_until)}))
    job = "qefleet.learning.improvement_cycle"
    at = world.start + 0.6 * world.slots * HOUR
    silent = utc(at - 2.2 * HOUR)
    stale = AlertRecord("", "schedule:stale", Severity.WARNING,
                        f"Scheduled job {job} is silent since {silent:%Y-%m-%d %H:%M} UTC (twice its 60-minute "
                        "interval); is a cluster running?", {"job": job, "reason": "silent"}, f"schedule:{job}", at,
                        occurrences=7, last_seen_at=at + 30 * 60)
    _resolve(stale, at + 40 * 60, "The task cluster was down for a host reboot; restarted.", audit)
    alerts.append(stale)
    return alerts, audit


def _acknowledge(alert, at, note, audit):
    """alerts.acknowledge of a firing alert; one the safeguard resolved later keeps its resolution."""
    alert.acknowledged_by, alert.acknowledged_at = roles.OPERATOR, at
    if alert.resolved_at is None:
        alert.state, alert.note = AlertState.ACKNOWLEDGED, note
    audit.append((at, roles.OPERATOR, "alert_acknowledge", alert, {"note": note, "until": None}))


def _resolve(alert, at, note, audit):
    alert.state, alert.resolved_at, alert.note = AlertState.RESOLVED, at, note
    audit.append((at, roles.OPERATOR, "alert_resolve", alert, {"note": note, "until": None}))
