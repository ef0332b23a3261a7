"""An unhandled error answers a generic 500 naming the request id, never a
traceback: JSON on the API, a plain page elsewhere."""

import pytest
from django.contrib.auth.views import LoginView
from django.test import Client

from qefleet.memory import store

pytestmark = pytest.mark.django_db
SECRET = "secret detail: SELECT * FROM memory_entries"


def fail(*args, **kwargs):
    raise RuntimeError(SECRET)


def test_it_answers_an_api_failure_with_json_and_the_request_id(alice, monkeypatch):
    monkeypatch.setattr(store, "get_entry", fail)
    response = alice.client.get("memory/default/k")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "server_error" and body["request_id"] == response["X-Request-ID"]
    assert SECRET not in response.content.decode() and "Traceback" not in response.content.decode()


def test_it_answers_a_page_failure_with_a_generic_page_and_the_request_id(monkeypatch):
    monkeypatch.setattr(LoginView, "get_context_data", fail)
    response = Client(raise_request_exception=False).get("/accounts/login/")
    assert response.status_code == 500
    page = response.content.decode()
    assert response["X-Request-ID"] in page
    assert SECRET not in page and "Traceback" not in page
