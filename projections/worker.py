"""The standalone catch-up worker: ``python -m projections.worker``.

Reads ``KMO_LEDGER_DATABASE_URL`` and keeps the views beside the events up to
date until interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ledger.build import LedgerSettings
from projections.runner import run_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m projections.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between polls (default 0.5)")
    # a rebuild's worker process (see projections.runner): the wallet ranges it is given on stdin
    parser.add_argument("--fold-ranges", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--until", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fold_ranges:
        from projections.runner import fold_ranges_in_this_process

        fold_ranges_in_this_process(args.until, args.batch_size)
        return 0
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run_worker(LedgerSettings().database_url, stop=stop, poll_seconds=args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())
