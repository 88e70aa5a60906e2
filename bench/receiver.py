"""A webhook receiver for the benchmarks: verifies every signature, records every receipt.

    python -m bench.receiver --port 9100 --secrets secrets.json

`secrets.json` maps a path's last segment (the subscription's index) to its `whsec_`
secret. POST /hook/<index> answers 204 when the Standard Webhooks signature verifies,
401 otherwise. GET /stats answers what it saw: receipts, distinct webhook-ids,
duplicates, duplicates that arrived while the first copy was still being handled, bad
signatures, and commit-to-receipt latencies (receipt time minus the event's
`timestamp`, which the service sets in the alert's transaction). DELETE /stats resets.
With --hold-ms each receipt stays open that long, so two copies of one message that
are sent at the same time overlap here and are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


class Receiver:
    """A raw ASGI app, so the receiver costs as little as it can."""

    def __init__(self, secrets: dict[str, str], hold: float = 0.0) -> None:
        self.hooks = {key: Webhook(secret) for key, secret in secrets.items()}
        self.hold = hold  # seconds each receipt stays "in flight", to catch overlapping copies
        self.reset()

    def reset(self) -> None:
        self.seen: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.concurrent_duplicates = 0
        self.bad_signatures = 0
        self.latencies: list[float] = []
        self.first_at: float | None = None
        self.last_at: float | None = None

    def stats(self) -> dict[str, Any]:
        receipts = sum(self.seen.values())
        return {
            "receipts": receipts,
            "distinct": len(self.seen),
            "duplicates": receipts - len(self.seen),
            "concurrent_duplicates": self.concurrent_duplicates,
            "bad_signatures": self.bad_signatures,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "latencies_ms": self.latencies,
        }

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer, webhook_id = self.handle(scope, body)
        if webhook_id and self.hold:
            self.in_flight[webhook_id] += 1
            await asyncio.sleep(self.hold)
            self.in_flight[webhook_id] -= 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def handle(self, scope: dict, body: bytes) -> tuple[int, bytes, str | None]:
        path: str = scope["path"]
        if path == "/stats":
            if scope["method"] == "DELETE":
                self.reset()
                return 200, b"{}", None
            return 200, json.dumps(self.stats()).encode(), None
        hook = self.hooks.get(path.rsplit("/", 1)[-1])
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            if hook is None:
                raise WebhookVerificationError("unknown subscription")
            payload = hook.verify(body, headers)
        except (WebhookVerificationError, ValueError):
            self.bad_signatures += 1
            return 401, b"{}", None
        now = time.time()
        webhook_id = headers["webhook-id"]
        self.first_at = self.first_at or now
        self.last_at = now
        if self.in_flight[webhook_id]:
            self.concurrent_duplicates += 1
        self.seen[webhook_id] += 1
        committed = datetime.fromisoformat(payload["timestamp"]).timestamp()
        self.latencies.append((now - committed) * 1000)
        return 204, b"", webhook_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secrets", type=Path, required=True)
    parser.add_argument("--hold-ms", type=float, default=0.0)
    args = parser.parse_args()
    app = Receiver(json.loads(args.secrets.read_text()), args.hold_ms / 1000)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
