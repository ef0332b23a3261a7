"""The report and the decision log refuse a malformed period with 400 and
say why; a well-formed one is used."""

import pytest
from django.utils import timezone

from tests.conftest import make_agent

pytestmark = pytest.mark.django_db

URLS = ("/ops/report/", "/ops/report.csv", "/ops/report.json", "/ops/agents/alice/report/",
        "/ops/agents/alice/report.json", "/ops/agents/alice/decisions.csv")


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("query, message", [
    ("days=abc", "days must be a whole number from 1 to 90."),
    ("days=91", "days must be a whole number from 1 to 90."),
    ("start=2026-11-01", "Give both start and end (YYYY-MM-DD)."),
    ("days=7&start=2026-11-01&end=2026-11-02", "Give either days or start and end, not both."),
    ("start=2026-11-01&end=nope", "end must be a date, YYYY-MM-DD."),
])
def test_it_answers_400_to_a_malformed_period(viewer, url, query, message):
    make_agent("alice")
    response = viewer.get(f"{url}?{query}")
    assert response.status_code == 400 and message in response.content.decode()  # on a styled page


def test_it_uses_the_dates_asked_for(viewer):
    make_agent("alice")
    today = timezone.now().date()
    start = today.replace(day=1) if today.day > 1 else today
    response = viewer.get(f"/ops/agents/alice/report.json?start={start}&end={today}")
    assert response.status_code == 200
    data = response.json()
    assert data["start"].startswith(f"{start}T00:00:00") and data["days"] == (today - start).days + 1
