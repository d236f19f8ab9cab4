"""``kmo-ledger serve`` in a child process on a free local port, for the fault
drill and the HTTP benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not start within {seconds:.0f} s")


class Server:
    """``kmo-ledger serve`` (with ``workers`` processes) in a session of its own,
    so a kill takes the whole server, workers included, as a crash would."""

    def __init__(self, env: dict[str, str], workdir: str, workers: int = 1):
        self.env, self.workdir, self.port, self.workers = env, workdir, free_port(), workers
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-c",
            "import sys; from scripts.cli import main; sys.exit(main())",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.workdir,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(self.url + "/openapi.json")

    def kill(self) -> None:
        with self.lock:
            if self.process is not None:
                self._kill_all()
                self.kills += 1

    def restart(self) -> None:
        with self.lock:
            self.start()

    def stop(self) -> None:
        if self.process is not None:
            stop_session(self.process)

    def _kill_all(self) -> None:
        """SIGKILL to every process of the server's session, then reap the server."""
        assert self.process is not None
        _kill_session(self.process)


def stop_session(process: subprocess.Popen, seconds: float = 10) -> None:
    """Stop a server started in a session of its own: SIGTERM (uvicorn stops
    its workers), then SIGKILL to whatever of the session is left."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass
    _kill_session(process)


def _kill_session(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
