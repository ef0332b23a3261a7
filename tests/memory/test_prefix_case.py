"""Prefixes match case for case, on SQLite (whose LIKE ignores ASCII case)
as on PostgreSQL: both backends answer the same."""

import pytest

pytestmark = pytest.mark.django_db


def test_an_entry_query_matches_the_prefix_case_for_case(alice):
    for key in ("Notes/upper", "notes/lower", "NOTES/shout"):
        alice.client.put(f"memory/default/{key}", {"value": 1})
    items = alice.client.get("memory/default?prefix=notes/").json()["items"]
    assert [item["key"] for item in items] == ["notes/lower"]


def test_a_hint_query_matches_the_prefix_case_for_case(alice):
    for key in ("Coverage/upper", "coverage/lower"):
        alice.client.post("hints", {"key": key, "value": 1})
    items = alice.client.get("hints?prefix=coverage/").json()["items"]
    assert [item["key"] for item in items] == ["coverage/lower"]
