"""`/u/demo/callback`: a stand-in redirect URI for trying the flow in a browser by hand.

`make run` registers a demo client whose redirect lands here; the page lists the query
parameters (escaped) and, with a nonce-allowed script, the fragment's. It holds no state and
trusts nothing it shows; the script drops the fragment from the address bar once read.
"""

from __future__ import annotations

from aiohttp import web

from .pages import render

DEMO_CALLBACK_PATH = "/u/demo/callback"


async def demo_callback(request: web.Request) -> web.Response:
    query = sorted(request.query.items())
    return await render(request, "callback.html", {"query": query}, with_script=True)


def demo_callback_routes() -> list[web.RouteDef]:
    return [web.get(DEMO_CALLBACK_PATH, demo_callback)]
