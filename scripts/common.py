"""What every command-line tool shares: the database URL from the environment,
one argument parser style, human tables or ``--json``, one-line errors, exit
codes (0 success, 1 a problem found, 2 bad usage or input) and a progress bar
shown only when standard output is a terminal.

Nothing here is built at import time: each call reads the environment anew.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import orjson

from ledger.domain.text import printable

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad usage or bad input: the tool stops with exit code 2 and this one line."""


class _Exit(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a mistake in one line and never calls ``sys.exit``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def parser(command: str, description: str) -> ArgumentParser:
    """A parser for ``kmo-ledger COMMAND`` with the shared ``--json`` switch."""
    result = ArgumentParser(prog=f"kmo-ledger {command}", description=description)
    result.add_argument("--json", action="store_true", help="machine-readable output on standard output")
    return result


def iso_date(text: str) -> date:
    """An argparse type: a calendar date written ``YYYY-MM-DD``, in the range the
    API accepts too (:data:`ledger.domain.clock.EARLIEST` .. ``LATEST``)."""
    from ledger.domain.clock import EARLIEST, LATEST

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not EARLIEST <= day <= LATEST:
        raise argparse.ArgumentTypeError(f"{text} is outside the dates the ledger knows ({EARLIEST} to {LATEST})")
    return day


def database_url() -> str:
    """``KMO_LEDGER_DATABASE_URL``, or the default SQLite file, as the server uses."""
    from ledger.build import LedgerSettings

    return LedgerSettings().database_url


@contextmanager
def open_ledger() -> Iterator[Any]:
    """The ledger application on the configured database, closed afterwards.

    A tool never makes a ledger (only ``serve`` does): a database that holds
    none, or is not there, is bad usage, "no ledger at PATH", and nothing is
    created. Run from another folder, the default ``./var/ledger.db`` is
    another file."""
    from ledger.build import LedgerSettings, build_ledger
    from ledger.storage.presence import missing_ledger

    settings = LedgerSettings()
    missing = missing_ledger(settings.database_url)
    if missing is not None:
        raise UsageError(missing)
    ledger = build_ledger(settings)
    try:
        yield ledger
    finally:
        ledger.close()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a tool's body; every failure becomes one line on standard error and an exit code."""
    from eventsourcing.persistence import PersistenceError
    from pydantic import ValidationError

    from ledger.domain.errors import LedgerError

    try:
        return body()
    except _Exit as done:
        return done.status
    except UsageError as error:
        _fail(prog, str(error))
    except ValidationError as error:  # the environment's settings: named by their variable
        first = error.errors()[0]
        _fail(prog, f"KMO_LEDGER_{'_'.join(str(part) for part in first['loc']).upper()}: {first['msg']}")
    except LedgerError as error:
        _fail(prog, error.detail)
    except PersistenceError as error:
        _fail(prog, f"database {_redacted(database_url())}: {_one_line(error)}")
    except OSError as error:
        _fail(prog, f"{error.strerror or _one_line(error)}" + (f": {error.filename}" if error.filename else ""))
    except KeyboardInterrupt:
        _fail(prog, "interrupted")
    except Exception as error:  # never a stack trace: one line, and the tool could not do its job
        _fail(prog, f"{type(error).__name__}: {_one_line(error)}")
    return EXIT_USAGE


def _fail(prog: str, reason: str) -> None:
    sys.stderr.write(f"{prog}: {printable(reason)}\n")


def _redacted(url: str) -> str:
    """A database URL without its password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url


# ---------------------------------------------------------------------- output


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def console(stderr: bool = False):
    """A rich console on standard output (or error), made when called so a test's
    capture is honoured; plain text, wide enough not to wrap, when not a terminal.
    Text is printed as it is: no console markup (``[red]``) or emoji codes
    (``:warning:``) are read in it, so a stored name cannot restyle the output."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(
        file=stream,
        width=None if terminal else 200,
        no_color=not terminal,
        highlight=False,
        markup=False,
        emoji=False,
    )


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[str] = ()):
    """A rich table; columns named in ``right`` (amounts) are right-aligned. Every
    cell is shown :func:`printable` and as plain text (no console markup)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    result = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for name in columns:
        result.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        result.add_row(*(Text(printable(cell)) for cell in row))
    return result


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; a rich progress bar (on standard error, removed when
    done) only when standard output is a terminal, otherwise nothing is drawn."""
    if not sys.stdout.isatty():
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
