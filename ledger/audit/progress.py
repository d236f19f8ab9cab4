"""Progress of long audit work, shown by whoever calls it.

A :data:`Progress` is called with a description and a total (or None) and gives
a context manager yielding ``advance(n)``; the command line passes one that
draws a bar, the default draws nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

Advance = Callable[[int], None]
Progress = Callable[[str, int | None], AbstractContextManager[Advance]]


@contextmanager
def no_progress(description: str, total: int | None) -> Iterator[Advance]:
    """Shows nothing."""
    yield _ignore


def _ignore(n: int = 1) -> None:
    pass
