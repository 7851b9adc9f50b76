#!/usr/bin/python3
"""Closed-loop HTTP/1.1 load client for the in-flight scenario of
tests/bench/bench.py.

Keeps CONNS keep-alive connections to 127.0.0.1:PORT busy with the same
POST for WARMUP + SECONDS, then stops sending and waits for the answers
still outstanding (each until its own timeout), so a slow answer is
counted instead of dropped at the end of the run. The connections open
one after another, evenly over the first RAMP seconds (0: all at once).
Only the requests sent after the first WARMUP seconds are measured (good
answers, latency); the first wave (every client's first request) is
reported on its own. A request that gets no whole answer within TIMEOUT seconds is a
timeout: its connection is closed and, while the run lasts, opened again.
Errors are counted over the whole run. Prints one JSON line:

  t0, t_last_good,     wall clock (time.time()) of the end of the warm-up,
  t_end                of the last good (2xx) answer and of the end
  good, status         good answers measured; answers by status code
  timeouts, sock       timeouts; socket errors (connect, reset, closed
                       before a whole answer) by kind
  lat_us               latency of every good answer measured, microseconds
  first_us             latency of every good answer of the first wave
  left_unopened        connections that could not be opened by the end

wrk is not used here because it drops the requests in flight when its run
ends (with a 3 s delay that is most of them) and counts a stuck request
again every two seconds.
"""

import argparse
import errno
import json
import select
import socket
import sys
import time

BODY = (b'{"model_name":"kling-v1","prompt":"a red fox running through snow, cinematic",'
        b'"negative_prompt":"","cfg_scale":0.5,"mode":"std","duration":"5"}')
# An answer bigger than this is an error, not something to keep buffering.
MAX_ANSWER = 1 << 20


class Conn:
    __slots__ = ("sock", "fd", "start", "buf", "busy", "connecting", "first")


def answer_end(buf):
    """(end, status, close) once buf holds a whole answer, else None.
    Raises ValueError on something that is not HTTP/1.x."""
    h = buf.find(b"\r\n\r\n")
    if h < 0:
        if len(buf) > 65536:
            raise ValueError("header too long")
        return None
    head = bytes(buf[:h]).split(b"\r\n")
    parts = head[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("not HTTP: %r" % head[0][:40])
    status = int(parts[1])
    clen, chunked = None, False
    close = parts[0] == b"HTTP/1.0"
    for line in head[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        v = v.strip().lower()
        if k == b"content-length":
            clen = int(v)
        elif k == b"transfer-encoding" and b"chunked" in v:
            chunked = True
        elif k == b"connection":
            close = v == b"close"
    pos = h + 4
    if chunked:
        while True:
            e = buf.find(b"\r\n", pos)
            if e < 0:
                return None
            size = int(bytes(buf[pos:e]).split(b";")[0], 16)
            pos = e + 2
            if size == 0:
                # trailers, then an empty line
                while True:
                    e = buf.find(b"\r\n", pos)
                    if e < 0:
                        return None
                    if e == pos:
                        return e + 2, status, close
                    pos = e + 2
            if len(buf) < pos + size + 2:
                return None
            pos += size + 2
    if clen is None:
        if status in (204, 304) or 100 <= status < 200:
            return pos, status, close
        raise ValueError("answer without length")
    if len(buf) < pos + clen:
        return None
    return pos + clen, status, close


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--warmup", type=float, default=0.0)
    ap.add_argument("--ramp", type=float, default=0.0)
    ap.add_argument("--token", default="")
    a = ap.parse_args()

    req = (b"POST " + a.path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % a.port +
           b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(BODY) +
           (b"Authorization: Bearer " + a.token.encode() + b"\r\n" if a.token else b"") +
           b"\r\n" + BODY)
    addr = ("127.0.0.1", a.port)
    ep = select.epoll()
    conns = {}
    res = {"good": 0, "status": {}, "timeouts": 0, "sock": {}, "lat_us": [],
           "first_us": [], "t0": 0.0, "t_last_good": 0.0}
    lat, first = res["lat_us"], res["first_us"]

    def sock_err(kind):
        res["sock"][kind] = res["sock"].get(kind, 0) + 1

    def open_conn(initial=False):
        c = Conn()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock, c.fd, c.buf, c.busy, c.connecting = s, s.fileno(), bytearray(), True, True
        c.first = initial
        c.start = time.monotonic()
        r = s.connect_ex(addr)
        if r not in (0, errno.EINPROGRESS):
            sock_err("connect")
            s.close()
            return False
        conns[c.fd] = c
        ep.register(c.fd, select.EPOLLOUT)
        return True

    def drop(c):
        ep.unregister(c.fd)
        del conns[c.fd]
        c.sock.close()

    def send(c):
        c.start = time.monotonic()
        c.busy = True
        try:
            n = c.sock.send(req)
        except OSError:
            n = -1
        if n != len(req):
            # a whole small request fits any fresh socket buffer
            sock_err("write")
            return False
        return True

    start = time.monotonic()
    t0 = start + a.warmup
    res["t0"] = time.time() + a.warmup
    stop_at = t0 + a.seconds
    running = True
    # connections that failed to open, tried again on the next turn
    want = 0
    # the clients start one after another over the first RAMP seconds
    opened = 0
    next_scan = start + 0.1
    while conns or (running and (want or opened < a.conns)):
        now = time.monotonic()
        if running and now >= stop_at:
            running = False
            for c in [c for c in conns.values() if not c.busy]:
                drop(c)
        while running and opened < a.conns and now >= start + a.ramp * opened / a.conns:
            opened += 1
            if not open_conn(initial=True):
                want += 1
        while running and want:
            if not open_conn():
                break
            want -= 1
        if not conns:
            if running:
                time.sleep(0.001 if opened < a.conns else 0.01)
            continue
        if now >= next_scan:
            next_scan = now + 0.1
            for c in [c for c in conns.values() if c.busy and now - c.start > a.timeout]:
                res["timeouts"] += 1
                drop(c)
                if running:
                    want += 1
        wait = min(next_scan, stop_at if running else next_scan)
        if running and opened < a.conns:
            wait = min(wait, start + a.ramp * opened / a.conns)
        wait = max(0.0, wait - now)
        for fd, ev in ep.poll(wait, 1024):
            c = conns.get(fd)
            if c is None:
                continue
            if c.connecting:
                e = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e != 0:
                    sock_err("connect")
                    drop(c)
                    if running:
                        want += 1
                    continue
                c.connecting = False
                ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
                if not send(c):
                    drop(c)
                    if running:
                        want += 1
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = None
            if not data:
                # closed or reset before a whole answer, or while idle
                if c.busy:
                    sock_err("read" if data is None else "closed")
                drop(c)
                if running:
                    want += 1
                continue
            if not c.busy:
                sock_err("unasked")
                drop(c)
                if running:
                    want += 1
                continue
            c.buf += data
            try:
                done = answer_end(c.buf)
                if done is None and len(c.buf) > MAX_ANSWER:
                    raise ValueError("answer too long")
            except ValueError:
                sock_err("parse")
                drop(c)
                if running:
                    want += 1
                continue
            if done is None:
                continue
            end, status, close = done
            t = time.monotonic()
            was_first, c.first = c.first, False
            if 200 <= status < 300:
                if was_first:
                    first.append(int((t - c.start) * 1e6))
                if c.start >= t0:
                    res["good"] += 1
                    lat.append(int((t - c.start) * 1e6))
                    res["t_last_good"] = res["t0"] + (t - t0)
            else:
                k = str(status)
                res["status"][k] = res["status"].get(k, 0) + 1
            del c.buf[:end]
            c.busy = False
            if c.buf:
                sock_err("unasked")
                close = True
            if close or not running:
                drop(c)
                if running:
                    want += 1
                continue
            if not send(c):
                drop(c)
                want += 1
    res["t_end"] = time.time()
    res["left_unopened"] = want if running else 0
    sys.stdout.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
