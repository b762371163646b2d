#!/usr/bin/env python3
"""Does a backing service really answer its protocol on host:port? (stdlib only)

    probe.py redis|amqp|mongodb|http HOST PORT [PATH]

Exit 0 when it answers, 1 otherwise. Used by backing.sh before and after starting a service:
an open port is not enough, the service must speak.
"""

from __future__ import annotations

import socket
import struct
import sys


def _bson_ping() -> bytes:
    # {"ping": 1, "$db": "admin"} encoded by hand: int32 element, string element.
    elements = b"\x10ping\x00" + struct.pack("<i", 1)
    db = b"admin\x00"
    elements += b"\x02$db\x00" + struct.pack("<i", len(db)) + db
    return struct.pack("<i", len(elements) + 5) + elements + b"\x00"


def probe_mongodb(sock: socket.socket) -> bool:
    body = struct.pack("<I", 0) + b"\x00" + _bson_ping()  # OP_MSG flags, section kind 0
    header = struct.pack("<iiii", 16 + len(body), 1, 0, 2013)
    sock.sendall(header + body)
    reply = sock.recv(4096)
    return len(reply) > 16 and struct.unpack("<i", reply[12:16])[0] == 2013 and b"ok" in reply


def probe_redis(sock: socket.socket) -> bool:
    sock.sendall(b"PING\r\n")
    return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))


def probe_amqp(sock: socket.socket) -> bool:
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    frame = sock.recv(7)
    return len(frame) == 7 and frame[0] == 1  # method frame: connection.start


def probe_http(sock: socket.socket, host: str, path: str) -> bool:
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    return sock.recv(64).startswith(b"HTTP/1.")


def main() -> int:
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            if kind == "mongodb":
                return 0 if probe_mongodb(sock) else 1
            if kind == "redis":
                return 0 if probe_redis(sock) else 1
            if kind == "amqp":
                return 0 if probe_amqp(sock) else 1
            if kind == "http":
                return 0 if probe_http(sock, host, sys.argv[4] if len(sys.argv) > 4 else "/") else 1
    except OSError:
        return 1
    print(f"unknown probe kind {kind!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
