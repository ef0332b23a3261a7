"""Schemathesis against the agent API's own OpenAPI document, in process.

Every operation is called with a valid agent token, and with that agent's
own id wherever the path names an agent, so requests get past
authentication and `agent_for` into the handlers. Each response must not be
a 5xx, must carry a documented status code and content type, and its body
must match the documented schema. Data is generated both fitting the schema
and violating it.

The suite runs FUZZ_EXAMPLES examples per operation and mode (20 by
default, derandomized, so CI is reproducible); `make fuzz` runs many more
and prints what each operation answered.
"""

import os
from collections import Counter, defaultdict

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from learning.models import Strategy
from tests.conftest import make_agent

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SCHEMA_PATH = "/api/v1/openapi.json"
# Only the checks the API promises: the default set also asserts behaviour the
# schema cannot express (e.g. that any schema-valid body is accepted, when a
# random id or an unknown strategy name is rightly a 404 or 400).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection_kept_open():
    """The WSGI handler closes the connection after each request, which would end
    the test's transaction; Django's own test client disconnects it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_agent(connection_kept_open, settings):
    # The fuzz targets the handlers; thousands of requests a minute would only
    # meet the (documented) 429. tests/memory/test_rate_limits.py covers the limiter.
    settings.RATE_LIMIT_PER_MINUTE = 0
    Strategy.forget_catalog()  # the catalog is cached per process; read it from this test's database
    yield make_agent("fuzz-agent", "core", "qe")
    Strategy.forget_catalog()


def towards_existing_rows(case, data, catalog):
    """Half the time, point a positive example at rows that exist, so it gets
    past the handler's lookups: a small id (earlier operations of this run
    created rows 1, 2, ...) and, for an execution report, a catalog strategy
    without a decision, with the idempotency key that then must be sent."""
    for name, value in case.path_parameters.items():
        if isinstance(value, int) and data.draw(st.booleans()):
            case.path_parameters[name] = data.draw(st.integers(min_value=1, max_value=30))
    is_report = isinstance(case.body, dict) and {"task", "result"} <= case.body.keys()
    if is_report and data.draw(st.booleans()):
        strategy, parallelization, retry_policy = data.draw(st.sampled_from(catalog))
        case.body["action"] = {"strategy": strategy, "parallelization": parallelization, "retry_policy": retry_policy}
        case.body.pop("decision_id", None)
        case.headers["Idempotency-Key"] = data.draw(st.uuids()).hex


def fuzz_operation(operation, mode, agent, answered):
    """Run one operation's examples in one mode; raise on the first failing case (shrunk)."""
    fixed_path = {"agent_id": agent.agent_id} if "{agent_id}" in operation.path else None
    strategy = operation.as_strategy(
        generation_mode=mode, path_parameters=fixed_path, headers={"Authorization": f"Bearer {agent.token}"})
    catalog = list(Strategy.objects.order_by("name").values_list("name", "parallelization", "retry_policy"))

    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate, Phase.shrink],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(case=strategy, data=st.data())
    def run(case, data):
        if mode is GenerationMode.POSITIVE:
            towards_existing_rows(case, data, catalog)
        response = case.call()
        answered[operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # Nothing to negate: the only path parameter is fixed to the agent's id,
        # or every value of a string parameter is valid.
        if mode is not GenerationMode.NEGATIVE:
            raise


def test_it_answers_every_operation_as_documented(fuzz_agent, capsys):
    # A handler built now, so its middleware reads the test settings (plain http).
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, WSGIHandler())
    answered = defaultdict(Counter)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                # A savepoint each, so a request that failed PostgreSQL's transaction does not fail the rest.
                with transaction.atomic():
                    fuzz_operation(operation, mode, fuzz_agent, answered)
            # Schemathesis raises its failures as an exception group; every operation runs and all are reported.
            except (Exception, BaseExceptionGroup) as error:
                failures.append(f"{operation.label} ({mode.value}):\n{error}")
    report(capsys, operations, answered, failures)
    assert not failures, "\n\n".join(failures)


def report(capsys, operations, answered, failures):
    """What each operation answered, for `make fuzz` (FUZZ_SUMMARY=1)."""
    if not os.environ.get("FUZZ_SUMMARY"):
        return
    lines = [f"\nfuzzed {len(operations)} operations, {FUZZ_EXAMPLES} examples per operation and mode"]
    for operation in operations:
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(answered[operation.label].items()))
        lines.append(f"  {operation.label:<66} {codes}")
    requests = sum(sum(codes.values()) for codes in answered.values())
    lines.append(f"{requests} requests, {len(failures)} failing operation modes")
    with capsys.disabled():
        print("\n".join(lines))
