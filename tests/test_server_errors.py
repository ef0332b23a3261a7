"""An unhandled error answers a generic 500 naming the request id, never a
traceback: JSON on the API, a plain page elsewhere; and the server's log
has it with its request id and traceback, whatever DEBUG says."""

import logging

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


def logged_with(caplog, request_id):
    """Records with the request id, from a logger that settings.LOGGING sends
    to the console (Django's own django.request reaches no handler with DEBUG off)."""
    return [record for record in caplog.records
            if record.name.startswith("qefleet.") and request_id in record.getMessage()]


def test_it_logs_a_page_failure_with_its_request_id_and_traceback(monkeypatch, caplog, settings):
    settings.DEBUG = False
    monkeypatch.setattr(LoginView, "get_context_data", fail)
    with caplog.at_level(logging.ERROR):
        response = Client(raise_request_exception=False).get("/accounts/login/")
    [record] = logged_with(caplog, response["X-Request-ID"])
    assert record.levelno == logging.ERROR and "/accounts/login/" in record.getMessage()
    assert record.exc_info[0] is RuntimeError


def test_it_logs_an_api_failure_with_its_request_id_and_traceback(alice, monkeypatch, caplog):
    monkeypatch.setattr(store, "get_entry", fail)
    with caplog.at_level(logging.ERROR):
        response = alice.client.get("memory/default/k")
    [record] = logged_with(caplog, response["X-Request-ID"])
    assert record.exc_info[0] is RuntimeError
