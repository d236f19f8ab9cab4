"""Command line for operations, auditors and reconciliation (``kmo-ledger``)."""
