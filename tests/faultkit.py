"""Faults for one identity among healthy ones: a routing transport and broken endpoints.

`Router` is an httpx transport for the shared `HubClient`: requests of the *victim* identity (its
token request, by Basic username, and its HEADs, by a bearer token the fault hub issued) go to a
`Fault`; every other request goes to the healthy simulated hub. Both legs are real loopback
sockets, except the DNS fault, which raises in-process what httpx raises when a name does not
resolve (no real DNS is ever queried). Every victim request is counted by step.

Faults: a second simulated hub with fault switches (`SimFault`), a closed port (refused), a
listener whose accept queue is full (connect timeout), a TLS hub whose certificate nobody trusts
(`trustme`), and a resolver failure.
"""

from __future__ import annotations

import base64
import functools
import socket
import ssl
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import trustme

from pullwatch.simhub import HubModel, SimHubServer

STEPS = {"/token": "token", "/v2/": "ping"}


@functools.cache
def _client_tls() -> ssl.SSLContext:
    """One default client TLS context for every transport (building one costs ~30 ms)."""
    return ssl.create_default_context()


def transport(verify: ssl.SSLContext | None = None) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(verify=verify or _client_tls())


def step_of(request: httpx.Request) -> str:
    path = request.url.path
    return "head" if "/manifests/" in path else STEPS.get(path, "other")


def _basic_user(request: httpx.Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value).decode().partition(":")[0]
    except ValueError:
        return None


def _bearer(request: httpx.Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value if scheme.lower() == "bearer" else None


class Fault:
    """Where the victim's requests go. `heal()` makes them work again."""

    model: HubModel | None = None  # a fault hub's model (its tokens identify the victim)
    serves_when_healed = False  # healed: keep sending here (switches cleared) or go healthy

    def __init__(self) -> None:
        self.healed = False
        self._http = transport()

    async def send(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def heal(self) -> None:
        self.healed = True

    def issued(self, token: str) -> bool:
        return self.model is not None and self.model.lookup_token(token) is not None

    def close(self) -> None:
        """Release sockets and servers (sync: called from fixtures)."""

    async def aclose(self) -> None:
        await self._http.aclose()


class Redirect(Fault):
    """Send the request to another host:port (and scheme) over real sockets."""

    def __init__(self, scheme: str, port: int, transport: httpx.AsyncHTTPTransport | None = None):
        super().__init__()
        self.scheme = scheme
        self.port = port
        if transport is not None:
            self._http = transport

    async def send(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self.scheme, host="127.0.0.1", port=self.port)
        return await self._http.handle_async_request(request)


class SimFault(Redirect):
    """A second simulated hub with fault switches set; healing clears them."""

    serves_when_healed = True

    def __init__(self, server: SimHubServer, **switches: object) -> None:
        super().__init__("http", server.port)
        self.server = server
        self.model = server.model
        self.model.faults.update(switches)

    def heal(self) -> None:
        super().heal()
        self.model.faults.clear()  # type: ignore[union-attr]

    def close(self) -> None:
        self.server.stop()


class Refused(Redirect):
    """A port nothing listens on."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        super().__init__("http", port)


class Blackhole(Redirect):
    """A listener whose accept queue is full: a SYN is never answered, connect() times out."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        port = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            self._fillers.append(filler)
        super().__init__("http", port)

    def close(self) -> None:
        for sock in [*self._fillers, self._listener]:
            sock.close()


class UntrustedTls(Redirect):
    """A simulated hub over TLS with a trustme certificate the client does not trust."""

    def __init__(self, model: HubModel) -> None:
        self.ca = trustme.CA()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server = SimHubServer(model, tls=context).start()
        super().__init__("https", self.server.port, transport())
        self.model = model

    def trusting_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def close(self) -> None:
        self.server.stop()


class Unresolvable(Fault):
    """What httpx raises when the host name does not resolve (in-process: no DNS query)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def send(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise httpx.ConnectError(f"[Errno {cause.errno}] {cause.strerror}", request=request) from (
            cause
        )


class Router(httpx.AsyncBaseTransport):
    """The victim's requests to `fault` (until healed: then to the healthy hub), the rest to it."""

    def __init__(self, fault: Fault, victim_username: str) -> None:
        self.fault = fault
        self.victim_username = victim_username
        self.victim = Counter[str]()
        self.healthy = Counter[str]()
        self._http = transport()

    def is_victim(self, request: httpx.Request) -> bool:
        if _basic_user(request) == self.victim_username:
            return True
        token = _bearer(request)
        return token is not None and self.fault.issued(token)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.is_victim(request):
            self.victim[step_of(request)] += 1
            if not self.fault.healed or self.fault.serves_when_healed:
                return await self.fault.send(request)
        else:
            self.healthy[step_of(request)] += 1
        return await self._http.handle_async_request(request)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.fault.aclose()


@contextmanager
def closing(fault: Fault) -> Iterator[Fault]:
    with ExitStack() as stack:
        stack.callback(fault.close)
        yield fault
