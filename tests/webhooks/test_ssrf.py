"""SSRF guard: URL syntax, address classes after unwrapping, and resolved-address checks."""

from __future__ import annotations

import socket

import httpx
import pytest

from app.webhooks.ssrf import (
    SystemResolver,
    UrlRefused,
    address_allowed,
    allow_list,
    check_url_syntax,
    is_public,
    resolve_and_check,
)

PUBLIC = "93.184.216.34"
LOOPBACK_ONLY = allow_list(["127.0.0.1:9000"])


class FakeResolver:
    """The DNS answer, at the edge of the world: each name gets its answers in turn."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        queue = self.answers.get(host)
        if queue is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return queue.pop(0) if len(queue) > 1 else queue[0]


def resolver(**by_label: list[str]) -> FakeResolver:
    return FakeResolver({f"{label}.example": [ips] for label, ips in by_label.items()})


@pytest.mark.parametrize(
    "ip",
    [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::"],
)
def test_public_addresses_allowed(ip):
    assert address_allowed(ip, 443, [])
    assert is_public(ip)


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "127.8.9.10",
        "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "::",  # noqa: S104
        "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1",
        "192.0.2.1", "198.51.100.7", "2001:db8::1", "fec0::1", "::7f00:1", "::ffff:0:7f00:1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "2002:7f00:1::", "2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2", "not-an-ip", "",
    ],
)  # fmt: skip
def test_non_public_addresses_refused(ip):
    assert not address_allowed(ip, 443, [])
    assert not is_public(ip)


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [("127.0.0.1", True), ("::ffff:127.0.0.1", True), ("127.0.0.2", False), ("10.0.0.1", False)],
)
def test_allow_list_admits_only_its_networks(ip, allowed):
    assert address_allowed(ip, 9000, LOOPBACK_ONLY) is allowed


@pytest.mark.parametrize("port", [8000, 80, 443, 5432, 9001])
def test_allow_list_admits_only_its_port(port):
    # 127.0.0.1:9000 allowed is not the API on :8000 nor the database on :5432.
    assert not address_allowed("127.0.0.1", port, LOOPBACK_ONLY)


def test_allow_list_entries_name_networks_and_ports():
    entries = allow_list(["10.1.0.0/16:443", "[fd00::7]:8443", " 127.0.0.1:9000 "])
    assert [(str(e.network), e.port) for e in entries] == [
        ("10.1.0.0/16", 443),
        ("fd00::7/128", 8443),
        ("127.0.0.1/32", 9000),
    ]
    assert address_allowed("10.1.200.3", 443, entries)
    assert not address_allowed("10.1.200.3", 8443, entries)
    assert address_allowed("fd00::7", 8443, entries)


@pytest.mark.parametrize(
    "entry",
    ["127.0.0.1/32", "127.0.0.1", "10.0.0.0/8:", "127.0.0.1:0", "127.0.0.1:65536",
     "127.0.0.1:http", "::1", "[::1]", "fd00::/8:443", "host.example:443", ":443"],
)  # fmt: skip
def test_settings_refuse_allow_entries_without_a_port(entry):
    from pydantic import ValidationError

    from app.core.config import Settings

    with pytest.raises(ValidationError, match="webhook_allow_networks"):
        Settings(environment="dev", webhook_allow_networks=[entry])


@pytest.mark.parametrize(
    ("url", "require_https"),
    [
        ("https://example.org/hooks/tracewire?x=1", True),
        ("HTTPS://Example.org:8443/", True),
        ("http://example.org/", False),
        ("https://[2606:4700:4700::1111]/", True),
    ],
)
def test_syntax_accepts(url, require_https):
    assert isinstance(check_url_syntax(url, require_https=require_https), httpx.URL)


@pytest.mark.parametrize(
    ("url", "require_https"),
    [
        ("ftp://example.org/", False),
        ("file:///etc/passwd", False),
        ("gopher://example.org/", False),
        ("example.org/hook", False),
        ("http://example.org/", True),
        ("https://user:pw@example.org/", True),
        ("https://user@example.org/", True),
        ("https://:pw@example.org/", True),
        ("https://@example.org/", True),
        ("https://example.org\\@127.0.0.1/", True),
        ("http:///hook", False),
        ("https://example.org/#frag", True),
        ("https://example.org/#", True),
        ("http://[::1/", False),
        ("https://example.org:99999/", True),
    ],
)
def test_syntax_refuses(url, require_https):
    with pytest.raises(UrlRefused) as refused:
        check_url_syntax(url, require_https=require_https)
    assert refused.value.reason


async def test_public_name_passes_and_port_defaults_by_scheme():
    dns = resolver(hooks=[PUBLIC, "2606:4700:4700::1111", PUBLIC])
    url = httpx.URL("https://hooks.example/in")
    assert await resolve_and_check(url, dns, []) == [PUBLIC, "2606:4700:4700::1111"]
    await resolve_and_check(httpx.URL("http://hooks.example:8080/"), dns, [])
    assert dns.calls == [("hooks.example", 443), ("hooks.example", 8080)]


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[64:ff9b::a9fe:a9fe]/",
    ],
)
async def test_ip_literal_hosts_checked_without_dns(url):
    # httpx itself rejects some spellings (`0177.0.0.1`); either step refusing is fine.
    dns = FakeResolver({})
    with pytest.raises(UrlRefused):
        await resolve_and_check(check_url_syntax(url, require_https=False), dns, [])
    assert dns.calls == []


@pytest.mark.parametrize(
    "answer",
    [[PUBLIC, "10.0.0.5"], ["127.0.0.1", PUBLIC], [PUBLIC, "::ffff:169.254.169.254"], []],
    ids=["public+private", "private+public", "public+mapped-metadata", "empty"],
)
async def test_name_refused_when_any_answer_is_refused_or_none(answer):
    with pytest.raises(UrlRefused, match=r"hooks\.example"):
        await resolve_and_check(httpx.URL("https://hooks.example/"), resolver(hooks=answer), [])


async def test_unknown_name_refused():
    with pytest.raises(UrlRefused, match="does not resolve"):
        await resolve_and_check(httpx.URL("https://nowhere.example/"), FakeResolver({}), [])


async def test_allow_list_admits_loopback_receiver():
    dns = resolver(receiver=["127.0.0.1"])
    assert await resolve_and_check(httpx.URL("http://127.0.0.1:9000/"), dns, LOOPBACK_ONLY) == [
        "127.0.0.1"
    ]
    url = httpx.URL("http://receiver.example:9000/")
    assert await resolve_and_check(url, dns, LOOPBACK_ONLY) == ["127.0.0.1"]
    with pytest.raises(UrlRefused):
        await resolve_and_check(url, dns, [])
    with pytest.raises(UrlRefused, match="refused address"):
        await resolve_and_check(httpx.URL("http://127.0.0.1:8000/api/v1/me"), dns, LOOPBACK_ONLY)


async def test_rebinding_each_lookup_judged_on_its_own_answer():
    dns = FakeResolver({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    url = httpx.URL("https://rebind.example/")
    assert await resolve_and_check(url, dns, []) == [PUBLIC]
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.1"):
        await resolve_and_check(url, dns, [])
    assert len(dns.calls) == 2


def test_url_refused_is_a_value_error_with_a_reason():
    refused = UrlRefused("https is required")
    assert isinstance(refused, ValueError)
    assert refused.reason == "https is required"


async def test_system_resolver_reads_legacy_ipv4_like_we_do():
    # Why literal hosts are normalised: the OS resolver reaches 127.0.0.1 for these.
    assert await SystemResolver().resolve("2130706433", 80) == ["127.0.0.1"]
    assert await SystemResolver().resolve("127.1", 80) == ["127.0.0.1"]


async def test_system_resolver_localhost_refused():
    with pytest.raises(UrlRefused):
        await resolve_and_check(httpx.URL("http://localhost/"), SystemResolver(), [])
