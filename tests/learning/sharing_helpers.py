"""Building learned and shared patterns for the sharing tests."""

from learning import sharing
from learning.core import engine
from learning.models import LearnedPattern, LearningProfile, SharedPattern
from qefleet.memory.fleet import issue_token, register_agent
from tests.conftest import AgentClient
from tests.learning.helpers import strategy

PATTERN = "unit-tests:parallel-execution"


def learned(agent, uses=40, successes=39, confidence=None, task_type="unit-tests", strategy_name="parallel-execution"):
    """An agent's pattern with the given record; its confidence follows the
    engine's rule unless given (to probe one sharing bar at a time)."""
    if confidence is None:
        confidence = engine.pattern_confidence(uses, successes)
    LearningProfile.objects.get_or_create(agent=agent)
    pattern, _ = LearnedPattern.objects.update_or_create(
        agent=agent, task_type=task_type, strategy=strategy(strategy_name),
        defaults={"uses": uses, "successes": successes, "confidence": confidence})
    return pattern


def shared_by(agent, **fields):
    """What `agent` has shared: published now, from a pattern it learned."""
    learned(agent, **fields)
    sharing.publish()
    return SharedPattern.objects.get(source=agent, status="active",
                                     task_type=fields.get("task_type", "unit-tests"))


def swarm_agent(agent_id, team="core", swarm="qe", **profile):
    """A registered agent with a token and, when given, its learning settings."""
    agent, _ = register_agent(agent_id, "test-agent", team, swarm)
    agent.client = AgentClient(issue_token(agent)[1])
    if profile:
        LearningProfile.objects.create(agent=agent, **profile)
    return agent
