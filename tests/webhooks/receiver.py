"""A real HTTP webhook receiver on 127.0.0.1 for the tests, with switchable behaviour.

Given the subscription's secret (`secret`), it verifies every request as a subscriber
would, with the `standardwebhooks` library, and answers 400 to one that does not verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass, field

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    target: str = ""  # path and query the request was sent to
    verified: dict | None = None  # the verified event, when the receiver has a secret

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Serves POSTs; `fail_next` answers 500 that many times; `delay` sleeps before answering."""

    port: int = 0
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0
    delay: float = 0.0
    status: int = 200
    answer: bytes = b"ok"
    reply_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        target = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        received = Received(headers, body, target)
        self.received.append(received)
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.status
        if self.secret is not None:
            try:
                received.verified = Webhook(self.secret).verify(body, headers)
            except (WebhookVerificationError, ValueError):  # ValueError: malformed header
                status = 400
        if self.fail_next > 0:
            self.fail_next -= 1
            status = 500
        await send({"type": "http.response.start", "status": status, "headers": self.reply_headers})
        answer = self.answer if status < 300 else b"nope"
        await send({"type": "http.response.body", "body": answer})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("receiver did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        self._server = None
        self._task = None

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]

    def events(self) -> list[dict]:
        """The verified events, in arrival order (every request must have verified)."""
        assert self.secret is not None, "give the receiver the subscription's secret"
        unverified = [r.webhook_id for r in self.received if r.verified is None]
        assert not unverified, f"requests that did not verify: {unverified}"
        return [r.verified for r in self.received]
