"""Outbound network access of connectors: every URL a source names is refused when it reaches an
internal address (loopback, private, link-local, unspecified, multicast, cloud metadata) unless the
operator allows that network (``ORGMEM_ALLOWED_NETWORKS``).

Why at connect time too: a name checked once can answer differently when the HTTP client resolves
it again (DNS rebinding). ``guarded_client`` resolves each host itself, checks every address and
connects to a checked address; ``guarded_get`` follows redirects one hop at a time so each target
is checked and named in the error.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

import httpcore
import httpx

from connectors.base import SourceError
from connectors.policy import SourcePolicy

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA = "cloud metadata"
#: Instance metadata endpoints (AWS/GCP/Azure/OpenStack, AWS ECS, AWS IPv6, Alibaba). They stay refused
#: even inside an allowed network unless that network is the single address itself.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
MAX_REDIRECTS = 5
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>\[[^\]]+\]|[^:/\s]+):(?!//)")


class AddressRefusedError(SourceError):
    """A URL whose host is (or resolves to) an address the operator does not allow."""

    exit_code = 8


def classify(addr: Address) -> str | None:
    """Why ``addr`` is internal, or None for a public address."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr in METADATA_ADDRESSES:
        return METADATA
    for why, flag in (("loopback", addr.is_loopback), ("link-local", addr.is_link_local),
                      ("unspecified", addr.is_unspecified), ("multicast", addr.is_multicast),
                      ("private", addr.is_private)):
        if flag:
            return why
    return None if addr.is_global else "reserved"


def _allowed(addr: Address, why: str, policy: SourcePolicy) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    nets = [n for n in policy.networks if n.version == addr.version and addr in n]
    if why == METADATA:
        return any(n.num_addresses == 1 for n in nets)
    return bool(nets)


def resolve(host: str, port: int | None, *, what: str) -> list[Address]:
    """Every address ``host`` stands for (an IP literal is itself); a failed lookup names the host."""
    bare = host.strip("[]")
    try:
        return [ipaddress.ip_address(bare)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(bare, port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceError(f"{what}: cannot resolve host {bare!r} ({exc})") from None
    addrs: list[Address] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in addrs:
            addrs.append(addr)
    return addrs


def check_host(host: str, port: int | None, policy: SourcePolicy, *, what: str) -> list[Address]:
    """The addresses of ``host``, all allowed; AddressRefusedError naming the first that is not."""
    addrs = resolve(host, port, what=what)
    for addr in addrs:
        why = classify(addr)
        if why and not _allowed(addr, why, policy):
            via = "" if host.strip("[]") == str(addr) else f" resolves to {addr}, which"
            only = (f"; a metadata address only as itself, {addr}/{addr.max_prefixlen}"
                    if why == METADATA else "")
            raise AddressRefusedError(
                f"{what}: host {host}{via} is {_article(why)}{why} address; refused (internal addresses are "
                f"reachable only when the operator allows their network in ORGMEM_ALLOWED_NETWORKS{only})"
            )
    return addrs


def _article(why: str) -> str:
    return "an " if why[0] in "aeiou" else "a "


def check_url(url: str, policy: SourcePolicy, *, what: str) -> httpx.URL:
    """An http(s) URL whose host is allowed, parsed; anything else is refused naming the URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise SourceError(f"{what} {url!r} is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AddressRefusedError(f"{what} {url!r} is refused: only http:// and https:// URLs with a host")
    check_host(parsed.host, parsed.port, policy, what=f"{what} {url}")
    return parsed


def check_git_url(url: str, policy: SourcePolicy, *, what: str = "git clone URL") -> None:
    """https/http/ssh/git URLs or scp-like ``user@host:path`` with an allowed host; no file:// or ext::."""
    match = _SCP_LIKE.match(url)
    if "://" in url:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise SourceError(f"{what} {url!r} is not a valid URL ({exc})") from None
        scheme, host, port = parsed.scheme, parsed.host, parsed.port
    elif match and "::" not in url:
        scheme, host, port = "ssh", match["host"], 22
    else:
        scheme, host, port = "", "", None
    if scheme not in ("https", "http", "ssh", "git") or not host or host.startswith("-"):
        raise AddressRefusedError(
            f"{what} {url!r} is refused: the scheme must be https, http, ssh or git with a host "
            "(local repositories are given as 'path', under the source roots)"
        )
    check_host(host, port, policy, what=f"{what} {url}")


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves each host itself, checks every address, and connects to a checked one."""

    def __init__(self, policy: SourcePolicy) -> None:
        self.policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        addrs = check_host(host, port, self.policy, what=f"connection to {host}:{port}")
        error: Exception | None = None
        for addr in addrs:
            try:
                return super().connect_tcp(str(addr), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host}:{port} resolved to no address")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: SourcePolicy) -> None:
        super().__init__(trust_env=False)
        # httpx has no parameter for the network backend: the same pool it builds, with ours
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_GuardedBackend(policy)
        )


def guarded_client(
    policy: SourcePolicy, *, timeout: float, headers: dict[str, str] | None = None
) -> httpx.Client:
    """An httpx client that cannot connect to refused addresses (no env proxies, no auto-redirects)."""
    return httpx.Client(transport=_GuardedTransport(policy), timeout=timeout, headers=headers,
                        follow_redirects=False, trust_env=False)


def guarded_get(client: httpx.Client, url: str, policy: SourcePolicy, *, what: str,
                headers: dict[str, str] | None = None) -> httpx.Response:
    """GET ``url`` following up to MAX_REDIRECTS redirects, each target checked; errors name the URL."""
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        label = what if hop == 0 else f"{what} {url}: redirect to"
        check_url(current, policy, what=label)
        try:
            resp = client.get(current, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot fetch {current}: {type(exc).__name__}: {exc}") from None
        if not (resp.is_redirect and resp.next_request is not None):
            return resp
        resp.close()
        current = str(resp.next_request.url)
    raise SourceError(f"{what} {url}: more than {MAX_REDIRECTS} redirects")
