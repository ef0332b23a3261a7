"""Building A/B tests for the learning tests."""

from learning import abtests
from learning.models import ABArm, ArmRole
from tests.learning.helpers import strategy


def start_test(agent, task_type="unit-tests", control="sequential-execution", treatment="parallel-execution",
               horizon=None, **options):
    test = abtests.create(agent, task_type, control and strategy(control), strategy(treatment), source="api",
                          **options)
    if horizon is not None:
        test.horizon = horizon
        test.save(update_fields=["horizon"])
    return test


def set_arm(test, role, n, successes, mean_ms=2000, error_tasks=0):
    ABArm.objects.filter(test=test, role=role).update(n=n, successes=successes, total_ms=mean_ms * n,
                                                     error_tasks=error_tasks)


def set_arms(test, control, treatment):
    """control / treatment: (n, successes[, mean_ms[, error_tasks]])."""
    set_arm(test, ArmRole.CONTROL, *control)
    set_arm(test, ArmRole.TREATMENT, *treatment)
