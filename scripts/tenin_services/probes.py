"""Tiny wire-protocol checks, so "reachable" means the right server answers, not just
that some port is open."""

from __future__ import annotations

import socket
import struct


def is_loopback(host: str) -> bool:
    """True for a host name or address that means this machine."""
    return host in ("localhost", "::1") or host.startswith("127.")


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def postgres_probe(host: str, port: int) -> bool:
    """Send an SSLRequest; any PostgreSQL server answers with one byte, 'S' or 'N'."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            sock.sendall(struct.pack(">ii", 8, 80877103))
            return _recv_exact(sock, 1) in (b"S", b"N")
    except (OSError, EOFError):
        return False


def redis_probe(
    host: str, port: int, username: str | None = None, password: str | None = None
) -> bool:
    """AUTH (if the URL has a password) then PING; expect +PONG."""

    def command(*args: str) -> bytes:
        out = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        return out

    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            if password:
                auth = ("AUTH", username, password) if username else ("AUTH", password)
                sock.sendall(command(*auth))
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(command("PING"))
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def kafka_probe(host: str, port: int) -> bool:
    """Send a MetadataRequest (v4, which Kafka 4.x still serves) and require at least
    one registered broker in the answer: the broker is then ready for clients."""
    client_id = b"tenin-services"
    # header: api_key=3 (Metadata), api_version=4, correlation_id, client_id
    # body: topics=null (all topics), allow_auto_topic_creation=false
    request = struct.pack(">hhih", 3, 4, 42, len(client_id)) + client_id + struct.pack(">ib", -1, 0)
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(3)
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            response = _recv_exact(sock, size)
        # response: correlation_id, throttle_time_ms, brokers[] count, ...
        correlation_id, _throttle, brokers = struct.unpack_from(">iii", response, 0)
        return correlation_id == 42 and brokers >= 1
    except (OSError, EOFError, struct.error):
        return False
