"""`manage.py drills`: the statistics drills now, for one agent or the fleet."""

from django.core.management.base import BaseCommand, CommandError

from learning import drills
from qefleet.memory.models import Agent


class Command(BaseCommand):
    help = (
        "Replay each agent's A/B decision and safeguard rules on its own logged outcomes (no live task is "
        "spent) and keep the measured rates; --agent drills one agent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--agent", help="The agent id to drill (default: every agent with enough tasks).")
        parser.add_argument("--seed", type=int, help="With --agent: the draws' seed (default: today's).")

    def handle(self, agent, seed, **options):
        if agent is None:
            self.stdout.write(str(drills.drill_all("command")))
            return
        found = Agent.objects.filter(agent_id=agent).first()
        if found is None:
            raise CommandError(f"No agent {agent!r}.")
        try:
            run = drills.drill(found, "command", seed)
        except drills.TooFewTasks as error:
            raise CommandError(str(error)) from None
        for item in run.figures["health"]:
            self.stdout.write(f"{'ok ' if item['in_band'] else 'OUT'} {item['rule']}: {item['finding']}")
