#!/usr/bin/python3
"""A minimal FastCGI responder used to check the test front-server configs
(harness self-check) without the relay: it answers every request with a
JSON object of the FastCGI params it received and the SHA-256 and length
of the body. A REQUEST_URI containing "/stream" gets two body parts 1.5 s
apart, so streaming through the front can be observed.

Usage: fcgi_probe.py SOCKET_PATH
"""

import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6


def read_exact(f, n):
    b = f.read(n)
    if len(b) != n:
        raise EOFError
    return b


def parse_params(data):
    out = {}
    i = 0
    while i < len(data):
        lens = []
        for _ in range(2):
            b = data[i]
            if b >> 7:
                lens.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF)
                i += 4
            else:
                lens.append(b)
                i += 1
        k = data[i:i + lens[0]]
        i += lens[0]
        v = data[i:i + lens[1]]
        i += lens[1]
        out[k.decode("latin-1")] = v.decode("latin-1")
    return out


def record(t, rid, content):
    out = b""
    for off in range(0, max(len(content), 1), 65535):
        part = content[off:off + 65535]
        pad = (8 - len(part) % 8) % 8
        out += struct.pack(">BBHHBB", 1, t, rid, len(part), pad, 0) + part + b"\0" * pad
        if not content:
            break
    return out


def serve(conn):
    f = conn.makefile("rb")
    params = b""
    rid = 1
    sha = hashlib.sha256()
    blen = 0
    try:
        while True:
            ver, t, rid, clen, plen, _ = struct.unpack(">BBHHBB", read_exact(f, 8))
            content = read_exact(f, clen)
            read_exact(f, plen)
            if t == PARAMS:
                params += content
            elif t == STDIN:
                if not content:
                    break
                sha.update(content)
                blen += len(content)
        p = parse_params(params)
        obj = {"params": p, "body_len": blen, "body_sha256": sha.hexdigest()}
        body = json.dumps(obj).encode()
        head = b"Status: 200 OK\r\nContent-Type: application/json\r\n\r\n"
        if "/stream" in p.get("REQUEST_URI", ""):
            conn.sendall(record(STDOUT, rid, b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\npart1\n"))
            time.sleep(1.5)
            conn.sendall(record(STDOUT, rid, b"part2\n"))
        else:
            conn.sendall(record(STDOUT, rid, head + body))
        conn.sendall(record(STDOUT, rid, b""))
        conn.sendall(record(END, rid, struct.pack(">IB3x", 0, 0)))
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def main():
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o660)
    s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
