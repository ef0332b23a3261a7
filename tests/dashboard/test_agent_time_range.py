"""The agent page's time range (?range=1h|24h|7d|30d|90d): one control for
every chart of the page and its window's A/B tests, kept in the URL and in
the page's other forms."""

import json
from datetime import timedelta

import pytest

from learning.models import Snapshot

pytestmark = pytest.mark.django_db


def score_points(client, query):
    return len(json.loads(client.get(f"/ops/agents/alice/{query}").context["charts"]["score"])["data"][0]["x"])


def test_every_chart_follows_the_range(viewer, history):
    older = Snapshot.objects.order_by("created_at")[:2]
    Snapshot.objects.filter(pk__in=[snapshot.pk for snapshot in older]).update(
        created_at=older[0].created_at - timedelta(hours=3))
    assert score_points(viewer, "?range=24h") == 6
    assert score_points(viewer, "?range=1h") == 4
    charts = viewer.get("/ops/agents/alice/?range=1h").context["charts"]
    assert len(json.loads(charts["components"])["data"][0]["x"]) == 4


def test_an_empty_range_says_when_the_latest_snapshot_was(viewer, history):
    Snapshot.objects.update(created_at=Snapshot.objects.latest("created_at").created_at - timedelta(hours=2))
    page = viewer.get("/ops/agents/alice/?range=1h").content.decode()
    assert "No snapshot in the last hour: the latest is from " in page and "UTC; pick a longer range." in page


def test_it_offers_every_range_and_keeps_the_chosen_one(viewer, history):
    page = viewer.get("/ops/agents/alice/").content.decode()
    picker = page[page.index('<select id="time-range" name="range">'):]
    picker = picker[:picker.index("</select>")]
    assert [option.split('"')[1] for option in picker.split("<option value=")[1:]] == ["1h", "24h", "7d", "30d", "90d"]
    assert '<option value="7d" selected>last 7 days</option>' in picker
    page = viewer.get("/ops/agents/alice/?range=30d").content.decode()
    assert '<option value="30d" selected>last 30 days</option>' in page
    assert "A/B tests active in the last 30 days" in page
    assert '<input type="hidden" name="range" value="30d">' in page  # the Q-table search keeps it
