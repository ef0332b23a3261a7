"""Who may read the report and the decision log: every role (viewer and up);
anonymous users are sent to log in, users without a role refused."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import make_agent
from tests.dashboard.helpers import client_for

pytestmark = pytest.mark.django_db

URLS = ("/ops/report/", "/ops/report.csv", "/ops/report.json", "/ops/agents/alice/report/",
        "/ops/agents/alice/report.csv", "/ops/agents/alice/report.json", "/ops/agents/alice/decisions.csv")


@pytest.fixture(autouse=True)
def alice(db):
    return make_agent("alice")


@pytest.mark.parametrize("url", URLS)
def test_it_sends_anonymous_users_to_log_in(url):
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", URLS)
def test_it_refuses_a_user_without_a_role(url):
    client = Client()
    client.force_login(User.objects.create_user("nobody"))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_it_lets_every_role_read(role):
    client = client_for(role)
    for url in URLS:
        assert client.get(url).status_code == 200, url


def test_it_answers_404_for_an_unknown_agent(viewer):
    assert viewer.get("/ops/agents/nobody/report/").status_code == 404
    assert viewer.get("/ops/agents/nobody/decisions.csv").status_code == 404


def test_it_reads_with_get_only(viewer):
    assert viewer.post("/ops/report/").status_code == 405
