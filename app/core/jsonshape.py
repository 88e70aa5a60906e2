"""Caps on the shape of JSON bodies: nesting depth and array length."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import header
from app.core.errors import FieldError, problem_response

MAX_DEPTH = 32
MAX_ARRAY_LENGTH = 10_000


class JsonShapeMiddleware:
    """Refuse JSON bodies nested deeper than `max_depth` or holding an array longer than
    `max_array_length` (422, `errors[].field = "body"`); everything else passes unchanged.

    It buffers the body, so it must sit inside BodySizeLimitMiddleware, which caps it.
    """

    def __init__(
        self, app: ASGIApp, *, max_depth: int = MAX_DEPTH, max_array_length: int = MAX_ARRAY_LENGTH
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_array_length = max_array_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(header(scope, b"content-type")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_shape_problem(
            body, max_depth=self.max_depth, max_array_length=self.max_array_length
        )
        if problem is not None:
            kind, text = problem
            response = problem_response(
                422,
                slug="validation-error",
                title="Invalid input",
                detail=f"body: {text}",
                errors=[FieldError(field="body", message=text, type=kind)],
                instance=scope.get("path"),
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class JsonShapeError(ValueError):
    """JSON that is malformed, too long, too deep or holds too long an array."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def load_bounded(
    text: str | bytes,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    max_array_length: int = MAX_ARRAY_LENGTH,
) -> Any:
    """JSON parsed within the caps, for JSON the app reads itself (not a request body,
    which the middleware caps); JsonShapeError, never RecursionError, otherwise."""
    try:
        raw = text.encode() if isinstance(text, str) else text
    except UnicodeEncodeError as exc:  # a lone surrogate: no JSON text holds one
        raise JsonShapeError("json_invalid", "Not valid JSON: not encodable as UTF-8.") from exc
    if len(raw) > max_bytes:
        raise JsonShapeError("json_too_long", f"JSON longer than {max_bytes} bytes.")
    problem = json_shape_problem(raw, max_depth=max_depth, max_array_length=max_array_length)
    if problem is not None:
        raise JsonShapeError(*problem)
    try:
        return json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise JsonShapeError("json_invalid", f"Not valid JSON: {exc}") from exc


def json_shape_problem(
    body: bytes, *, max_depth: int = MAX_DEPTH, max_array_length: int = MAX_ARRAY_LENGTH
) -> tuple[str, str] | None:
    """(error type, message) when `body` is JSON too deep or with too long an array."""
    # Too deep needs more than `max_depth` brackets and too long an array more than
    # 2 x `max_array_length` bytes; brackets inside strings only over-count. So the
    # ordinary small body is never parsed twice.
    brackets = body.count(b"[") + body.count(b"{")
    if brackets <= max_depth and len(body) < 2 * max_array_length + 3:
        return None
    too_deep = ("json_too_deep", f"JSON nested deeper than {max_depth} levels.")
    try:
        document = json.loads(body)
    except RecursionError:
        return too_deep
    except ValueError:
        return None  # malformed: the app answers its own 400
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:  # iterative, so depth costs no Python recursion
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            if len(node) > max_array_length:
                return (
                    "json_array_too_long",
                    f"JSON array longer than {max_array_length} elements.",
                )
            children = node
        else:
            continue
        if depth > max_depth:
            return too_deep
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
