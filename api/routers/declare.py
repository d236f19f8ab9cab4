"""How every operation is declared, written once: the endpoint's name is its
stable operation id and its docstring the description; every operation may
answer the problems 401 (the gate) and 422 (validation), the others it may
answer are named by status; a read of a wallet's version sends it as ``ETag``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from api.params import ETAG_HEADER
from api.problems import problem_responses

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

EVERY_OPERATION_PROBLEMS = (401, 422)
COMMAND_PROBLEMS = (403, 404, 412)
"""A command on an existing wallet: another role's key, no such wallet, a stale If-Match."""


def operation(
    method: Callable[..., Callable[[Endpoint], Endpoint]],
    path: str,
    summary: str,
    response_model: Any,
    *problems: int,
    status_code: int | None = None,
    etag: bool = False,
) -> Callable[[Endpoint], Endpoint]:
    """Declare the decorated function as the operation ``method`` (a router's
    ``get`` or ``post``) of ``path``, answering ``response_model``, or a problem
    of one of the ``problems`` statuses or of those every operation may answer."""
    responses = problem_responses(*sorted({*EVERY_OPERATION_PROBLEMS, *problems}))
    if etag:
        responses = {200: {"headers": ETAG_HEADER}, **responses}

    def declare(endpoint: Endpoint) -> Endpoint:
        route = method(
            path,
            status_code=status_code,
            response_model=response_model,
            operation_id=endpoint.__name__,
            summary=summary,
            responses=responses,
        )
        return route(endpoint)

    return declare
