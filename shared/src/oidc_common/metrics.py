"""Prometheus request metrics, one registry per application (tests build several apps)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The settings path's latencies (propagation lag, the settings write), in seconds: from a
# millisecond, what a change takes on an idle machine, to half a minute (an outage).
SETTINGS_PATH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30)

# Methods beyond the usual ones (WebDAV and others the parser accepts) share one label,
# so no caller can mint series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route, method and status",
            ["service", "route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            ["service", "route", "method", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self._service = service
        # The labelled series by (route, method, status): prometheus_client's `labels()`
        # takes a lock and builds a key on every call; the set of keys is small and fixed.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def middleware(self) -> Middleware:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                route = request.match_info.route.resource
                # Label by route template, never by raw path: client ids must not explode series.
                label = route.canonical if route is not None else "unmatched"
                method = request.method if request.method in KNOWN_METHODS else "other"
                count, latency = self._series_for(label, method, status)
                count.inc()
                latency.observe(time.perf_counter() - started)

        return record

    def _series_for(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            labels = (self._service, route, method, str(status))
            series = self._series[key] = (
                self.requests.labels(*labels),
                self.latency.labels(*labels),
            )
        return series
