"""Reaching a simulated hub under a fixed name instead of its port.

Snapshots and screenshots show the registry URL (the HEAD check's URL, the token realm, the
report's registry line). A fixed port would keep it the same from run to run but stops two test
runs sharing a machine; so the server listens on a free port and says it is
`http://simhub.localhost` (RFC 6761: `.localhost` names are loopback), and the client reaches it
through `NamedLoopbackTransport`, which sends requests for that name to the real port. The
requests are real HTTP over loopback; only the name-to-port step is ours, as a resolver's would be.
"""

from __future__ import annotations

import httpx

SIMHUB_NAME = "simhub.localhost"


class NamedLoopbackTransport(httpx.AsyncBaseTransport):
    """Requests for `name` go to 127.0.0.1:`port`; the Host header keeps the name."""

    def __init__(self, name: str, port: int) -> None:
        self._name = name
        self._port = port
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == self._name:
            request.url = request.url.copy_with(host="127.0.0.1", port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
