"""Which addresses the service may connect to on a client's behalf (a callback URL, an
audio URL): the one outbound address policy, so that a client cannot make the service
reach what only the service can reach (server-side request forgery).

Refused: loopback, private, shared (carrier-grade NAT), link-local, multicast,
unspecified, reserved and documentation ranges, and the cloud providers' metadata
services, for IPv4 and IPv6 alike, and an IPv4 address carried inside IPv6 (mapped,
compatible, 6to4, NAT64). A host is resolved once, by :func:`resolve`, and every address
it resolves to must pass; the caller then connects to the checked address (the
:class:`Target`), never to the name again, so a second DNS answer cannot point it
elsewhere. IPv4 in the legacy spellings the C library accepts (``2130706433``,
``0177.0.0.1``, ``0x7f.1``, ``127.1``) is read as the address it spells.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from pipeline.errors import AddressRefused, TransientError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Metadata services at addresses of their own, where the ranges do not already cover them
#: (AWS, GCP and Azure's 169.254.169.254, and AWS's fd00:ec2::254, are link-local/private).
METADATA = frozenset(map(ipaddress.ip_address, (
    "169.254.169.254", "169.254.170.2",  # AWS instance and ECS task metadata
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure WireServer (a public address)
    "fd00:ec2::254",  # AWS over IPv6
)))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SCHEMES = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """A URL checked by :func:`resolve`: connect to ``address``, and send ``host`` as the
    Host header and TLS server name."""

    scheme: str
    host: str
    port: int
    address: str
    path: str  # path and query, as sent in the request line


def parse_url(url: str) -> SplitResult:
    """The parts of an http(s) URL; AddressRefused, with what is wrong, for any other."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise AddressRefused(f"not a URL: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise AddressRefused(f"the URL must start with http:// or https://, not "
                             f"{parts.scheme + '://' if parts.scheme else 'no scheme'}")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    return parts


def literal(host: str) -> Address | None:
    """The address ``host`` spells, in any of its spellings, or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the legacy IPv4 spellings: decimal, octal, hex, fewer than four parts
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refusal(address: Address) -> str | None:
    """Why the service must not connect to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (address.ipv4_mapped or address.sixtofour
                    or (address.teredo[1] if address.teredo else None)
                    or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
                        if address in _NAT64 or int(address) >> 32 == 0 else None))
        if embedded is not None and int(address) > 1:  # :: and ::1 are themselves below
            inner = refusal(embedded)
            return f"{inner} (IPv4 {embedded} inside IPv6)" if inner else None
    if address in METADATA:
        return "a cloud metadata address"
    for test, reason in ((address.is_unspecified, "an unspecified address"),
                         (address.is_loopback, "a loopback address"),
                         (address.is_link_local, "a link-local address"),
                         (address.is_multicast, "a multicast address"),
                         (address.is_private, "a private address")):
        if test:
            return reason
    if not address.is_global:
        return "a reserved address"
    return None


def resolve(url: str, *, allow_private: bool = False) -> Target:
    """Check ``url`` and resolve its host once; the Target says where to connect.

    Raises AddressRefused naming the address and why it is refused (every address the
    name resolves to must pass), TransientError when the name does not resolve (now).
    ``allow_private``
    (ALLOW_PRIVATE_URLS) lifts the address check, not the URL's.
    """
    parts = parse_url(url)
    host = parts.hostname or ""
    port = parts.port or _SCHEMES[parts.scheme]
    found = literal(host)
    if found is not None:
        addresses = [found]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TransientError(f"cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0])
                     for info in infos]
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                shown = str(address) if found is not None or str(address) == host else (
                    f"{host} ({address})")
                raise AddressRefused(f"refused: {shown} is {reason}; set "
                                     "ALLOW_PRIVATE_URLS=true to allow such addresses")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, address=str(addresses[0]),
                  path=path)


def plain_url(url: str) -> SplitResult:
    """As :func:`parse_url`, and refusing a URL that carries a user name or password
    (which would be stored, shown and sent along where the URL is)."""
    parts = parse_url(url)
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("the URL must carry no user name or password; use a signed "
                             "URL (a token in its query) instead")
    return parts


def precheck(url: str, *, allow_private: bool = False) -> SplitResult:
    """What can be refused without resolving a name: the URL (:func:`plain_url`) and a host
    spelled as a refused address. A name is checked by :func:`resolve` when it is used."""
    parts = plain_url(url)
    found = literal(parts.hostname or "")
    if found is not None and not allow_private:
        reason = refusal(found)
        if reason is not None:
            raise AddressRefused(f"refused: {found} is {reason}; set ALLOW_PRIVATE_URLS=true "
                                 "to allow such addresses")
    return parts


def shown_url(url: str) -> str:
    """A URL as messages and logs show it: scheme, host, port and path, never its query
    (a signed URL's token) nor a user name or password."""
    try:
        parts = parse_url(url)
    except AddressRefused:
        return "(not an http(s) URL)"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or '/'}"


class _Pinned(http.client.HTTPConnection):
    """A connection to the checked address, whatever the name resolves to now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """As :class:`_Pinned`, over TLS: the certificate is checked against the host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    """An HTTP(S) connection to the checked target's address (never to its name again),
    sending its host name as the Host header and, over TLS, as the server name the
    certificate is checked against. ``timeout`` bounds connecting and each read."""
    return (_PinnedTLS if target.scheme == "https" else _Pinned)(target, timeout)
