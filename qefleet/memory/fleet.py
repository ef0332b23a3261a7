"""Registering agents, and the demo fleet of the 17 QE agents."""

import getpass

from django.db import transaction

from .models import Agent, AgentToken

SWARM = "qe-fleet"

# team -> agents, as the fleet's README groups them.
DEMO_TEAMS = {
    "core-testing": ["test-generator", "test-executor", "coverage-analyzer", "quality-gate", "quality-analyzer"],
    "performance-security": ["performance-tester", "security-scanner"],
    "strategic-planning": ["requirements-validator", "production-intelligence", "fleet-commander"],
    "advanced-testing": [
        "deployment-readiness",
        "regression-risk-analyzer",
        "test-data-architect",
        "api-contract-validator",
        "flaky-test-hunter",
    ],
    "specialized": ["visual-tester", "chaos-engineer"],
}
SYSTEM_AGENT = "fleet-commander"

CAPABILITIES = {
    "test-generator": ["property-based-tests", "edge-case-generation"],
    "test-executor": ["parallel-execution", "retry", "multi-framework"],
    "coverage-analyzer": ["coverage-gaps", "sublinear-analysis"],
    "quality-gate": ["go-no-go", "risk-assessment", "policy-validation"],
    "quality-analyzer": ["quality-metrics", "trend-analysis"],
    "performance-tester": ["load-testing", "stress-testing", "bottleneck-detection"],
    "security-scanner": ["sast", "dast", "dependency-scanning"],
    "requirements-validator": ["testability-checks", "bdd-scenarios"],
    "production-intelligence": ["incident-replay", "rum-analysis"],
    "fleet-commander": ["coordination", "topology", "resource-allocation"],
    "deployment-readiness": ["release-risk-score", "go-no-go"],
    "regression-risk-analyzer": ["change-impact", "test-selection"],
    "test-data-architect": ["synthetic-data", "schema-aware-generation"],
    "api-contract-validator": ["openapi", "graphql", "grpc", "breaking-changes"],
    "flaky-test-hunter": ["flakiness-detection", "stabilisation"],
    "visual-tester": ["visual-regression", "accessibility", "cross-browser"],
    "chaos-engineer": ["fault-injection", "blast-radius-control"],
}


def register_agent(agent_id, type, team="", swarm="", is_system=False, capabilities=None):
    """Create or update an agent's registry record: (agent, created)."""
    return Agent.objects.update_or_create(
        agent_id=agent_id,
        defaults={"type": type, "team": team, "swarm": swarm, "is_system": is_system,
                  "capabilities": capabilities or []},
    )


@transaction.atomic
def register_demo_fleet(prefix=""):
    """Register the 17 agents in one swarm; returns how many were new. With a
    prefix, a fleet of their own (ids and swarm prefixed) with the same teams."""
    created_count = 0
    for team, agent_ids in DEMO_TEAMS.items():
        for agent_id in agent_ids:
            _, created = register_agent(
                prefix + agent_id, agent_id, team, prefix + SWARM, agent_id == SYSTEM_AGENT, CAPABILITIES[agent_id]
            )
            created_count += created
    return created_count


def issue_token(agent, label="", expires_at=None, actor="system", request=None):
    """A new token for `agent`, audited as issued by `actor`; the plain text is returned once."""
    return AgentToken.issue(agent, label, expires_at, actor, request)


def cli_actor():
    """Who the audit trail names for a management command: the OS user running it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in the environment or passwd
        return "cli"
