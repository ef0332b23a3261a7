"""Read-side summaries of an agent's learning."""

from . import shadow
from .learning_health import agent_learning_health
from .models import AppliedStrategy, LearnedPattern, QEntry, Safeguard
from .services import profile_for
from .tracker import improvement_report


def learning_status(agent, tasks):
    profile = profile_for(agent)
    report = improvement_report(agent, profile)
    applied = AppliedStrategy.objects.filter(agent=agent).select_related("strategy").order_by("task_type")
    return {
        "agent_id": agent.agent_id,
        "enabled": profile.enabled,
        "mode": profile.mode,
        "shadow": shadow.figures(agent, profile),
        "exploration_rate": profile.exploration_rate,
        "tasks": profile.task_count,
        "q_entries": QEntry.objects.filter(agent=agent).count(),
        "patterns": LearnedPattern.objects.filter(agent=agent).count(),
        "score": report["current"],
        "baseline": report["baseline"],
        "improvement": report["improvement"],
        "target_achieved": report["target_achieved"],
        "policy_version": profile.policy_version,
        "safeguard": guard.to_dict() if (guard := Safeguard.objects.filter(agent=agent).first()) else None,
        "applied_strategies": [
            {"task_type": item.task_type, "strategy": item.strategy.name, "source": item.source} for item in applied
        ],
        "learning_health": agent_learning_health(agent, tasks),
    }
