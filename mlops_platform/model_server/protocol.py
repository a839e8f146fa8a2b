"""HTTP/1.1 connections with header and body deadlines, on top of uvicorn's httptools protocol.

uvicorn times out only idle keep-alive connections (`timeout_keep_alive`, armed after a
response). A connection that opens and sends nothing, sends its headers a byte at a time, or
declares a body and trickles it, is held forever: a few hundred of them exhaust the connection
limit and the file descriptors, and valid clients starve. The deadlines live here because this
is the only layer that sees a connection before the application is called (headers) and knows
when a request's body ends whether or not the application reads it (a body sent to an endpoint
that ignores it would otherwise keep the connection open). Subclassing keeps uvicorn's parser,
flow control, keep-alive and graceful shutdown as they are.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers (counted from the connection's opening, or
    from the first byte of a later request on it) or body (counted from the end of the headers)
    take longer than the class's `header_timeout` / `body_timeout` seconds."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm(self.header_timeout, "request headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm(self.header_timeout, "request headers")

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout, "request body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info(
                "closing a connection from %s: %s not received within %g s",
                _peer(self),
                what,
                seconds,
            )
            # The application, if it is waiting for the body, receives http.disconnect.
            self.transport.close()


def _peer(protocol: Any) -> str:
    client = getattr(protocol, "client", None)
    return f"{client[0]}:{client[1]}" if client else "unknown peer"


def protocol_class(header_timeout: float, body_timeout: float) -> type[DeadlineHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, with these deadlines."""
    return type(
        "DeadlineHttpToolsProtocol",
        (DeadlineHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
