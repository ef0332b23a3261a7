from django.core.management.base import BaseCommand, CommandError

from qefleet.memory.fleet import cli_actor
from qefleet.memory.models import AgentToken


class Command(BaseCommand):
    help = "Revoke an agent's tokens: one by its prefix, or all of them."

    def add_arguments(self, parser):
        parser.add_argument("agent_id")
        parser.add_argument("--prefix", help="The token's first characters, as the admin lists them "
                            "(write --prefix=VALUE: a prefix may start with '-').")

    def handle(self, agent_id, prefix, **options):
        tokens = AgentToken.objects.usable().select_related("agent").filter(agent__agent_id=agent_id)
        if prefix:
            tokens = tokens.filter(prefix=prefix)
        tokens = list(tokens)
        if not tokens:
            raise CommandError("No usable token matches.")
        actor = cli_actor()
        for token in tokens:
            token.revoke(actor)
        self.stdout.write(f"Revoked {len(tokens)} token(s) of {agent_id}.")
