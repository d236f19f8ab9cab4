"""``kmo-ledger serve`` in a child process on a free local port, for the fault
drill and the HTTP benchmark."""

from __future__ import annotations

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
    """``kmo-ledger serve`` in a child process that can be killed and started again."""

    def __init__(self, env: dict[str, str], workdir: str):
        self.env, self.workdir, self.port = env, workdir, free_port()
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-c", "import sys; from scripts.cli import main; sys.exit(main())",
                   "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.env, cwd=self.workdir,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(self.url + "/openapi.json")

    def kill(self) -> None:
        with self.lock:
            if self.process is not None:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
                self.kills += 1

    def restart(self) -> None:
        with self.lock:
            self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
