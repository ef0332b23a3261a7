"""`manage.py run_cycle [--agent ID]`: the improvement cycle now, for the
current slot (what the scheduler runs every CYCLE_SLOT_SECONDS)."""

import json

from django.core.management.base import BaseCommand, CommandError

from learning import improvement
from qefleet.memory.models import Agent


class Command(BaseCommand):
    help = "Run the improvement cycle for every agent (or one) in the current slot."

    def add_arguments(self, parser):
        parser.add_argument("--agent", help="Only this agent (its running A/B tests are decided too).")

    def handle(self, *args, agent=None, **options):
        if agent is None:
            self.stdout.write(json.dumps(improvement.run_all()))
            return
        found = Agent.objects.filter(agent_id=agent).first()
        if found is None:
            raise CommandError(f"No agent {agent!r}.")
        cycle = improvement.run_cycle(found, trigger="command")
        if cycle is None:
            raise CommandError(f"{agent}'s learning is disabled (or it has no tasks yet): no cycle.")
        self.stdout.write(json.dumps(cycle.to_dict(), default=str))
