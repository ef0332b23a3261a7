"""The access policy as a written matrix, asserted cell by cell through the API.

Actors (team, swarm):
  owner        t1, s1   owns the entry
  same_team    t1, s1
  other_team   t2, s1   another team of the same swarm
  same_swarm   --, s1   no team
  other_swarm  t3, s2   the owner's team name, in another swarm
  system       system agent, s1
  blocked      t1, s1   blocked on the entry, though granted everything
  granted      t3, s1   granted read and write on the entry
  anonymous    an invalid token

Each cell lists (read, write, delete, share, query, clear):
  read/write/delete/share: the HTTP status; 404 when the caller may not read
  query: whether the entry appears in a prefix query of its partition
  clear: the status of clearing the partition
Reads and queries name the entry's swarm (`?swarm=s1`); writes, deletes and
shares address the caller's own swarm's key space, where an agent of another
swarm finds no such entry and writes one of its own (201).
"""

import pytest

from qefleet.memory.models import MemoryACL, MemoryEntry
from tests.conftest import AgentClient, make_agent

OPS = ("read", "write", "delete", "share", "query", "clear")

ALL = (200, 200, 204, 200, True, 403)
SYSTEM = (200, 200, 204, 200, True, 200)
HIDDEN = (404, 404, 404, 404, False, 403)
ANON = (401, 401, 401, 401, 401, 401)
MEMBER = (200, 200, 403, 200, True, 403)  # team or swarm member: read, write, share
GRANTED = (200, 200, 403, 403, True, 403)  # read + write by grant
READER = (200, 403, 403, 200, True, 403)  # public: read and share
OUTSIDER = (404, 201, 404, 404, False, 403)  # another swarm: its own key space
OUTSIDE_READER = (200, 201, 404, 404, True, 403)  # another swarm reading a public entry

EXPECTED = {
    "private": {
        "owner": ALL, "same_team": HIDDEN, "other_team": HIDDEN, "same_swarm": HIDDEN, "other_swarm": OUTSIDER,
        "system": SYSTEM, "blocked": HIDDEN, "granted": GRANTED, "anonymous": ANON,
    },
    "team": {
        "owner": ALL, "same_team": MEMBER, "other_team": HIDDEN, "same_swarm": HIDDEN, "other_swarm": OUTSIDER,
        "system": SYSTEM, "blocked": HIDDEN, "granted": GRANTED, "anonymous": ANON,
    },
    "swarm": {
        "owner": ALL, "same_team": MEMBER, "other_team": MEMBER, "same_swarm": MEMBER, "other_swarm": OUTSIDER,
        "system": SYSTEM, "blocked": HIDDEN, "granted": MEMBER, "anonymous": ANON,
    },
    "public": {
        "owner": ALL, "same_team": READER, "other_team": READER, "same_swarm": READER, "other_swarm": OUTSIDE_READER,
        "system": SYSTEM, "blocked": HIDDEN, "granted": MEMBER, "anonymous": ANON,
    },
    "system": {
        "owner": HIDDEN, "same_team": HIDDEN, "other_team": HIDDEN, "same_swarm": HIDDEN, "other_swarm": OUTSIDER,
        "system": SYSTEM, "blocked": HIDDEN, "granted": HIDDEN, "anonymous": ANON,
    },
}

ACTORS = {
    "owner": ("t1", "s1", False),
    "same_team": ("t1", "s1", False),
    "other_team": ("t2", "s1", False),
    "same_swarm": ("", "s1", False),
    "other_swarm": ("t3", "s2", False),
    "system": ("", "s1", True),
    "blocked": ("t1", "s1", False),
    "granted": ("t3", "s1", False),
}

PARTITION = "matrix"
KEY = "phase2/shared/entry"
CELLS = [(level, actor, op) for level in EXPECTED for actor in EXPECTED[level] for op in OPS]


def test_the_matrix_covers_every_cell():
    assert len(CELLS) == 5 * 9 * 6
    assert all(len(row) == 9 for row in EXPECTED.values())


@pytest.fixture
def world(db):
    agents = {name: make_agent(name.replace("_", "-"), team, swarm, system)
              for name, (team, swarm, system) in ACTORS.items()}
    make_agent("zed", "t9", "s1")
    return agents


def make_entry(agents, level):
    owner = agents["owner"]
    entry = MemoryEntry(partition=PARTITION, key=KEY, value={"n": 1})
    entry.assign_owner(owner, level)
    entry.save()
    MemoryACL.objects.create(
        entry=entry,
        granted_permissions={"granted": ["read", "write"], "blocked": ["read", "write", "delete", "share"]},
        blocked_agents=["blocked"],
    )
    return entry


def perform(client, op):
    path = f"memory/{PARTITION}/{KEY}"
    if op == "read":
        return client.get(f"{path}?swarm=s1").status_code
    if op == "write":
        return client.put(path, {"value": {"n": 2}}).status_code
    if op == "delete":
        return client.delete(path).status_code
    if op == "share":
        body = {"grants": {"granted": ["read", "write"], "blocked": ["read", "write", "delete", "share"],
                           "zed": ["read"]}, "blocks": ["blocked"]}
        return client.put(f"acl/{PARTITION}/{KEY}", body).status_code
    if op == "query":
        response = client.get(f"memory/{PARTITION}?prefix=phase2/&swarm=s1")
        if response.status_code != 200:
            return response.status_code
        return KEY in [item["key"] for item in response.json()["items"]]
    if op == "clear":
        return client.delete(f"memory/{PARTITION}").status_code
    raise AssertionError(op)


@pytest.mark.parametrize("level,actor,op", CELLS)
def test_it_enforces_the_written_policy(world, level, actor, op):
    entry = make_entry(world, level)
    before = MemoryEntry.objects.values().get(pk=entry.pk)
    before_acl = MemoryACL.objects.values("granted_permissions", "blocked_agents").get(entry=entry)
    client = AgentClient("qef_not-a-real-token") if actor == "anonymous" else world[actor].client

    expected = EXPECTED[level][actor][OPS.index(op)]
    assert perform(client, op) == expected

    # A denied operation changes nothing.
    if expected in (401, 403, 404) and op in ("write", "delete", "share", "clear"):
        assert MemoryEntry.objects.values().get(pk=entry.pk) == before
        assert MemoryACL.objects.values("granted_permissions", "blocked_agents").get(entry=entry) == before_acl
