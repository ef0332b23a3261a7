import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from learning import offline_import
from learning.core import offline


class Command(BaseCommand):
    help = ("Estimate a policy's value from your own logged decisions: --logs is a CSV of context, action, "
            "propensity, reward; --policy a CSV of context, action, probability. Prints JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--logs", required=True)
        parser.add_argument("--policy", required=True)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--reward-model", choices=list(offline.REWARD_MODELS), default="cells",
                            help="The doubly robust estimate's reward model: the shrunk mean of each (context, action) "
                                 "cell, or context effect x action effect (factored: a position-based click model "
                                 "when the context is the position).")

    def handle(self, logs, policy, seed, reward_model, **options):
        try:
            result = offline_import.evaluate(Path(logs).read_text(), Path(policy).read_text(), seed=seed,
                                             model=reward_model).as_dict()
            result["reward_model"] = reward_model
        except offline_import.LogImportError as error:
            raise CommandError(str(error)) from None
        except offline.NotCovered as refused:
            result = {"refused": refused.as_dict()}
        self.stdout.write(json.dumps(result, indent=2))
