"""``kmo-ledger notify``: the notifier on its own (#20). Derives the notices of
every new event, the reminders due today, and delivers what is due
(``KMO_LEDGER_SMTP_URL`` for e-mail, the provider directory for webhooks);
``--once`` runs one pass, otherwise it runs until SIGTERM or SIGINT. One
process delivers at a time: beside ``serve``'s own notifier, whichever holds
the lease delivers and the other waits."""

from __future__ import annotations

import signal
import threading

from scripts import common as cli

PROG = "kmo-ledger notify"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _notify(argv))


def _notify(argv: list[str] | None) -> int:
    parser = cli.parser("notify", "Derive and deliver the notices (e-mail, webhooks); --once for one pass.")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between passes when idle (default 1)")
    args = parser.parse_args(argv)
    if not 0.05 <= args.poll <= 3600:
        raise cli.UsageError("--poll is 0.05 to 3600 seconds")

    from ledger.notices.settings import NoticeSettings
    from projections.notifier import Notifier

    settings = NoticeSettings()
    with cli.open_ledger() as ledger:
        notifier = Notifier(ledger, settings)
        try:
            if args.once:
                report = notifier.run_pass()
                counts = notifier.store.counts()
                if args.json:
                    cli.print_json({"pass": report.__dict__, "notices": counts})
                else:
                    lease = "" if report.holding_lease else " (another process holds the lease: nothing done)"
                    cli.console().print(
                        f"derived {report.derived}, reminders {report.reminders}, delivered {report.delivered}, "
                        f"failed attempts {report.failed}{lease}; notices: "
                        + ", ".join(f"{status} {n}" for status, n in counts.items())
                    )
                return cli.EXIT_OK
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            notifier.run_forever(stop, args.poll)
        finally:
            notifier.close()
    return cli.EXIT_OK
