import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from qefleet.memory import roles
from qefleet.memory.fleet import DEMO_TEAMS, register_demo_fleet

DEMO_LOGINS = [(roles.VIEWER, False), (roles.OPERATOR, False), (roles.ADMIN, True)]


class Command(BaseCommand):
    help = "Register the 17-agent demo fleet and, if no users exist, one login per role (printed once)."

    @transaction.atomic
    def handle(self, **options):
        created = register_demo_fleet()
        total = sum(len(agents) for agents in DEMO_TEAMS.values())
        self.stdout.write(f"Demo fleet: {created} agents registered, {total - created} already present.")
        if User.objects.exists():
            return
        self.stdout.write("Demo logins (shown once; change them in the admin):")
        for role, is_admin in DEMO_LOGINS:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(role, password=password, is_staff=is_admin, is_superuser=is_admin)
            user.groups.add(Group.objects.get(name=role))
            self.stdout.write(f"  {role:9} {password}")
