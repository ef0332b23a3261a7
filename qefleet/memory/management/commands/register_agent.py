from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.core.exceptions import ValidationError

from qefleet.memory.fleet import cli_actor, issue_token, register_agent


class Command(BaseCommand):
    help = "Register (or update) an agent and print a new API token as the last line."

    def add_arguments(self, parser):
        parser.add_argument("agent_id")
        parser.add_argument("--type", required=True)
        parser.add_argument("--team", default="")
        parser.add_argument("--swarm", default="")
        parser.add_argument("--system", action="store_true",
                            help="A system agent administers its swarm's memory (needs --swarm).")
        parser.add_argument("--capability", action="append", default=[], dest="capabilities")

    def handle(self, agent_id, type, team, swarm, system, capabilities, **options):
        for name, value in (("agent_id", agent_id), ("--team", team), ("--swarm", swarm)):
            if value:
                try:
                    validate_slug(value)
                except ValidationError:
                    raise CommandError(f"{name} must be letters, digits, '-' and '_' only: {value!r}") from None
        if len(agent_id) > 64:
            raise CommandError("agent_id is at most 64 characters.")
        if system and not swarm:
            # A system agent administers its own swarm only; without one it would administer nothing.
            raise CommandError("--system needs --swarm: a system agent administers its own swarm.")
        agent, created = register_agent(agent_id, type, team, swarm, system, capabilities)
        _, plain = issue_token(agent, label="register_agent", actor=cli_actor())
        self.stdout.write(f"{'Registered' if created else 'Updated'} agent {agent.agent_id}. Its token (shown once):")
        self.stdout.write(plain)
