"""The notices' tests use the API's fixtures (a TestClient per role)."""

from tests.api.conftest import api, api_on_every_store, keys_file  # noqa: F401
