"""Audit values cannot forge log lines, and any text can be stored."""

import pytest

from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_it_encodes_line_breaks_and_nul_everywhere():
    AuditEvent.record("ag\nent", "access_denied", "memory:p/a\r\nb\x00c", reason="no\x00pe\nINFO forged")
    event = AuditEvent.objects.get()
    assert event.actor == "ag\\nent"
    assert event.target == "memory:p/a\\r\\nb\\x00c"
    assert event.detail["reason"] == "no\\x00pe\\nINFO forged"


def test_it_keeps_numbers_as_numbers():
    AuditEvent.record("alice", "rate_limited", "agent:alice", limit=3000)
    assert AuditEvent.objects.get().detail == {"limit": 3000}
