"""Password guessing: after LOGIN_FAILURE_LIMIT failed logins in a row for a
user name or from an address, both login pages (the dashboard's and the
admin's) refuse every attempt, the right password included and without
checking it, until LOGIN_LOCKOUT_MINUTES pass; a success resets the count;
every counted failure is in the audit trail."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "a long demo password"
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user():
    user = User.objects.create_user("boss", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    return user


def log_in(login_page, password, username="boss", address="127.0.0.1", **headers):
    """A fresh client (no cookie shared with earlier attempts) posting the
    login form as a browser does; returns (response, logged in?)."""
    client = Client(REMOTE_ADDR=address)
    response = client.post(login_page, {"username": username, "password": password}, headers=headers)
    return response, "_auth_user_id" in client.session


# Not "page": that name is pytest-playwright's fixture, which would make this a browser test.
@pytest.mark.parametrize("login_page", LOGIN_PAGES)
def test_it_locks_out_after_the_failure_limit_and_refuses_the_right_password(admin_user, login_page):
    for _ in range(2):
        response, logged_in = log_in(login_page, "wrong")
        assert response.status_code == 200 and not logged_in
    response, logged_in = log_in(login_page, "wrong")
    assert response.status_code == 429 and not logged_in
    response, logged_in = log_in(login_page, PASSWORD)
    assert response.status_code == 429 and not logged_in
    assert "Too many failed logins" in response.content.decode()


def test_it_refuses_a_locked_login_without_checking_the_password(admin_user, monkeypatch):
    for _ in range(3):
        log_in("/accounts/login/", "wrong")
    checked = []
    monkeypatch.setattr(User, "check_password", lambda user, raw: checked.append(raw) or True)
    response, logged_in = log_in("/accounts/login/", PASSWORD)
    assert response.status_code == 429 and not logged_in and checked == []


def test_the_lockout_counts_failures_on_both_pages_together(admin_user):
    log_in("/accounts/login/", "wrong")
    log_in("/admin/login/", "wrong")
    assert log_in("/accounts/login/", "wrong")[0].status_code == 429
    response, logged_in = log_in("/admin/login/", PASSWORD)
    assert response.status_code == 429 and not logged_in


def test_a_success_resets_the_count(admin_user):
    for _ in range(2):
        log_in("/accounts/login/", "wrong")
    assert log_in("/accounts/login/", PASSWORD)[1]
    for _ in range(2):
        response, _ = log_in("/accounts/login/", "wrong")
        assert response.status_code == 200
    assert log_in("/accounts/login/", PASSWORD)[1]


def test_it_locks_an_address_that_tries_many_user_names(admin_user):
    for name in ("alice", "bob", "carol"):
        log_in("/accounts/login/", "wrong", username=name, address="203.0.113.7")
    response, logged_in = log_in("/accounts/login/", PASSWORD, address="203.0.113.7")
    assert response.status_code == 429 and not logged_in
    assert log_in("/accounts/login/", PASSWORD, address="198.51.100.1")[1]


def test_it_locks_a_user_name_tried_from_many_addresses(admin_user):
    for index in range(3):
        log_in("/accounts/login/", "wrong", address=f"203.0.113.{index + 1}")
    response, logged_in = log_in("/accounts/login/", PASSWORD, address="198.51.100.1")
    assert response.status_code == 429 and not logged_in


def test_it_lets_the_user_in_again_after_the_cool_off(admin_user):
    for _ in range(3):
        log_in("/accounts/login/", "wrong")
    assert not log_in("/accounts/login/", PASSWORD)[1]
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert log_in("/accounts/login/", PASSWORD)[1]


def test_it_audits_each_failed_login_and_the_lockout(admin_user):
    log_in("/accounts/login/", "wrong")
    log_in("/admin/login/", "wrong")
    log_in("/accounts/login/", "wrong")
    log_in("/accounts/login/", PASSWORD)  # refused while locked: counted nowhere, audited once as the lockout was
    events = list(AuditEvent.objects.filter(action="login_failed").order_by("at", "pk"))
    assert [(event.actor, event.target, event.remote_addr) for event in events] == [
        ("anonymous", "user:boss", "127.0.0.1")] * 3
    assert [event.detail["page"] for event in events] == ["/accounts/login/", "/admin/login/", "/accounts/login/"]
    assert [event.detail["failures"] for event in events] == [1, 2, 3]
    assert [event.detail["locked_out"] for event in events] == [False, False, True]
    assert all(event.request_id for event in events)
    assert "wrong" not in str([event.detail for event in events])


def test_a_successful_login_writes_no_failure(admin_user):
    assert log_in("/admin/login/", PASSWORD)[1]
    assert not AuditEvent.objects.filter(action="login_failed").exists()


def test_behind_a_proxy_it_locks_the_client_the_proxy_names_not_the_proxy(admin_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for name in ("alice", "bob", "carol"):
        # The client may send its own X-Forwarded-For; the proxy appends the peer it saw.
        log_in("/accounts/login/", "wrong", username=name, address=proxy,
               x_forwarded_for=f"198.51.100.{len(name)}, 203.0.113.7")
    response, logged_in = log_in("/accounts/login/", PASSWORD, address=proxy, x_forwarded_for="203.0.113.7")
    assert response.status_code == 429 and not logged_in
    assert log_in("/accounts/login/", PASSWORD, address=proxy, x_forwarded_for="203.0.113.8")[1]
    event = AuditEvent.objects.filter(action="login_failed").first()
    assert event.detail["client"] == "203.0.113.7"
