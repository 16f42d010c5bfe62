"""Transitions of what an org serves: promote, pin, unpin, rollback; then the serving warm-up hook.

The lineage functions do the change (``orgmem.lineage``); these add what every face needs after
it: the change as a dict, and ``warm(org)`` so a server can load the newly served memory before
the first request pays for it (the API passes a hook that does it in the background; the CLI,
which serves nothing, passes none). Each runs in the caller's write session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from orgmem.db.models import Org
from orgmem.lineage import ServingChange, pin, promote, rollback, unpin
from orgmem.lineage.audiences import ORG_AUDIENCE

#: Called with the org's slug after what it serves changed.
Warm = Callable[[str], None]


def _changed(change: ServingChange, org: Org | str, warm: Warm | None) -> dict[str, Any]:
    out = change.as_dict()
    if warm is not None:
        warm(org.slug if isinstance(org, Org) else org)
    return out


def promote_checkpoint(session: Session, org: Org | str, checkpoint_id: str, *, actor: str,
                       reason: str | None = None, force: bool = False, warm: Warm | None = None
                       ) -> dict[str, Any]:
    """Make a checkpoint built on the head the new head (and served, unless pinned)."""
    change = promote(session, org, checkpoint_id, actor=actor, reason=reason, force=force)
    return _changed(change, org, warm)


def pin_checkpoint(session: Session, org: Org | str, checkpoint_id: str, *, actor: str,
                   reason: str | None = None, warm: Warm | None = None) -> dict[str, Any]:
    """Serve ``checkpoint_id`` until unpinned, whatever gets promoted meanwhile."""
    return _changed(pin(session, org, checkpoint_id, actor=actor, reason=reason), org, warm)


def unpin_org(session: Session, org: Org | str, *, actor: str, reason: str | None = None,
              audience: str = ORG_AUDIENCE, warm: Warm | None = None) -> dict[str, Any]:
    """Serve the head of ``audience``'s lineage again."""
    return _changed(unpin(session, org, actor=actor, reason=reason, audience=audience), org, warm)


def rollback_org(session: Session, org: Org | str, checkpoint_id: str, *, actor: str,
                 reason: str | None = None, warm: Warm | None = None) -> dict[str, Any]:
    """Move the head back to an ancestor; data only the abandoned branch consumed becomes pending."""
    return _changed(rollback(session, org, checkpoint_id, actor=actor, reason=reason), org, warm)
