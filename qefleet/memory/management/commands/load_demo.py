import secrets

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from qefleet.memory import roles
from qefleet.memory.fleet import DEMO_TEAMS, register_demo_fleet

DEMO_LOGINS = [(roles.VIEWER, False), (roles.OPERATOR, False), (roles.ADMIN, True)]


def demo_password(role):
    """The fixed password of a demo login; only ever set while DEBUG is on."""
    return f"{role}-demo"


class Command(BaseCommand):
    help = ("Register the 17-agent demo fleet and one login per role: with DEBUG on, with known demo passwords "
            "(printed every time); otherwise, if no users exist, with random passwords (printed once).")

    @transaction.atomic
    def handle(self, **options):
        created = register_demo_fleet()
        total = sum(len(agents) for agents in DEMO_TEAMS.values())
        self.stdout.write(f"Demo fleet: {created} agents registered, {total - created} already present.")
        if settings.DEBUG:
            self.stdout.write("Demo logins (DEBUG is on; dashboard at /ops/):")
            for role, is_admin in DEMO_LOGINS:
                self._login(role, is_admin, demo_password(role))
            return
        if User.objects.exists():
            return
        self.stdout.write("Demo logins (shown once; change them in the admin):")
        for role, is_admin in DEMO_LOGINS:
            self._login(role, is_admin, secrets.token_urlsafe(12))

    def _login(self, role, is_admin, password):
        user, _ = User.objects.get_or_create(username=role, defaults={"is_staff": is_admin, "is_superuser": is_admin})
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name=role))
        self.stdout.write(f"  {role:9} {password}")
