"""A real DNS server for the tests: dnslib's UDP/TCP server on 127.0.0.1, records set live.

The domain verification tests publish the records a customer would (TXT under
``_saasodoo-challenge.<host>`` or a CNAME), and saasodoo's resolver (dnspython) asks this
server over the wire (``SAASODOO_DNS_NAMESERVER=127.0.0.1``, ``SAASODOO_DNS_PORT``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class Zone(BaseResolver):  # type: ignore[misc]
    """Authoritative answers from ``records``: (name, type) -> values; names without a
    trailing dot, lower case. Unknown names answer NXDOMAIN, known ones NOERROR."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    #: Seconds every answer is held back (a slow nameserver).
    delay: float = 0.0

    def set(self, name: str, rtype: str, *values: str) -> None:
        with self.lock:
            self.records[(name.lower().rstrip("."), rtype)] = list(values)

    def clear(self) -> None:
        with self.lock:
            self.records.clear()

    def resolve(self, request: Any, handler: Any) -> Any:
        if self.delay:
            time.sleep(self.delay)
        reply = request.reply()
        qname = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            values = list(self.records.get((qname, qtype), []))
            known = any(name == qname for name, _ in self.records)
        for value in values:
            rdata = TXT(value) if qtype == "TXT" else CNAME(value)
            reply.add_answer(RR(qname, getattr(QTYPE, qtype), rdata=rdata, ttl=60))
        if not values and not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@contextmanager
def dns_server() -> Iterator[Zone]:
    """Start the server on 127.0.0.1 (a free UDP port); stop it at the end."""
    zone = Zone()
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    server = DNSServer(zone, port=0, address="127.0.0.1", logger=quiet)
    zone.port = server.server.server_address[1]
    server.start_thread()
    try:
        yield zone
    finally:
        server.stop()
        server.server.server_close()
