"""``kmo-ledger rebuild-projections``: drop the read models and fold them again
from event 1, wallet after wallet, with a progress bar on a terminal.

The views live beside the events (``KMO_LEDGER_DATABASE_URL``). The result
equals the views built incrementally, row for row; a rebuild interrupted by a
crash is finished by the next catch-up (or by running this again).
"""

from __future__ import annotations

import time

from scripts import common as cli

PROG = "kmo-ledger rebuild-projections"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _run(argv))


def _run(argv: list[str] | None) -> int:
    parser = cli.parser("rebuild-projections", "Drop and rebuild the read models from event 1.")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="EVENTS",
        help="events per transaction (whole wallets; default 5000)",
    )
    args = parser.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        raise cli.UsageError("--batch-size must be at least 1")
    from projections.runner import REBUILD_BATCH_SIZE, Projector

    with cli.open_ledger() as ledger:
        with Projector(
            ledger, cli.database_url(), rebuild_batch_size=args.batch_size or REBUILD_BATCH_SIZE, check_schema=False
        ) as projector:
            total = projector.log.max_id()
            shown = 0
            with cli.progress("Rebuilding the read models", total) as advance:

                def progress(_applied: int, done: int, _total: int) -> None:
                    nonlocal shown
                    advance(done - shown)
                    shown = done

                started = time.perf_counter()
                applied = projector.rebuild(progress)
                seconds = time.perf_counter() - started
            position = projector.committed_position()
    result = {
        "events_applied": applied,
        "position": position,
        "seconds": round(seconds, 3),
        "events_per_second": round(applied / seconds) if seconds > 0 else None,
    }
    if args.json:
        cli.print_json(result)
    else:
        cli.console().print(
            f"Rebuilt the read models: {applied} event(s) through notification {position} in {seconds:.1f}s"
        )
    return cli.EXIT_OK
