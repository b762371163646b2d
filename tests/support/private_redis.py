"""A redis-server of the test's own, configured like the local stack's (deploy/local/redis.conf:
append-only file on), which a test may stop and start again as an operator restarts Redis,
without touching the Redis other tests share."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from .stack import ROOT, free_port

CONFIG = ROOT / "deploy" / "local" / "redis.conf"


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        """Start it (again, on the same port and files); returns once it answers PING,
        i.e. once it has loaded its append-only file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                "redis-server",
                str(CONFIG),
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--daemonize",
                "no",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    pass
                if self._process.poll() is not None:
                    break
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server did not start (see {self.folder / 'redis.log'})")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, as a service manager stops it: Redis writes its append-only file out and
        exits; every client connection is closed."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
