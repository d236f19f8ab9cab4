"""The domain: the scheme's rules and the wallet's events, state and decisions.

It imports nothing outward: no storage, no eventsourcing infrastructure, no
FastAPI, no projections (checked by the import contracts in pyproject.toml).
"""
