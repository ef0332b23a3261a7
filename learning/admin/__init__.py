"""The Django admin of the learning app: base.py (the base classes),
learning.py (the catalog, the agents' settings and what the engine records),
sharing.py (cross-agent sharing). Importing the modules registers them."""

from . import learning, sharing  # noqa: F401
