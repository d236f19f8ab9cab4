"""The API's routers, all mounted under ``/v1``."""
