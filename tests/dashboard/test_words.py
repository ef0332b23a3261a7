"""The words an operator reads instead of stored codes."""

from datetime import timedelta

from django.utils import timezone

from dashboard import words


def test_a_state_key_reads_as_words():
    assert words.state_words("0.5,0.2,0.0,0.9,1.0") == (
        "complexity 0.5, 2 capabilities, first attempt, resources 0.9, no time limit")
    assert words.state_words("0.8,0.1,0.2,0.5,0.2") == (
        "complexity 0.8, 1 capability, 3rd attempt, resources 0.5, time limit about 1 min")
    assert words.state_words("not a state") == "not a state"


def test_events_read_as_sentences_without_codes():
    rollback = words.event_sentence("learning:rollback", {"trigger": "automatic", "from": "v7", "to": "v5"})
    assert rollback == "The safeguard rolled back from v7 to v5"
    failure = words.event_sentence("learning:failure_detected", {"task_type": "unit-tests", "failure_class": "timeout"})
    assert failure == "A new kind of failure: timeout in unit-tests"
    assert words.event_sentence("learning:something_new", {}) == "Something new"
    assert "learning:" not in words.event_sentence("learning:rollback_dry_run", {"change_pct": -7.5})


def test_an_events_number_that_rounds_to_zero_reads_plus_zero():
    training = words.event_sentence("learning:training", {"task_type": "unit-tests", "strategy": "s", "reward": -0.001})
    assert training.endswith("(reward +0.00)")
    assert words.event_sentence("learning:rollback_dry_run", {"change_pct": -0.04}).startswith("Degraded +0.0 %")


def test_audit_rows_and_job_results_read_as_sentences():
    assert words.action_sentence("operator", "rollback", "agent:alice") == "operator rolled back alice"
    assert words.action_sentence("operator", "alert_silence", "alert:12") == "operator silenced alert #12"
    rollback = {"from_": "v3", "to": "v1", "reason": "score slipping"}
    assert (words.action_sentence("operator", "rollback", "agent:alice", rollback)
            == "operator rolled back alice from v3 to v1: “score slipping”")
    undo = {"rollback": 12, "to": "v3"}
    assert (words.action_sentence("operator", "undo_rollback", "agent:alice", undo)
            == "operator undid a rollback of alice (rollback #12; v3 live again)")
    assert words.job_result_sentence({"lost": None}) == "lost cycle: none"
    assert words.job_result_sentence({"snapshots": 3, "versions": 0}) == "snapshots: 3; versions: 0"
    assert words.job_result_sentence({"stale": []}) == "late jobs: none"
    assert words.job_result_sentence(None) == "nothing to report"


def test_moments_say_how_long_ago():
    now = timezone.now()
    assert words.ago(now - timedelta(seconds=10), now) == "just now"
    assert words.ago(now - timedelta(minutes=3), now) == "3 min ago"
    assert words.ago(now - timedelta(hours=5), now) == "5 h ago"
    assert words.ago(now - timedelta(days=3), now) == "3 days ago"
    assert words.ago(now + timedelta(minutes=4), now) == "in 4 min"


def test_an_applied_strategys_source_reads_as_words():
    assert words.applied_source("abtest:49") == "won A/B test #49"
    assert words.applied_source("revert:abtest:49") == "put back when A/B test #49's winner was reverted"
    assert words.applied_source("operator") == "set by an operator"


def test_an_undecided_tests_latest_look_reads_as_words():
    verdict = {"interval": [-0.62, 1.0], "control": {"n": 9}, "treatment": {"n": 7}}
    assert words.undecided_look("running", verdict, 246) == (
        "too early to call: after 7 of 246 tasks per arm at the last look, the treatment's success rate is "
        "somewhere from -62.0 to +100.0 points against the control's")
    assert words.undecided_look("running", {}, 246) is None  # no look yet
    assert words.undecided_look("winner", verdict, 246) is None  # its decision says more


def test_an_undecided_looks_bound_that_rounds_to_zero_reads_plus_zero():
    verdict = {"interval": [-0.000004, 0.5], "control": {"n": 9}, "treatment": {"n": 7}}
    assert "somewhere from +0.0 to +50.0 points" in words.undecided_look("inconclusive", verdict, None)


def test_a_job_and_its_interval_read_as_words():
    assert words.job_words("qefleet.learning.improvement_cycle") == "improvement cycle"
    assert [words.every_words(minutes) for minutes in (5, 60, 1440, 90)] == ["5 min", "1 h", "1 day", "90 min"]
