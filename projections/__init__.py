"""Read models (projections) folded from the ledger's notification log; rebuildable.

In process::

    projector = Projector(ledger)            # views beside the events by default
    projector.catch_up()                     # or projector.wait_until(position)
    views = Queries(projector.views_url)
    views.deadlines_within(14, today)

As a worker: ``python -m projections.worker``; from scratch:
``kmo-ledger rebuild-projections``.
"""

from projections.audit import PurgeRefused, mark_exported, purge_audit_trail
from projections.consistency import find_differences
from projections.queries import Queries
from projections.runner import Projector, ReadModelsStuck, catch_up, rebuild, run_worker

__all__ = [
    "ReadModelsStuck",
    "Projector",
    "PurgeRefused",
    "Queries",
    "catch_up",
    "find_differences",
    "mark_exported",
    "purge_audit_trail",
    "rebuild",
    "run_worker",
]
