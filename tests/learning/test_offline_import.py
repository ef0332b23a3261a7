"""Operators' own logs: the CSV importer feeds the same estimator."""

import io
import json

import pytest
from django.core.management import call_command

from learning import offline_import
from learning.core import offline

LOGS = "context,action,propensity,reward\n" + "".join(
    f"c{index % 2},{'a' if index % 4 < 2 else 'b'},0.5,{1 if (index % 4 < 2) == (index % 2 == 0) else 0}\n"
    for index in range(400))


def policy(rows):
    return "context,action,probability\n" + "".join(f"{c},{a},{p}\n" for c, a, p in rows)


def test_it_estimates_a_policy_from_imported_logs():
    # In c0 action a always succeeds, in c1 action b does: the policy that knows it scores 1.
    result = offline_import.evaluate(LOGS, policy([("c0", "a", 1), ("c1", "b", 1)]), replicates=200)
    assert result.doubly_robust.value == pytest.approx(1.0)
    assert result.snips.value == pytest.approx(1.0)
    assert result.rows == 400


def test_a_policy_on_an_action_never_logged_is_named():
    with pytest.raises(offline_import.LogImportError) as error:
        offline_import.evaluate(LOGS, policy([("c0", "z", 1), ("c1", "a", 1)]))
    assert error.value.field == "policy:2:action"


def test_a_missing_column_is_named():
    with pytest.raises(offline_import.LogImportError, match="propensity"):
        offline_import.read_logs("context,action,reward\nc,a,1\n")


@pytest.mark.parametrize("value", ["0", "1.2", "x", "nan"])
def test_a_bad_propensity_names_its_line_and_column(value):
    with pytest.raises(offline_import.LogImportError) as error:
        offline_import.read_logs(f"context,action,propensity,reward\nc,a,0.5,1\nc,a,{value},1\n")
    assert error.value.field == "logs:3:propensity"


def test_a_bad_value_after_a_blank_line_names_the_files_own_line():
    # The CSV reader skips the blank line 3: the bad row is on line 4 of the file.
    with pytest.raises(offline_import.LogImportError) as error:
        offline_import.read_logs("context,action,propensity,reward\nc,a,0.5,1\n\nc,a,2,1\n")
    assert error.value.field == "logs:4:propensity"


def test_a_context_without_a_distribution_is_named():
    with pytest.raises(offline_import.LogImportError, match="c1"):
        offline_import.evaluate(LOGS, policy([("c0", "a", 1)]))


def test_probabilities_that_do_not_sum_to_one_are_named():
    with pytest.raises(offline_import.LogImportError, match="sum"):
        offline_import.evaluate(LOGS, policy([("c0", "a", 0.5), ("c1", "b", 1)]))


def test_a_policy_the_logs_barely_cover_is_refused():
    logs = "context,action,propensity,reward\n" + "c,a,0.999,1\n" * 500 + "c,b,0.001,0\n" * 2
    with pytest.raises(offline.NotCovered) as refused:
        offline_import.evaluate(logs, policy([("c", "b", 1)]))
    assert refused.value.reason == "too_few_effective_samples"


def test_the_factored_reward_model_answers_the_same_question():
    result = offline_import.evaluate(LOGS, policy([("c0", "a", 1), ("c1", "a", 1)]), replicates=200,
                                     model="factored")
    # Action a succeeds in c0 only: half of the tasks. The factored model cannot fit that interaction,
    # and the weighted residuals correct it.
    assert result.doubly_robust.value == pytest.approx(0.5)
    assert result.doubly_robust.low <= 0.5 <= result.doubly_robust.high


def test_a_negative_reward_under_the_factored_model_names_its_line():
    logs = "context,action,propensity,reward\nc,a,0.5,1\nc,b,0.5,-2\n"
    with pytest.raises(offline_import.LogImportError) as error:
        offline_import.evaluate(logs, policy([("c", "a", 1)]), model="factored")
    assert error.value.field == "logs:3:reward"
    assert "not negative" in error.value.message


def test_a_negative_reward_after_a_blank_line_under_the_factored_model_names_the_files_own_line():
    logs = "context,action,propensity,reward\nc,a,0.5,1\n\nc,b,0.5,-2\n"
    with pytest.raises(offline_import.LogImportError) as error:
        offline_import.evaluate(logs, policy([("c", "a", 1)]), model="factored")
    assert error.value.field == "logs:4:reward"


def test_the_command_names_the_reward_model_it_used(tmp_path):
    (tmp_path / "logs.csv").write_text(LOGS)
    (tmp_path / "policy.csv").write_text(policy([("c0", "a", 1), ("c1", "b", 1)]))
    out = io.StringIO()
    call_command("evaluate_logs", logs=str(tmp_path / "logs.csv"), policy=str(tmp_path / "policy.csv"),
                 reward_model="factored", stdout=out)
    result = json.loads(out.getvalue())
    assert result["reward_model"] == "factored" and result["doubly_robust"]["value"] == pytest.approx(1.0)
