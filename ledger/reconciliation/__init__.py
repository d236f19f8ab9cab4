"""Reconciliation: bank statements (camt.053, CSV) matched against the ledger's money events."""
