"""FastAPI edge of the ledger: ``create_app()`` builds the app from the
environment, read when it is called."""

from api.app import create_app

__all__ = ["create_app"]
