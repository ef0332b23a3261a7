from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from qefleet.memory.fleet import cli_actor, issue_token
from qefleet.memory.models import Agent


class Command(BaseCommand):
    help = "Issue a new API token for an agent and print it as the last line."

    def add_arguments(self, parser):
        parser.add_argument("agent_id")
        parser.add_argument("--label", default="issue_token")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, agent_id, label, expires_in_days, **options):
        agent = Agent.objects.filter(agent_id=agent_id).first()
        if agent is None:
            raise CommandError(f"No agent {agent_id!r}; register it first with register_agent.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        token, plain = issue_token(agent, label, expires_at, actor=cli_actor())
        self.stdout.write(f"Token {token.prefix}… for {agent_id} (shown once):")
        self.stdout.write(plain)
