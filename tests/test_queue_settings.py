from django.conf import settings


def test_a_task_is_never_handed_out_again_while_it_may_still_run():
    assert settings.Q_CLUSTER["retry"] > settings.Q_CLUSTER["timeout"]


def test_failures_are_acknowledged_and_not_retried_in_a_storm():
    assert settings.Q_CLUSTER["ack_failures"] is True
    assert 1 <= settings.Q_CLUSTER["max_attempts"] <= 5
    assert settings.Q_CLUSTER["catch_up"] is False


def test_the_default_broker_is_the_database():
    if settings.QUEUE_BROKER == "orm":
        assert settings.Q_CLUSTER["orm"] == "default"
    else:
        assert "redis" in settings.Q_CLUSTER
