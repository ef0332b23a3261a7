import pytest

from learning.models import Strategy


@pytest.fixture(autouse=True)
def _fresh_strategy_catalog():
    # The catalog is cached per process; each test starts from the database.
    Strategy.forget_catalog()
    yield
    Strategy.forget_catalog()
