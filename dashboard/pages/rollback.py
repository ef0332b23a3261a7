"""Rollback that is safe to click: the confirmation page (the preview and a
required reason), what the agent page says after a rollback or an undo, and
the agent's operator actions in words."""

from dataclasses import dataclass

from django.conf import settings
from django.http import Http404

from learning.models import Rollback, StateVersion

from .. import words
from .common import profile_of


def rollback_confirmation(agent, number):
    """The confirmation page's context: the version, whether it may be rolled
    back to (never the live one), and where its preview comes from."""
    version = StateVersion.objects.filter(agent=agent, number=number).defer("payload").first()
    if version is None:
        raise Http404("No such version.")
    profile = profile_of(agent)
    return {
        "agent": agent,
        "profile": profile,
        "version": version,
        "is_live": profile is not None and profile.live_version_id == version.pk,
        "undo_tasks": settings.ROLLBACK_UNDO_TASKS,
    }


def undo_message(agent, record):
    return (
        f"Undid rollback #{record.undo_of_id} of {agent.agent_id}: {record.to_version.label}, the state before it, "
        "is live again; learning stays paused until you resume it."
    )


@dataclass
class RollbackState:
    """After a rollback or an undo: what happened and what the operator can do next."""

    rollback: Rollback
    undo_refusal: str  # "" when it can be undone now

    @property
    def can_undo(self):
        return not self.undo_refusal


def rollback_state(profile, rollbacks):
    """The latest rollback (the last of `rollbacks`, oldest first), while it
    matters: learning is still off after it, or it can still be undone."""
    latest = rollbacks[-1] if rollbacks else None
    if latest is None or profile is None:
        return None
    refusal = latest.undo_refusal(profile, latest)
    if profile.enabled and refusal:
        return None
    return RollbackState(latest, refusal)


def preview_in_words(preview):
    """A rollback preview (learning.versions.preview) with each changed state in words."""
    for change in preview["best_action_changes"]:
        change["state_words"] = words.state_words(change["state"])
    return preview
