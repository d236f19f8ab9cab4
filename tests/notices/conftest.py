"""The notices' tests use the API's fixtures (a TestClient per role) and a real
SMTP server on loopback."""

from collections.abc import Iterator

import pytest

from scripts.notice_receivers import MailBox
from tests.api.conftest import api, api_on_every_store, keys_file  # noqa: F401


@pytest.fixture
def mailbox() -> Iterator[MailBox]:
    """An SMTP server (aiosmtpd) on a free 127.0.0.1 port, keeping what arrives."""
    box = MailBox().start()
    yield box
    box.stop()
