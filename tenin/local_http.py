"""A small HTTP/1.1 server on 127.0.0.1 for stand-ins of other platforms (the recording
LINE server): one asyncio loop in a thread of its own, requests parsed by httptools
(llhttp, the C parser behind uvicorn).

It answers many connections from one thread at a few tens of µs of CPU a request. The
`http.server` threads it replaces cost ~270 µs a push (the email package's header parser
and 16 threads taking turns at the GIL): in a drop benchmark that was a sixth of the
machine's CPU spent playing LINE, taken from the services under test.

Each complete request is passed to `answer(method, path, headers, body)` on the loop's
thread; its `(status, headers, body)` goes back on the same connection, in request order,
after `delay_s` (a platform's latency). A request whose connection closed before its body
arrived in full (a sender killed mid-request) is passed with `truncated=True`; its answer
has nowhere to go.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

# The answer to one request: status, extra headers, JSON body.
Answer = tuple[int, dict[str, str], bytes]
Answerer = Callable[["Request"], Answer]
# A sender opens up to 16 connections at once; a backlog of 5 left some waiting for a
# SYN retry (~1 s) at the start of every run.
BACKLOG = 128


@dataclass
class Request:
    """One request as it arrived."""

    method: str = ""
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    chunks: list[bytes] = field(default_factory=list)
    truncated: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class LocalHttpServer:
    """Serves `answer` on 127.0.0.1 (a free port) until `stop()`."""

    def __init__(self, answer: Answerer, *, delay_s: Callable[[], float] = lambda: 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        # Bound now, so the address is known before the loop starts.
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="local-http", daemon=True)
        self._started = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        # Requests answered after `delay_s`: how many wait now, and the most that did at
        # once (written on the loop's thread only).
        self.in_flight = 0
        self.most_in_flight = 0
        self.connections: set[_Connection] = set()  # open now (the loop's thread only)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._server is None:
            raise RuntimeError("the local HTTP server did not start (see the thread's error)")

    def stop(self) -> None:
        """Stop listening, close every connection, end the loop's thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._shut_down)
            self._thread.join()
        self._socket.close()

    def _shut_down(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        self._loop.call_soon(self._loop.stop)  # after the connections' close callbacks

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                self._loop.create_server(lambda: _Connection(self), sock=self._socket)
            )
        finally:
            self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()


class _Connection(asyncio.Protocol):
    """One client connection: requests parsed as they arrive, answers sent in order."""

    def __init__(self, server: LocalHttpServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._request: Request | None = None  # the one being read
        self._url = b""
        self._answers: deque[list[bytes | None]] = deque()  # in request order
        self._closing = False

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._send_now(_response(400, {}, b'{"message":"Bad request"}', keep_alive=False))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._server.connections.discard(self)
        request, self._request = self._request, None
        if request is not None:  # the sender went away mid-request
            request.truncated = True
            with contextlib.suppress(Exception):  # its answer has nowhere to go anyway
                self._server.answer(request)

    # --- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._request, self._url = Request(), b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._request is not None
        self._request.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self._request is not None
        self._request.method = self._parser.get_method().decode("ascii")
        self._request.path = httptools.parse_url(self._url).path.decode("utf-8", "replace")
        if self._request.headers.get("expect", "").lower() == "100-continue":
            self._send_now(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        assert self._request is not None
        self._request.chunks.append(body)

    def on_message_complete(self) -> None:
        request, self._request = self._request, None
        assert request is not None
        keep_alive = self._parser.should_keep_alive()
        slot: list[bytes | None] = [None]
        self._answers.append(slot)
        server = self._server
        server.in_flight += 1
        server.most_in_flight = max(server.most_in_flight, server.in_flight)

        def reply() -> None:
            self._server.in_flight -= 1
            try:
                status, headers, body = self._server.answer(request)
            except Exception:  # a fault of the stand-in: the client gets a 500, not a hang
                status, headers, body = 500, {}, b'{"message":"Internal error"}'
            slot[0] = _response(status, headers, body, keep_alive=keep_alive)
            self._flush()
            if not keep_alive:
                self.close()

        delay = self._server.delay_s()
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, reply)
        else:
            reply()

    # --- writing ----------------------------------------------------------------------

    def _flush(self) -> None:
        """Send the answers that are ready, up to the first one still being worked out."""
        while self._answers and self._answers[0][0] is not None:
            self._send_now(self._answers.popleft()[0] or b"")

    def _send_now(self, data: bytes) -> None:
        if self._transport is not None and not self._closing:
            self._transport.write(data)

    def close(self) -> None:
        """Close the connection (after what is already written)."""
        if self._transport is not None and not self._closing:
            self._closing = True
            self._transport.close()


def _response(status: int, headers: dict[str, str], body: bytes, *, keep_alive: bool) -> bytes:
    """The bytes of an HTTP/1.1 answer with a JSON body."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a status a test made up
        phrase = "Status"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
