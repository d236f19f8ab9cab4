"""Path parameters and headers shared by the routers and the authorisation dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

EnterpriseNumber = Annotated[
    str,
    Path(
        max_length=32,
        description="Enterprise number in any common spelling (0403170701, BE 0403.170.701)",
        examples=["0403170701"],
    ),
]
ApplicationId = Annotated[str, Path(max_length=64, description="The application's `application_id`")]
ProviderNumber = Annotated[str, Path(max_length=32, description="Registration number, e.g. DV.O207084")]
ETAG_HEADER = {
    "ETag": {
        "description": 'The wallet\'s version, e.g. "5": send it back as If-Match',
        "schema": {"type": "string", "examples": ['"5"']},
    }
}
"""The ``ETag`` of a wallet read, for the OpenAPI document."""
