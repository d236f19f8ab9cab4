"""The HTTP stack's own floor, for ``kmo-ledger bench``.

The framework stack of ``kmo-ledger serve`` (FastAPI on uvicorn with its
access log, a plain ``def`` route run in the thread pool, a JSON body
validated by pydantic, a JSON answer) around a route that does nothing but
keep the CPU busy for as long as one in-process ledger command takes
(``KMO_LEDGER_BENCH_BURN`` seconds). Without the ledger's own middleware,
authorisation and answers, its rate under the same clients over the
in-process command rate is the best ratio any route of this stack could reach
on this machine: the framework's share of the HTTP figure, measured in the
same run.
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

BURN_SECONDS = float(os.environ.get("KMO_LEDGER_BENCH_BURN", "0"))

app = FastAPI()


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")


@app.post("/floor")
def floor(body: Body) -> dict:
    deadline = time.perf_counter() + BURN_SECONDS
    while time.perf_counter() < deadline:  # CPU, as a command is; not a sleep
        pass
    return {"fields": len(body.model_extra or {})}
