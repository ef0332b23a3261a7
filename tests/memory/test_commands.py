import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from qefleet.memory.fleet import DEMO_TEAMS, SYSTEM_AGENT, SWARM
from qefleet.memory.models import Agent, AgentToken

pytestmark = pytest.mark.django_db


def last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_register_agent_prints_a_working_token_last(capsys):
    call_command("register_agent", "probe", "--type", "test-executor", "--team", "core", "--swarm", "qe")
    token = last_line(capsys)
    assert AgentToken.authenticate(token) == Agent.objects.get(agent_id="probe", team="core", swarm="qe")


def test_register_agent_marks_system_agents(capsys):
    call_command("register_agent", "boss", "--type", "fleet-commander", "--system", "--swarm", "qe")
    assert Agent.objects.get(agent_id="boss").is_system


def test_register_agent_refuses_a_system_agent_without_a_swarm():
    with pytest.raises(CommandError, match="--system needs --swarm"):
        call_command("register_agent", "boss", "--type", "fleet-commander", "--system")
    assert not Agent.objects.exists()


def test_register_agent_rejects_bad_ids():
    with pytest.raises(CommandError):
        call_command("register_agent", "bad id", "--type", "x")
    assert not Agent.objects.exists()


def test_issue_token_adds_a_token_and_keeps_the_old_one(alice, capsys):
    call_command("issue_token", "alice", "--expires-in-days", "30")
    new = last_line(capsys)
    assert AgentToken.authenticate(new) == alice
    assert AgentToken.authenticate(alice.token) == alice
    assert AgentToken.objects.get(prefix=new[4:12]).expires_at is not None


def test_issue_token_needs_a_registered_agent():
    with pytest.raises(CommandError):
        call_command("issue_token", "ghost")


def test_revoke_token_revokes(alice):
    call_command("revoke_token", "alice")
    assert AgentToken.authenticate(alice.token) is None


def test_load_demo_registers_the_fleet_once(capsys):
    call_command("load_demo")
    call_command("load_demo")
    agents = Agent.objects.all()
    assert agents.count() == 17 == sum(len(team) for team in DEMO_TEAMS.values())
    assert set(agents.values_list("swarm", flat=True)) == {SWARM}
    assert list(agents.filter(is_system=True).values_list("agent_id", flat=True)) == [SYSTEM_AGENT]
    assert agents.get(agent_id="chaos-engineer").team == "specialized"


def test_load_demo_creates_one_login_per_role_only_once(capsys):
    call_command("load_demo")
    out = capsys.readouterr().out
    for role in ("viewer", "operator", "admin"):
        user = User.objects.get(username=role)
        assert user.groups.filter(name=role).exists()
        password = next(line.split()[1] for line in out.splitlines() if line.strip().startswith(role + " "))
        assert user.check_password(password)
    assert User.objects.get(username="admin").is_superuser
    assert not User.objects.get(username="operator").is_staff
    call_command("load_demo")
    assert "Demo logins" not in capsys.readouterr().out


def test_the_roles_exist_with_their_permissions():
    viewer = Group.objects.get(name="viewer")
    admin = Group.objects.get(name="admin")
    assert viewer.permissions.filter(codename="view_memoryentry").exists()
    assert not viewer.permissions.filter(codename="change_memoryentry").exists()
    assert admin.permissions.filter(codename="change_memoryacl").exists()
    assert Group.objects.filter(name="operator").exists()


def test_the_roles_cover_the_learning_app():
    assert Group.objects.get(name="viewer").permissions.filter(codename="view_qentry").exists()
    admin = Group.objects.get(name="admin")
    assert admin.permissions.filter(codename="change_strategy").exists()
    assert not admin.permissions.filter(codename="change_qentry").exists()
