"""Who may talk to the playground: requests for this host only, WebSockets and uploads from its own page only.

A page on any web site can make a browser send requests to 127.0.0.1. Two defences:

- DNS rebinding: an attacker's name (evil.example) re-resolved to 127.0.0.1 lets their page read
  our responses as same-origin; the browser still sends ``Host: evil.example``, so any Host that
  is not the address we serve is refused.
- Cross-site requests: a foreign page may open a WebSocket or post a form to us (browsers allow
  both across origins); the browser names that page in ``Origin``, so a foreign Origin is refused.
  Non-browser clients send no Origin and are not a cross-site risk.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

WILDCARD = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """``"127.0.0.1:8765"`` → ("127.0.0.1", 8765); ``"[::1]:80"`` → ("::1", 80)."""
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError:
        return value, -1  # a malformed port never matches
    return (parts.hostname or "").lower(), port


class HostPolicy:
    """The Host headers that name this server, given the address it listens on."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host.lower().strip("[]"), port

    def allows(self, header: str) -> bool:
        name, port = split_host(header)
        if port not in (self.port, None) or (port is None and self.port != 80):
            return False
        if self.host in WILDCARD:
            # Listening on every interface, the server's own names are unknown; an IP literal
            # involves no DNS, so it cannot be rebound.
            return _is_ip(name) or name == "localhost"
        if is_loopback(self.host):
            return is_loopback(name)
        return name == self.host

    def same_origin(self, origin: str, host_header: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()


class GuardMiddleware:
    """ASGI middleware enforcing ``HostPolicy`` on every request and Origin on WebSockets and writes."""

    def __init__(self, app, policy: HostPolicy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host, origin = headers.get("host", ""), headers.get("origin")
        problem, status = None, 421  # 421 Misdirected Request: this server is not that host
        if not self.policy.allows(host):
            problem = (f"Host {host!r} is not this server: refused (the playground answers only to the address "
                       "it listens on, which stops DNS-rebinding attacks)")
        elif origin is not None and (scope["type"] == "websocket" or scope["method"] not in ("GET", "HEAD")):
            if not self.policy.same_origin(origin, host):
                problem, status = f"Origin {origin!r} is not this playground's page: refused", 403
        if problem is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()  # the connect event; closing now makes the server answer the handshake with 403
            return await send({"type": "websocket.close", "code": 1008, "reason": problem[:120]})
        body = json.dumps({"error": problem}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
