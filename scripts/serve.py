"""``kmo-ledger serve``: run the HTTP API with uvicorn.

Without ``KMO_LEDGER_API_KEYS_FILE`` a keys file with fresh random keys (one
per role and one provider key) is created under ``./var`` the first time;
either way the file in use is printed.

``--workers N`` serves from N processes (one per core is the usual choice:
one Python process computes on one core at a time). They share the store:
each command is still decided on the wallet's latest version (a process that
finds the wallet changed by another decides again), and SQLite's writers of
every process take turns (:class:`ledger.storage.writer.WriterTurn`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from api.console.session import console_secret
from api.observability import OperationsSettings, log_config
from api.settings import ROLES, Settings, SettingsError, ensure_keys_file
from api.transport import TransportLimits
from ledger.build import build_ledger
from ledger.domain.errors import LedgerError

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PREFIX = "kmo-ledger-metrics-"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"kmo-ledger serve: {message}", file=sys.stderr)
        raise SystemExit(2)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port between 1 and 65535")
    return port


def _workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if not 1 <= workers <= 64:
        raise argparse.ArgumentTypeError(f"{workers} is not a number of processes between 1 and 64")
    return workers


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="kmo-ledger serve", description="Run the ledger's HTTP API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="server processes sharing the store (default 1; one per core serves the most)",
    )
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # --help (0) or bad usage (2)
        return int(exit_.code or 0)
    try:
        settings = Settings()
        keys_file = settings.keys_file()
        created = settings.api_keys_file is None and ensure_keys_file(keys_file)
        keys = settings.load_keys()
        if args.workers > 1 and _in_memory(settings.database_url):
            raise SettingsError("a store in memory belongs to one process: serve it with --workers 1")
        TransportLimits()
        OperationsSettings()
        console_secret(settings)  # made or read now: a worker that cannot would stop with a trace
        _open_store(settings)
    except (SettingsError, ValidationError) as error:
        reason = _first_error(error) if isinstance(error, ValidationError) else str(error)
        print(f"kmo-ledger serve: {reason}", file=sys.stderr)
        return 2
    roles = sorted({key.role for key in keys.values()}, key=ROLES.index)
    verb = "created" if created else "using"
    print(f"API keys: {verb} {keys_file.resolve()} ({', '.join(roles)})")
    if settings.sandbox:
        print("Sandbox: back-office moves the clock forward with POST /v1/sandbox/clock")
    import uvicorn

    from api import create_app
    from api.transport import PROTOCOL, LimitedProtocol

    # JSON lines, one per request from the app itself: uvicorn's access lines are off
    log_options = {"log_config": log_config(), "access_log": False}
    with _metrics_folder():
        if args.workers == 1:
            # the factory itself, not an import string: a folder named "api" in the
            # working directory must not shadow the package
            uvicorn.run(create_app, factory=True, host=args.host, port=args.port, http=LimitedProtocol, **log_options)
        else:
            # each worker process imports the factory (uvicorn puts no working
            # directory on the path for it: no app_dir is given)
            uvicorn.run(
                "api.app:create_app",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                http=PROTOCOL,
                **log_options,
            )
    return 0


@contextmanager
def _metrics_folder() -> Iterator[None]:
    """A fresh folder, private to this server, where each worker writes its
    metrics for ``/metrics`` to sum (prometheus_client's multiprocess mode:
    ``PROMETHEUS_MULTIPROC_DIR``, which the workers, started after this,
    inherit). Made anew at every start, so no figure of an earlier run is
    counted; removed when the server stops, or by the next start after a
    server that was killed."""
    _remove_folders_of_dead_servers()
    folder = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")  # mode 0700
    before = os.environ.get(MULTIPROCESS_VARIABLE)
    os.environ[MULTIPROCESS_VARIABLE] = folder
    # uvicorn, stopped by SIGTERM, shuts down and raises the signal again with
    # the handler it found: this one, so that the folder is removed on the way out
    terminate = _on_sigterm(_exit_on_signal)
    try:
        yield
    finally:
        if terminate is not None:
            _on_sigterm(terminate)
        if before is None:
            os.environ.pop(MULTIPROCESS_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_VARIABLE] = before
        shutil.rmtree(folder, ignore_errors=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _on_sigterm(handler: Any) -> Any:
    """Set SIGTERM's handler; the one it replaces (None: only the main thread may)."""
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None
    return signal.SIG_DFL if previous is None else previous


def _remove_folders_of_dead_servers() -> None:
    """The metrics folders of servers no longer running (killed before they could
    remove their own): their process id is in their name."""
    for folder in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = folder.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _open_store(settings: Settings) -> None:
    """Open the store once before serving (creating its tables, and on
    PostgreSQL its schema, if missing), so a store that cannot be used stops
    the server with one line instead of a trace from every worker."""
    if _in_memory(settings.database_url):
        return
    try:
        build_ledger(settings).close()
    except LedgerError as error:
        raise SettingsError(f"cannot open the store: {error.detail}") from None
    except Exception as error:  # the library's or the driver's own error: its first line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SettingsError(f"cannot open the store: {reason}") from None


def _first_error(error: ValidationError) -> str:
    """The first problem, named by its environment variable."""
    first = error.errors()[0]
    where = "_".join(str(part) for part in first["loc"]).upper()
    return f"KMO_LEDGER_{where}: {first['msg']}" if where else first["msg"]


def _in_memory(database_url: str) -> bool:
    return database_url == "memory://" or ":memory:" in database_url or "mode=memory" in database_url


if __name__ == "__main__":
    sys.exit(main())
