"""The one way out for outgoing webhooks: URL and address checks (no SSRF), then one POST.

A webhook URL may only reach public addresses: the host is resolved and every address it has
must be global, both when the endpoint is registered and on each delivery. The delivery then
connects to the address that was checked (Host header and TLS name stay the URL's host), so a DNS
answer that changes between check and connect (rebinding) cannot reach an internal service.
`SHEAF_WEBHOOK_ALLOW_PRIVATE` lifts the address rule (development, tests).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

CONNECT_TIMEOUT_SECONDS = 3.0
TIMEOUT_SECONDS = 10.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be called; the message says why, for the user."""


class Unresolved(Refused):
    """The host name has no address (now); unlike the other refusals, it may pass later."""


class SendFailed(Exception):
    """The request did not get an answer (timeout, connection refused, TLS error)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: IPAddress
    url: str


def _why_not_public(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one (mapped, 6to4) is judged as itself.
        address = address.ipv4_mapped or address.sixtofour or address
    checks = [
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        # fec0::/10, deprecated site-local unicast: still routed inside some networks, and
        # Python counts it neither private nor reserved, so is_global alone lets it through.
        (getattr(address, "is_site_local", False), "a site-local address"),
        (not address.is_global, "not a public address"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def _addresses(host: str, port: int) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Unresolved(f"The host {host} could not be resolved.") from None
    # Strip an IPv6 zone ("fe80::1%eth0") before parsing.
    return list(dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos))


def target_check(url: str) -> Target:
    """Where `url` may be delivered, or Refused with a message naming the problem."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise Refused("This is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("Webhook URLs must start with http:// or https://.")
    host = parts.hostname
    if not host:
        raise Refused("The URL has no host name.")
    if parts.username or parts.password:
        raise Refused("Webhook URLs may not carry a user name or password.")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _addresses(host, port)
    if not addresses:
        raise Unresolved(f"The host {host} could not be resolved.")
    if not settings.SHEAF_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            reason = _why_not_public(address)
            if reason is not None:
                subject = host if _literal(host) else f"{host} resolves to {address}, which"
                raise Refused(f"{subject} is {reason}; webhooks may only reach public addresses.")
    return Target(parts.scheme, host, port, addresses[0], urlunsplit(parts))


def url_check(url: str) -> None:
    """Refused unless `url` may be registered: http(s), no credentials, and every address the
    host has now is public. A name that does not resolve yet is accepted (its DNS may come
    later): each delivery checks again and refuses it then."""
    with contextlib.suppress(Unresolved):
        target_check(url)


def post(url: str, *, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to `url` after checking it again, connecting to the checked address; no
    redirects followed, short timeouts, the answer's body is not read. Returns the status."""
    import httpx2  # 13 MB: only the processes that deliver webhooks pay for it

    target = target_check(url)
    parts = urlsplit(target.url)
    literal = str(target.address)
    netloc = f"[{literal}]" if target.address.version == 6 else literal
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header = f"{host_header}:{target.port}"
    pinned = urlunsplit(
        (target.scheme, f"{netloc}:{target.port}", parts.path or "/", parts.query, "")
    )
    timeout = httpx2.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    try:
        with (
            httpx2.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST",
                pinned,
                content=body,
                headers={**headers, "Host": host_header},
                extensions={"sni_hostname": target.host},
            ) as response,
        ):
            return response.status_code
    except httpx2.TimeoutException:
        raise SendFailed(f"No answer within {TIMEOUT_SECONDS:g} seconds.") from None
    except httpx2.HTTPError as exc:
        raise SendFailed(f"Could not connect: {type(exc).__name__}: {exc}") from None
