"""Bad input gets a 4xx JSON error naming the problem, and changes nothing."""

import json

import pytest

from qefleet.memory.models import Event, Hint, MemoryEntry

pytestmark = pytest.mark.django_db


def nested(depth):
    return "[" * (depth - 1) + "{}" + "]" * (depth - 1)


BAD_BODIES = {
    "nan": (b'{"value": NaN}', 400, "NaN"),
    "infinity": (b'{"value": Infinity}', 400, "Infinity"),
    "negative infinity": (b'{"value": -Infinity}', 400, "Infinity"),
    "overflowing float": (b'{"value": 1e999}', 400, "finite"),
    "duplicate keys": (b'{"value": 1, "value": 2}', 400, "twice"),
    "too deep": (('{"value": ' + nested(33) + "}").encode(), 400, "deeper"),
    "very deep": (b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "deeper"),
    "huge integer": (b'{"value": ' + b"9" * 5000 + b"}", 400, "JSON"),
    "invalid utf-8": (b'\xff\xfe{"value": 1}', 400, "UTF-8"),
    "truncated": (b'{"value": ', 400, "JSON"),
    "nul in a string": (b'{"value": "a\\u0000b"}', 400, "NUL"),
    "lone surrogate": (b'{"value": "\\ud800"}', 400, "surrogate"),
    "surrogate in a key": (b'{"value": {"\\udfff": 1}}', 400, "surrogate"),
    "null value": (b'{"value": null}', 422, "value"),
    "missing value": (b"{}", 422, "value"),
    "not an object": (b"[1, 2]", 422, ""),
    "unknown field": (b'{"value": 1, "team": "x"}', 422, "team"),
    "negative ttl": (b'{"value": 1, "ttl_seconds": -1}', 422, "ttl_seconds"),
    "bad level": (b'{"value": 1, "access_level": "root"}', 422, "access_level"),
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_it_rejects_bad_bodies(alice, name):
    body, status, words = BAD_BODIES[name]
    response = alice.client.put("memory/default/k", body)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert words in response.json()["message"]
    assert not MemoryEntry.with_expired.exists()


def test_it_accepts_32_levels_of_nesting(alice):
    assert alice.client.put("memory/default/k", '{"value": ' + nested(31) + "}").status_code == 201


def test_it_requires_a_json_content_type(alice):
    response = alice.client.put("memory/default/k", '{"value": 1}', content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert not MemoryEntry.objects.exists()


def test_it_limits_the_body_per_endpoint(alice):
    payload = {"type": "t", "payload": {"blob": "x" * 70_000}}
    response = alice.client.post("events", payload)
    assert response.status_code == 413
    assert "65536" in response.json()["message"]
    assert not Event.objects.exists()
    # The memory store takes larger values.
    assert alice.client.put("memory/default/k", {"value": "x" * 70_000}).status_code == 201
    assert alice.client.put("memory/default/k2", {"value": "x" * 300_000}).status_code == 413


def test_it_rejects_an_oversized_body_past_the_global_limit(alice):
    assert alice.client.put("memory/default/k", {"value": "x" * 2_000_000}).status_code == 413


@pytest.mark.parametrize(
    "key,words",
    [
        ("x" * 513, "513 characters"),
        ("a%00b", "U+0000"),
        ("a%07b", "U+0007"),
        ("a/../b", "segments"),
        ("a//b", "segments"),
        ("a/", "segments"),
        ("50%25", "'%'"),
        ("a%E2%80%8Bb", "U+200B"),
    ],
)
def test_it_rejects_malformed_keys(alice, key, words):
    response = alice.client.put(f"memory/default/{key}", {"value": 1})
    assert response.status_code == 400
    assert response.json()["field"] == "key"
    assert words in response.json()["message"]
    assert not MemoryEntry.objects.exists()


def test_it_rejects_a_path_that_is_not_utf8(alice):
    response = alice.client.put("memory/default/a%ED%A0%80b", {"value": 1})
    assert response.status_code == 400
    assert not MemoryEntry.objects.exists()


@pytest.mark.parametrize("partition", ["bad partition", "-x", "x" * 65, "ünï"])
def test_it_rejects_malformed_partitions(alice, partition):
    response = alice.client.put(f"memory/{partition}/k", {"value": 1})
    assert response.status_code == 400
    assert response.json()["field"] == "partition"


def test_it_rejects_a_bad_hint_key_in_the_body(alice):
    response = alice.client.post("hints", {"key": "a/../b", "value": 1})
    assert response.status_code == 400 and response.json()["field"] == "key"
    assert not Hint.objects.exists()


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "cursor=%%%", "cursor=bm90LWEtbnVtYmVy",
                                   "cursor=wrI"])  # base64 of "²", which str.isdigit() takes for a digit
def test_it_rejects_bad_paging_parameters(alice, query):
    assert alice.client.get(f"events?{query}").status_code in (400, 422)


def test_errors_are_json_with_a_request_id_header(alice):
    response = alice.client.put("memory/default/k", b"{")
    assert json.loads(response.content)["error"] == "invalid_json"
    assert len(response["X-Request-ID"]) == 32
