"""Path parameters and headers shared by the routers and the authorisation dependencies.

Path parameters are identifiers under the one text rule (:mod:`ledger.domain.text`):
a control or bidirectional formatting character in one is a 422 naming it,
never echoed back in a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from ledger.domain.text import Identifier


def never_null(schema: dict[str, Any]) -> None:
    """The document's schema of an optional parameter (``X | None = None``): the
    parameter is absent or an ``X``, never null, so a generated client offers
    no ``None`` to send. Given as the parameter's ``json_schema_extra``."""
    branches = schema.pop("anyOf")
    schema.update(next(branch for branch in branches if branch.get("type") != "null"))


EnterpriseNumber = Annotated[
    Identifier,
    Path(
        max_length=32,
        description="Enterprise number in any common spelling (0403170701, BE 0403.170.701)",
        examples=["0403170701"],
    ),
]
ApplicationId = Annotated[Identifier, Path(max_length=64, description="The application's `application_id`")]
ProviderNumber = Annotated[Identifier, Path(max_length=32, description="Registration number, e.g. DV.O207084")]
ETAG_HEADER = {
    "ETag": {
        "description": 'The wallet\'s version, e.g. "5": send it back as If-Match',
        "schema": {"type": "string", "examples": ['"5"']},
    }
}
"""The ``ETag`` of a wallet read, for the OpenAPI document."""
