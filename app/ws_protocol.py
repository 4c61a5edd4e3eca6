"""uvicorn's WebSocket protocol, with a close that cannot leave a socket hanging.

uvicorn's own close (a) first waits until the transport is writable — never, for a client
that stopped reading — and (b) when the peer does not answer the close frame, calls
`transport.close()`, which asyncio only carries out once every buffered byte is sent. A
slow reader the hub dropped (4008) therefore kept its server-side socket ESTABLISHED with
megabytes unsent until the client went away by itself.

Here the close frame is queued behind what the client has not read yet, without waiting,
and a client that does not read up to it and answer within `CLOSE_GRACE_S` is aborted
(the socket and its buffers are freed at once; the client sees an abnormal closure and
resumes with `after_seq` like after any drop).

This leans on the sans-I/O protocol's attributes (`conn`, `queue`, `close_sent`,
`close_timer`); tests/reliability/test_sockets.py pins the behaviour, so a uvicorn release
that changes them fails there rather than in production.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

CLOSE_GRACE_S = 5.0


class PromptCloseProtocol(WebSocketsSansIOProtocol):
    async def send(self, message: Any) -> None:
        closing = (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.transport.is_closing()
        )
        if closing and not self.writable.is_set():
            # the peer is not reading: do not wait for it to make room for the close frame
            code, reason = message.get("code", 1000), message.get("reason", "") or ""
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        else:
            await super().send(message)
        if closing and self.close_sent and not self.transport.is_closing():
            if self.close_timer is not None:
                self.close_timer.cancel()
            self.close_timer = self.loop.call_later(CLOSE_GRACE_S, self.transport.abort)
