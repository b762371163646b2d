"""A client's back-channel logout endpoint for tests (OpenID Connect Back-Channel Logout 1.0
§2.5): an HTTP server on loopback that records each `logout_token` it is sent and answers
`status`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from .stack import free_port


@dataclass
class LogoutReceiver:
    port: int = field(default_factory=free_port)
    status: int = 200
    delay: float = 0.0  # seconds before answering (a receiver that hangs)
    tokens: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel"

    async def start(self) -> None:
        async def receive(request: web.Request) -> web.Response:
            self.tokens.append(str((await request.post())["logout_token"]))
            await asyncio.sleep(self.delay)
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/backchannel", receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def wait_for(self, count: int, seconds: float = 10.0) -> None:
        """Until `count` tokens arrived; TimeoutError after `seconds`."""
        async with asyncio.timeout(seconds):
            while len(self.tokens) < count:  # noqa: ASYNC110 - filled by the receiving server
                await asyncio.sleep(0.05)
