"""Logging in and out of the dashboard."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_login():
    user = User.objects.create_user("op", password="a long demo password")
    user.groups.add(Group.objects.get(name="operator"))
    return user


def test_it_sends_the_site_root_to_the_dashboard():
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"] == "/ops/"


def test_it_logs_in_and_goes_where_it_was_asked(operator_login):
    client = Client()
    page = client.get("/accounts/login/?next=/ops/alerts/").content.decode()
    assert '<label for="id_username">User name</label>' in page and 'name="next" value="/ops/alerts/"' in page
    response = client.post("/accounts/login/", {"username": "op", "password": "a long demo password",
                                                "next": "/ops/alerts/"})
    assert response.status_code == 302 and response["Location"] == "/ops/alerts/"
    assert client.get("/ops/alerts/").status_code == 200


def test_it_refuses_a_wrong_password(operator_login):
    response = Client().post("/accounts/login/", {"username": "op", "password": "wrong"})
    assert response.status_code == 200 and "did not match" in response.content.decode()


def test_it_logs_out_with_a_post(operator_login):
    client = Client()
    client.force_login(operator_login)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/ops/").status_code == 302


def test_the_header_names_the_user_and_role(operator_login):
    client = Client()
    client.force_login(operator_login)
    page = client.get("/ops/").content.decode()
    assert "op (operator)" in " ".join(page.split())
