"""Key providers: other apps serve part of the memory key space.

The learning app keeps its hot state in its own tables but the design's keys
(`phase2/learning/{agentId}/config`, ...; docs/ARCHITECTURE.md, "Memory keys")
must stay readable through the memory API. A provider registered for a partition and key prefix answers those keys;
the memory app never imports the app behind it. Access to provided keys goes
through the same policy function as stored entries: the provider names the
owning agent and the level.
"""

from dataclasses import dataclass

from .models import AccessLevel


class ProviderError(Exception):
    """A provider rejects a write; the message names what is wrong."""

    def __init__(self, message, field="value"):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class ProvidedEntry:
    """What the policy function needs to judge a provided key."""

    partition: str
    key: str
    owner_id: str
    team: str
    swarm: str
    access_level: str = AccessLevel.PRIVATE
    acl = None


class KeyProvider:
    """Subclass and register. Keys look like `{prefix}{agent_id}/{rest}`."""

    partition = "learning"
    prefix = ""
    access_level = AccessLevel.PRIVATE

    def owner_of(self, key):
        rest = key[len(self.prefix) :]
        agent_id, _, _ = rest.partition("/")
        return agent_id or None

    def serves(self, key):
        """Whether this provider answers `key` (which starts with the prefix);
        keys it does not serve are stored entries like any other."""
        return True

    def read(self, key):
        """The value under `key`, or raise KeyError."""
        raise KeyError(key)

    def is_writable(self, key):
        return False

    def write(self, key, value):
        """Validate and store `value`; return what is now stored. Raise ProviderError."""
        raise ProviderError("This key is read-only.", "key")

    def keys(self, prefix, after, limit):
        """Up to `limit` keys starting with `prefix` and sorting after `after`, in order."""
        return []


_registry = []


def register(provider):
    """Register a provider (an instance); apps call this from AppConfig.ready()."""
    if not provider.prefix:
        raise ValueError("A key provider needs a non-empty prefix.")
    unregister(provider.partition, provider.prefix)
    _registry.append(provider)
    _registry.sort(key=lambda item: len(item.prefix), reverse=True)


def unregister(partition, prefix):
    _registry[:] = [item for item in _registry if (item.partition, item.prefix) != (partition, prefix)]


def find(partition, key):
    """The provider serving `key`, longest prefix first, or None."""
    for provider in _registry:
        if provider.partition == partition and key.startswith(provider.prefix) and provider.serves(key):
            return provider
    return None


def overlapping(partition, prefix):
    """Providers whose keys may start with `prefix`."""
    return [
        item
        for item in _registry
        if item.partition == partition and (item.prefix.startswith(prefix) or prefix.startswith(item.prefix))
    ]
