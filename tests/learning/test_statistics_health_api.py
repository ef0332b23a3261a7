"""The statistics health API: an agent reads its own drills, a system agent its swarm's and the fleet's."""

from learning import drills
from learning.models import DrillTrigger

from .drill_helpers import logged_history


def test_an_agent_reads_its_newest_drills(alice):
    assert alice.client.get("agents/alice/statistics-health").status_code == 404
    logged_history(alice)
    run = drills.drill(alice, DrillTrigger.COMMAND)
    body = alice.client.get("agents/alice/statistics-health").json()
    assert body["seed"] == run.seed and body["logged_tasks"] == 400
    assert {item["rule"] for item in body["health"]} >= {"A/B false winners", "Safeguard detection (10 points)"}
    assert body["figures"]["aa"]["runs"] == run.figures["aa"]["runs"]


def test_an_agent_cannot_read_anothers(alice, bob):
    logged_history(bob)
    drills.drill(bob, DrillTrigger.COMMAND)
    assert alice.client.get("agents/bob/statistics-health").status_code == 404


def test_a_system_agent_reads_its_swarms_fleet_figures(root, alice, bob, dave):
    for index, agent in enumerate((alice, bob, dave)):
        logged_history(agent, seed=index)
        drills.drill(agent, DrillTrigger.COMMAND)
    body = root.client.get("statistics-health").json()
    assert [item["agent"] for item in body["agents"]] == ["alice", "bob"]  # dave is of another swarm
    assert body["fleet"]["agents"] == 2
    assert root.client.get("agents/bob/statistics-health").status_code == 200


def test_only_system_agents_read_the_fleet(alice):
    response = alice.client.get("statistics-health")
    assert response.status_code == 403
