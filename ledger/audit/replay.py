"""Replays: a wallet's events folded through the one fold, as of a date."""

from __future__ import annotations

from typing import Iterable, Iterator

from ledger.domain import events as ev
from ledger.domain.fold import apply_event
from ledger.domain.state import WalletState


def replay_steps(
    events: Iterable[ev.WalletEvent], state: WalletState | None = None
) -> Iterator[tuple[ev.WalletEvent, WalletState]]:
    """Fold events through the one fold (onto ``state``, e.g. from a snapshot)
    without the aggregate's version check, for replays as of a date (a lapse
    dated before later events of other applications is then still applied);
    yields the state after each event."""
    for event in events:
        state = apply_event(state, event)
        yield event, state


def replay_events(events: list[ev.WalletEvent]) -> WalletState | None:
    """The wallet's state after all the given events (see :func:`replay_steps`)."""
    state = None
    for _event, state in replay_steps(events):
        pass
    return state
