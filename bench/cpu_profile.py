"""Where a server process spends its CPU under load: a py-spy profile grouped by component.

py-spy samples the running process from outside (no code change, no import); each sample's
stack is charged to the first component found walking from the innermost frame outwards
(the event loop only when no other component is on the stack),
so the shares add up to 100% of the samples the process was busy.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# (component, substrings of a frame that belong to it), tried from the innermost frame out.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("redis client (rate limit, cap)", ("redis/", "hiredis")),
    ("mongodb client (insert)", ("pymongo/", "bson/")),
    ("rabbitmq client (client events)", ("aio_pika/", "aiormq/", "pamqp/")),
    (
        "client metadata validation",
        ("oidc_common/client_metadata/", "oidc_common/redirect_uris.py", "oidc_common/uris.py"),
    ),
    ("json encode/decode", ("json/",)),
    ("prometheus metrics", ("prometheus_client/",)),
    ("logging", ("logging/", "oidc_common/logs.py")),
    ("registration code", ("registration_service/", "oidc_common/")),
    ("http server (aiohttp, yarl, multidict)", ("aiohttp/", "yarl/", "multidict/")),
]
# Socket writes and callbacks are charged to the library that asked for them; only what no
# library frame claims (polling, waking tasks, reading replies) is the event loop's own.
EVENT_LOOP = "event loop (polling, callbacks, socket reads)"


# Where the loop hands over to a callback: asyncio's Handle._run, or, under uvloop (whose
# loop is compiled code py-spy does not show), the asyncio Runner that started the loop.
_CALLBACKS = ("Handle._run (asyncio/events.py", "Runner.run (asyncio/runners.py")
_IDLE_WORKER = "_worker (concurrent/futures/thread.py"


def py_spy() -> str | None:
    """py-spy from this environment (a dev dependency), else from the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """A py-spy recording of one process, started before a load run and read after it."""

    def __init__(self, executable: str, pid: int, seconds: int, cpu: int) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="dcr-profile-"))
        self._raw = self._dir / "profile.txt"
        self._process = subprocess.Popen(
            # On the load generator's CPU, so the sampler does not take the server's time.
            [
                *("taskset", "-c", str(cpu), executable, "record", "-p", str(pid)),
                *("-d", str(seconds), "-f", "raw", "-o", str(self._raw)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def breakdown(self) -> list[tuple[str, float]]:
        _, err = self._process.communicate(timeout=120)
        try:
            if self._process.returncode != 0 or not self._raw.exists():
                raise RuntimeError(f"py-spy failed: {err.decode(errors='replace').strip()}")
            return group(self._raw.read_text())
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


def group(raw: str) -> list[tuple[str, float]]:
    """Shares (percent of busy samples) per component, largest first."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if _IDLE_WORKER in frames[-1]:
            continue  # an idle thread-pool worker py-spy did not recognise as waiting
        counts[_component(frames)] += int(count)
    total = sum(counts.values()) or 1
    return [(name, 100 * n / total) for name, n in counts.most_common()]


def _component(frames: list[str]) -> str:
    # Only the callback the loop is running says who asked for the work; the frames above
    # it (run_app, run_forever) are on every stack.
    callback = max(
        (i for i, f in enumerate(frames) if any(c in f for c in _CALLBACKS)), default=len(frames)
    )
    for frame in reversed(frames[callback + 1 :]):
        for name, markers in COMPONENTS:
            if any(marker in frame for marker in markers):
                return name
    return EVENT_LOOP
