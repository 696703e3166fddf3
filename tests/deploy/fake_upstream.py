"""A stand-in for a host behind nginx: answers, fails or refuses on purpose,
and logs every request that reached it (one JSON line each).

    python tests/deploy/fake_upstream.py --bind ADDRESS:PORT --mode ok|reset|503 --log FILE

``ok`` answers 200 (201 to a POST) with the request as it arrived;
``reset`` reads the whole request, then resets the connection without a
word (a host dying mid-request); ``503`` answers 503. It runs until killed.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time
from typing import IO


def handle(conn: socket.socket, name: str, mode: str, log: IO[str], lock: threading.Lock) -> None:
    accepted = time.monotonic()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            conn.close()
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    record = {"host": name, "method": method, "target": target, "headers": headers,
              "body_bytes": len(body), "read_seconds": time.monotonic() - accepted}
    with lock:
        log.write(json.dumps(record) + "\n")
        log.flush()
    if mode == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        return
    status = 503 if mode == "503" else 201 if method == "POST" else 200
    payload = json.dumps(record).encode()
    conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--mode", choices=["ok", "reset", "503"], default="ok")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    host, _, port = args.bind.rpartition(":")
    lock = threading.Lock()
    with open(args.log, "a") as log, socket.create_server((host, int(port)), backlog=128) as server:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn, args.name, args.mode, log, lock),
                             daemon=True).start()


if __name__ == "__main__":
    main()
