"""The server's own requests to an agency's identity provider, under the webhooks' SSRF rule.

An agency administrator types the issuer, so every fetch (discovery document, keys, token
endpoint) is a request the server makes to an address someone else chose: the resolved
addresses are checked (not the URL text), the connection goes to the checked address (no
second lookup to be rebound), redirects are failures, the environment's proxies are
ignored, and answers have a time and a size limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from app.core.config import Settings
from app.webhooks import ssrf


class FetchFailed(Exception):
    """A request to the provider that failed or was refused; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderHttp:
    """Outgoing HTTP to identity providers: checked addresses, timeouts, capped answers."""

    def __init__(self, settings: Settings, resolver: ssrf.Resolver | None = None) -> None:
        self.settings = settings
        self.resolver = resolver or ssrf.SystemResolver()
        self.allow = ssrf.allow_list(settings.oidc_allow_networks)

    def check_syntax(self, url: str) -> httpx.URL:
        """The parsed URL, or FetchFailed when it may never be fetched (scheme, userinfo…)."""
        try:
            return ssrf.check_url_syntax(url, require_https=self.settings.oidc_needs_https)
        except ssrf.UrlRefused as exc:
            raise FetchFailed(f"refused URL: {exc.reason}") from None

    async def get_json(self, url: str) -> dict[str, Any]:
        """GET a JSON object (a discovery document, a key set)."""
        return await self._json("GET", url, data=None)

    async def post_form(
        self, url: str, data: Mapping[str, str], *, authorization: str
    ) -> dict[str, Any]:
        """POST a form (the token request) and read its JSON object answer, whatever the
        status: an OAuth error answer is JSON too, and the caller reads its `error`."""
        return await self._json("POST", url, data=data, authorization=authorization)

    async def _json(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None,
        authorization: str | None = None,
    ) -> dict[str, Any]:
        parsed = self.check_syntax(url)
        try:
            addresses = await ssrf.resolve_and_check(parsed, self.resolver, self.allow)
        except ssrf.UrlRefused as exc:
            raise FetchFailed(f"refused address: {exc.reason}") from None
        target = parsed.copy_with(host=addresses[0])
        headers = {
            "host": parsed.netloc.decode("ascii"),
            "accept": "application/json",
            "accept-encoding": "identity",
        }
        if authorization:
            headers["authorization"] = authorization
        extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
        timeout = httpx.Timeout(self.settings.oidc_timeout_seconds)
        cap = self.settings.oidc_max_response_bytes
        try:
            async with httpx.AsyncClient(
                timeout=timeout, follow_redirects=False, trust_env=False
            ) as http:
                request = http.build_request(
                    method, target, data=data, headers=headers, extensions=extensions
                )
                response = await http.send(request, stream=True)
                try:
                    body = await _read_capped(response, cap)
                finally:
                    await response.aclose()
        except httpx.TimeoutException:
            raise FetchFailed(f"{parsed.host}: timed out") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{parsed.host}: {type(exc).__name__}") from None
        if 300 <= response.status_code < 400:
            raise FetchFailed(f"{parsed.host}: answered a redirect ({response.status_code})")
        if method == "GET" and response.status_code != 200:
            raise FetchFailed(f"{parsed.host}: answered {response.status_code}")
        try:
            value = json.loads(body)
        except ValueError:
            raise FetchFailed(f"{parsed.host}: answered something other than JSON") from None
        if not isinstance(value, dict):
            raise FetchFailed(f"{parsed.host}: answered JSON that is not an object")
        return value


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise FetchFailed(f"answer larger than {cap} bytes")
    return b"".join(chunks)
