"""Where a webhook may go: only to public addresses (SSRF). The host is resolved and every
address it resolves to is checked, when an endpoint is saved and again at every send; the
request then goes to an address that was checked, so a name that resolves elsewhere in
between (DNS rebinding) cannot steer it. WEBHOOK_ALLOW_PRIVATE_ADDRESSES lifts the rule."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(ValueError):
    """The URL cannot be sent to: not http(s), no host, unresolvable, or not a public address."""


def allowed_addresses(url: str) -> tuple[str, int, list[str]]:
    """The URL's host, port and the addresses it resolves to, every one of them allowed;
    raises `AddressRefused` naming the first that is not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("Only http:// and https:// URLs with a host name can receive webhooks.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise AddressRefused(f"The port is not valid: {error}")
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise AddressRefused(f"{parts.hostname} cannot be resolved: {error}")
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            if not is_public(address):
                raise AddressRefused(
                    f"{parts.hostname} resolves to {address}, a private, loopback or link-local address: "
                    "webhooks go only to public addresses."
                )
    return parts.hostname, port, addresses


def is_public(address: str) -> bool:
    """Whether the address is a public unicast one (not private, loopback, link-local, shared,
    reserved or multicast; an IPv4 address mapped into IPv6 is judged as itself)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
