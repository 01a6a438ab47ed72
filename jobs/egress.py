"""Where an agent's own model base URL may point: https and public addresses only.

An agent's ``model.base_url`` is typed by an admin, but the server makes the request from inside
its network: without this check it would reach internal services and the cloud metadata address
(169.254.169.254). Checked when the agent is saved and again before each call (DNS can change).
``IC_ALLOW_PRIVATE_URLS`` lifts the check (local models such as Ollama on the same host, and tests).

The operator's own ``IC_MODEL_BASE_URL`` is not checked: it is configuration, not input.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

URL_NOT_ALLOWED = "model_url_not_allowed"


class UrlNotAllowed(Exception):
    code = URL_NOT_ALLOWED


def _address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    # is_global is False for private, loopback, link-local (the metadata address), shared (100.64/10),
    # unique-local IPv6 (fc00::/7) and the reserved ranges; multicast is never a model endpoint.
    return address.is_global and not address.is_multicast


def _split(url: str, *, allow_private: bool) -> tuple[str, int]:
    parts = urlsplit(url.strip())
    allowed_schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UrlNotAllowed("the model base URL must use https")
    if not parts.hostname or parts.username or parts.password:
        raise UrlNotAllowed("the model base URL needs a host name (and no credentials in it)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlNotAllowed("the model base URL has an invalid port") from exc
    return parts.hostname, port


async def check_model_url(url: str, *, allow_private: bool) -> list[str]:
    """Raise ``UrlNotAllowed`` unless ``url`` is https and every address its host resolves to is public.

    Returns the vetted addresses (none when private URLs are allowed): the call connects to one of
    them (``ModelConfig.connect_address``) instead of resolving the name again, so a DNS answer
    that changes between the check and the connection (rebinding) cannot redirect it.
    """
    host, port = _split(url, allow_private=allow_private)
    if allow_private:
        return []
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise UrlNotAllowed(f"the model host {host} does not resolve") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses or not all(_address_allowed(a) for a in addresses):
        raise UrlNotAllowed(f"the model host {host} is not a public address")
    return [str(a) for a in addresses]
