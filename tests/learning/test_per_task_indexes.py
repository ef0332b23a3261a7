"""The per-task tables carry no index that another one already serves."""

import pytest
from django.db import connection

from learning.models import Decision, Execution


@pytest.mark.parametrize("model", [Decision, Execution])
def test_it_indexes_the_agent_only_as_the_lead_of_composite_indexes(db, model):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    on_agent = [item["columns"] for item in constraints.values()
                if item["index"] or item["unique"] if item["columns"] and item["columns"][0] == "agent_id"]

    assert ["agent_id"] not in on_agent
    assert on_agent  # the composite ones the queries use
