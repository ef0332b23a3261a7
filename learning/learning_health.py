"""Is it learning? Each agent's and the fleet's learning diagnostics over the
last tasks of each agent, read from the logs the loop already keeps
(executions, their decisions, Q entries, pattern imports), and the alert
raised when an agent stops learning. The arithmetic is
`learning.core.learning_health`; this module reads the rows.

The window is the last WINDOW_TASKS tasks of each agent (by its task
number), whenever they ran; executions are kept 90 days.
"""

from django.db import connection
from django.db.models import Q

from qefleet.memory.models import Agent

from . import alerts
from .core import learning_health as math
from .models import Decision, Execution, LearningProfile, PatternImport, QEntry, Severity

WINDOW_TASKS = 100
WINDOW_LIMITS = (10, 1000)  # what the API accepts as ?tasks=
# The source a decision names when an imported swarm pattern chose it (services._policy).
IMPORTED_SOURCE = "shared"

NO_PATTERNS = {"imports": 0, "imports_unused": 0, "shared_imports": 0, "shared_unused": 0}

ALERT_KINDS = {
    math.NOT_LEARNING: (
        "learning:values_static",
        "{agent} is not learning: {changed} of its last {outcomes} outcomes moved its learned values",
    ),
    math.MOSTLY_DEFAULT: (
        "learning:mostly_default",
        "{agent} mostly falls back to the catalog default: {default} of its last {decisions} decisions",
    ),
}


def _window_sql():
    execution, profile, decision, entry = (
        model._meta.db_table for model in (Execution, LearningProfile, Decision, QEntry)
    )
    # CROSS JOIN fixes the join order on SQLite (PostgreSQL plans it freely):
    # each profile, then its agent's window on the (agent, sequence) index.
    # The ORM's join starts from the executions, and SQLite then scanned all
    # of them (131 ms for 17,000; executions are kept 90 days).
    return f"""
        SELECT e.agent_id, p.enabled, e.task_type, e.state_key, e.strategy_id, d.fallback, d.explored,
               COUNT(*), SUM(CASE WHEN e.success THEN 1 ELSE 0 END),
               SUM(CASE WHEN e.q_value <> e.previous_q THEN 1 ELSE 0 END),
               EXISTS (SELECT 1 FROM {entry} q WHERE q.agent_id = e.agent_id AND q.task_type = e.task_type
                                                   AND q.state_key = e.state_key)
        FROM {profile} p CROSS JOIN {execution} e LEFT JOIN {decision} d ON d.id = e.decision_id
        WHERE e.agent_id = p.agent_id AND e.sequence > p.task_count - %s
        GROUP BY e.agent_id, p.enabled, e.task_type, e.state_key, e.strategy_id, d.fallback, d.explored"""


def task_groups(tasks=WINDOW_TASKS):
    """The last `tasks` tasks of every agent as `math.TaskGroup`s, and whether
    each agent's learning is on: one grouped query."""
    groups, enabled = [], {}
    with connection.cursor() as cursor:
        cursor.execute(_window_sql(), [tasks])
        for agent, on, task_type, state_key, strategy, source, explored, n, successes, changed, learned in cursor:
            explored = None if explored is None else bool(explored)
            groups.append(
                math.TaskGroup(
                    agent, task_type, state_key, strategy, source, explored, n, successes, changed, bool(learned)
                )
            )
            enabled[agent] = bool(on)
    return groups, enabled


def pattern_use(groups, agent=None):
    """{agent pk: {"imports", "imports_unused", "shared_imports", "shared_unused"}}:
    the pattern imports an agent took in and how many of them no decision of
    its window came from (no task of the window chosen by an imported pattern
    of that task type and strategy), and the same for the imports of the
    patterns it shared. One query; `agent` narrows it to one agent's."""
    used = {(group.agent, group.task_type, group.strategy) for group in groups if group.source == IMPORTED_SOURCE}
    imports = PatternImport.objects.all()
    if agent is not None:
        imports = imports.filter(Q(agent=agent) | Q(shared__source=agent))
    use = {}
    for importer, source, task_type, strategy in imports.values_list(
        "agent", "shared__source", "shared__task_type", "shared__strategy"
    ):
        unused = (importer, task_type, strategy) not in used
        taken, given = use.setdefault(importer, dict(NO_PATTERNS)), use.setdefault(source, dict(NO_PATTERNS))
        taken["imports"] += 1
        taken["imports_unused"] += unused
        given["shared_imports"] += 1
        given["shared_unused"] += unused
    return use


class FleetHealth:
    """Every agent's learning figures and verdict over the window, and the fleet's."""

    def __init__(self, tasks=WINDOW_TASKS):
        self.tasks = tasks
        self.groups, self.enabled = task_groups(tasks)
        self.best = math.best_known(self.groups)
        by_agent = {}
        for group in self.groups:
            by_agent.setdefault(group.agent, []).append(group)
        self.agents = {pk: math.health(items, self.best) for pk, items in by_agent.items()}
        self.fleet = math.health(self.groups, self.best)

    def of(self, agent_pk):
        return self.agents.get(agent_pk, math.LearningHealth())

    def verdict(self, agent_pk):
        return math.verdict(self.of(agent_pk), self.enabled.get(agent_pk, True))


def figures_dict(figures, tasks):
    """Figures over a window (one agent's, or the fleet's) as plain numbers."""
    regret = figures.regret
    return {
        "window_tasks": tasks,
        "outcomes": figures.outcomes,
        "outcomes_changing_values": figures.changed,
        "changed_share": figures.changed_share,
        "states_seen": figures.states_seen,
        "states_learned": figures.states_learned,
        "coverage": figures.coverage,
        "decisions": figures.decisions,
        "own": figures.own,
        "borrowed": figures.borrowed,
        "default": figures.default,
        "explored": figures.explored,
        "own_share": figures.own_share,
        "borrowed_share": figures.borrowed_share,
        "default_share": figures.default_share,
        "explored_share": figures.explored_share,
        "borrowed_sources": [
            {"source": source, "words": math.source_words(source), "decisions": count}
            for source, count in sorted(figures.borrowed_by_source.items(), key=lambda item: -item[1])
        ],
        "regret": None
        if regret is None
        else {
            "per_task": regret.per_task,
            "low": regret.low,
            "high": regret.high,
            "tasks": regret.tasks,
            "cells": regret.cells,
            "min_strategy_tasks": math.MIN_STRATEGY_TASKS,
        },
    }


def as_dict(figures, verdict, tasks, patterns):
    """One agent's figures, verdict and pattern use, as the API and the pages give them."""
    return {
        **figures_dict(figures, tasks),
        "verdict": verdict,
        "verdict_words": math.VERDICT_WORDS[verdict],
        "patterns": patterns,
        "thresholds": {
            "min_outcomes": math.MIN_OUTCOMES,
            "min_changed_share": math.MIN_CHANGED_SHARE,
            "max_default_share": math.MAX_DEFAULT_SHARE,
            "min_strategy_tasks": math.MIN_STRATEGY_TASKS,
        },
    }


def agent_learning_health(agent, tasks=WINDOW_TASKS):
    """One agent's "Is it learning?" figures, its regret measured against the
    whole fleet's best known strategies (so the fleet's window is read)."""
    fleet = FleetHealth(tasks)
    return as_dict(
        fleet.of(agent.pk),
        fleet.verdict(agent.pk),
        tasks,
        pattern_use(fleet.groups, agent).get(agent.pk, dict(NO_PATTERNS)),
    )


def watch_learning():
    """Raise an alert for each agent whose learning stopped (its values do not
    move, or most decisions fall back to the catalog default) over the last
    WINDOW_TASKS tasks, and resolve those whose learning resumed. Agents too
    early to judge or with learning off keep their open alert as it is: an
    operator turned learning off, or nothing new was measured."""
    fleet = FleetHealth()
    firing, undecided, judged = [], [], 0
    for agent_pk, figures in fleet.agents.items():
        verdict = fleet.verdict(agent_pk)
        if verdict in (math.TOO_EARLY, math.LEARNING_OFF):
            undecided += [f"{kind}:{agent_pk}" for kind, _ in ALERT_KINDS.values()]
            continue
        judged += 1
        if verdict in ALERT_KINDS:
            firing.append(_raise(agent_pk, verdict, figures))
    for kind, _ in ALERT_KINDS.values():
        alerts.resolve_cleared(
            kind, firing + undecided, f"Resolved: over its last {WINDOW_TASKS} tasks the agent is learning again."
        )
    return {"learning_judged": judged, "not_learning": len(firing)}


def _raise(agent_pk, verdict, figures):
    agent = Agent.objects.get(pk=agent_pk)
    kind, summary = ALERT_KINDS[verdict]
    dedup_key = f"{kind}:{agent_pk}"
    numbers = {
        "window_tasks": WINDOW_TASKS,
        "outcomes": figures.outcomes,
        "changed": figures.changed,
        "decisions": figures.decisions,
        "default": figures.default,
    }
    alerts.raise_alert(
        kind,
        Severity.WARNING,
        summary.format(agent=agent.agent_id, **numbers),
        numbers,
        agent=agent,
        dedup_key=dedup_key,
    )
    return dedup_key
