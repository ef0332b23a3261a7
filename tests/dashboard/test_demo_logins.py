"""`load_demo` (run by `make run`) prints demo logins with known passwords while DEBUG is on."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from qefleet.memory.management.commands.load_demo import demo_password

pytestmark = pytest.mark.django_db


def test_it_prints_known_demo_logins_every_time_with_debug_on(settings, capsys):
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for _ in range(2):
        call_command("load_demo")
        out = capsys.readouterr().out
        for role in ("viewer", "operator", "admin"):
            assert f"  {role:9} {role}-demo" in out
            user = User.objects.get(username=role)
            assert user.check_password(demo_password(role)) and user.groups.filter(name=role).exists()
    assert User.objects.count() == 3 and User.objects.get(username="admin").is_superuser


def test_it_never_sets_the_known_passwords_with_debug_off(capsys):
    call_command("load_demo")
    assert not User.objects.get(username="viewer").check_password(demo_password("viewer"))
