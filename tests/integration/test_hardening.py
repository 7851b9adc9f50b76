#!/usr/bin/python3
"""What a hostile token holder or an ordinary production day must not
break: bad query bytes, revoked tokens, signals during uploads, slow bodies
without a token, long allowed-IP lists, a reload with a bad line, task ids
in large bodies and in the path of any method, multi-byte names.

Prints `hardening: N passed, M failed`.

Usage: test_hardening.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import rec_body, rec_header, request  # noqa: E402
from runner import Fail, Suite, check, eq, expect_gw_error, short  # noqa: E402

H = None
S = Suite("hardening", timeout=120)


def uniq(prefix="h"):
    return harness.rand_name(prefix)


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"])]


def raw_request(port, target, method="GET", headers=(), timeout=10):
    """Send a request line byte for byte (bytes target) and read the answer
    up to the end of its headers plus what arrives at once."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = method.encode() + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\n"
        for k, v in headers:
            head += ("%s: %s\r\n" % (k, v)).encode()
        s.sendall(head + b"Connection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    line = data.split(b"\r\n", 1)[0]
    status = int(line.split()[1]) if len(line.split()) > 1 else 0
    return status, data


# ---------------------------------------------------------------------------
# a FastCGI client, to talk to the pool without a front server in between

BEGIN, END, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6


def _rec(t, content, rid=1):
    out = b""
    for off in range(0, max(len(content), 1), 65535):
        part = content[off:off + 65535]
        out += struct.pack(">BBHHBB", 1, t, rid, len(part), 0, 0) + part
        if not content:
            break
    return out


def _nv(k, v):
    out = b""
    for x in (k, v):
        out += bytes([len(x)]) if len(x) < 128 else struct.pack(">I", len(x) | 0x80000000)
    return out + k + v


class FcgiRequest:
    def __init__(self, sock_path, params):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(sock_path)
        body = b"".join(_nv(k.encode(), v.encode()) for k, v in params.items())
        self.s.sendall(_rec(BEGIN, struct.pack(">HB5x", 1, 0)) + _rec(PARAMS, body) + _rec(PARAMS, b""))

    def send(self, data):
        self.s.sendall(_rec(STDIN, data) if data else b"")

    def end(self):
        self.s.sendall(_rec(STDIN, b""))

    def answer(self, timeout=30):
        """(status, headers text, body) of the answer; 0 if none."""
        self.s.settimeout(timeout)
        out, buf = b"", b""
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    break
                buf += b
                while len(buf) >= 8:
                    _, t, _, n, pad, _ = struct.unpack(">BBHHBB", buf[:8])
                    if len(buf) < 8 + n + pad:
                        break
                    if t == STDOUT:
                        out += buf[8:8 + n]
                    buf = buf[8 + n + pad:]
                    if t == END:
                        raise StopIteration
        except StopIteration:
            pass
        finally:
            self.s.close()
        head, _, body = out.partition(b"\r\n\r\n")
        status = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"status:"):
                status = int(line.split()[1])
        return status, head.decode("utf-8", "replace"), body


def fcgi_params(method, uri, token=None, length=None, extra=None):
    p = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "SCRIPT_NAME": uri.split("?")[0],
         "QUERY_STRING": uri.partition("?")[2], "REMOTE_ADDR": "127.0.0.1",
         "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/json"}
    if token is not None:
        p["HTTP_AUTHORIZATION"] = "Bearer sk-" + token["key"]
    if length is not None:
        p["CONTENT_LENGTH"] = str(length)
    p.update(extra or {})
    return p


def busy_workers(pids):
    """Workers not waiting in accept(): /proc/PID/syscall names the call a
    process sleeps in (43 accept, 288 accept4 on x86-64)."""
    out = []
    for pid in pids:
        try:
            with open("/proc/%d/syscall" % pid) as f:
                nr = f.read().split()[0]
        except (OSError, IndexError):
            continue
        if nr not in ("43", "288"):
            out.append(pid)
    return out


def relay_log():
    with open(H.log_file, encoding="utf-8", errors="replace") as f:
        return f.read()


# ---------------------------------------------------------------------------
# the query string


@S.test()
def test_query_control_bytes_refused(front, port):
    """A raw control byte or a malformed escape in the query is the
    client's fault: 400 invalid_path, nothing forwarded, and never counted
    against a channel (six in a row leave the channel's breaker closed)."""
    user, token, chan = H.setup_account()
    m = uniq("q")
    since = len(H.stub.requests())
    bad = [b"/kling/v1/" + m.encode() + b"?a=\x01", b"/kling/v1/" + m.encode() + b"?a=%zz",
           b"/kling/v1/" + m.encode() + b"?a=%0a", b"/kling/v1/" + m.encode() + b"?a=\x7f",
           b"/kling/v1/" + m.encode() + b"?a=b%", b"/kling/v1/" + m.encode() + b"?x=\x1b[0m"]
    for t in bad:
        st, data = raw_request(port, t, headers=auth(token))
        eq(st, 400, "status for %r" % t)
        if st == 400 and b"invalid_path" not in data and front == "lighttpd":
            raise Fail("%r: 400 without the relay's JSON: %r" % (t, data[:300]))
    r = request(port, "GET", "/kling/v1/" + m + "?a=ok", auth(token))
    eq(r.status, 200, "a good request after the bad ones (breaker closed): " + short(r))
    got = [x for x in H.stub.requests(since) if m in x["path"]]
    eq([x["path"] for x in got], ["/kling/v1/%s?a=ok" % m], "what reached the upstream")


# ---------------------------------------------------------------------------
# revocation reaches free requests too


def _refused_everywhere(port, token, path, want_status, runs):
    """Send free GETs until `runs` in a row are refused with want_status;
    returns the last answer and the time of the last one that was not."""
    last_ok, row, deadline = time.time(), 0, time.time() + 10
    while row < runs:
        r = request(port, "GET", path, auth(token))
        if r.status == want_status:
            row += 1
            continue
        check(r.status == 200, "unexpected answer while waiting: " + short(r))
        last_ok, row = time.time(), 0
        check(time.time() < deadline, "still served after 10 s")
    return r, last_ok


@S.test(fronts=False)
def test_revoked_token_stops_free_requests():
    """A disabled token, a deleted token, a banned user and a disabled
    channel stop free GETs within 2 s on every worker (each worker holds
    the token row after the first request)."""
    port = H.lighttpd_port
    cases = [
        ("token disabled", "UPDATE tokens SET status=2 WHERE id=%(token)s", 401, "token_disabled"),
        ("token deleted", "UPDATE tokens SET deleted_at=NOW() WHERE id=%(token)s", 401, "invalid_token"),
        ("token removed", "DELETE FROM tokens WHERE id=%(token)s", 401, "invalid_token"),
        ("user banned", "UPDATE users SET status=2 WHERE id=%(user)s", 403, "user_banned"),
        ("channel disabled", "UPDATE channels SET status=2 WHERE id=%(chan)s", 503, "model_not_found"),
    ]
    for what, sql, st, code in cases:
        user, token, chan = H.setup_account()
        path = "/kling/v1/videos/" + uniq("free")
        for _ in range(3 * H.workers):     # every worker keeps the row
            r = request(port, "GET", path, auth(token))
            eq(r.status, 200, what + ": before the change")
        t0 = time.time()
        H.sql(sql % {"token": token["id"], "user": user["id"], "chan": chan["id"]})
        r, last_ok = _refused_everywhere(port, token, path, st, 4 * H.workers)
        check(last_ok - t0 <= 2.0, "%s: still served %.2f s after the change" % (what, last_ok - t0))
        check(json.loads(r.body)["error"]["code"] == code, "%s: %s" % (what, short(r)))


# ---------------------------------------------------------------------------
# the token before the body


@S.test(fronts=False)
def test_bad_token_refused_before_body():
    """A request whose token is unknown is answered 401 at once, without
    the relay waiting for a byte of its body: 32 such requests that never
    send their body hold no worker."""
    held = []
    try:
        for i in range(32):
            rq = FcgiRequest(H.relay_sock, fcgi_params("POST", "/kling/v1/slow%d" % i,
                                                       {"key": harness.rand_key(48)}, length=1000))
            held.append(rq)
        t0 = time.time()
        for rq in held:
            st, head, body = rq.answer(timeout=5)
            eq(st, 401, "answer without the body")
            check(b"invalid_token" in body, "body: %r" % body[:200])
        check(time.time() - t0 < 5, "answers took %.1f s" % (time.time() - t0))
    finally:
        for rq in held:
            try:
                rq.s.close()
            except OSError:
                pass
    user, token, chan = H.setup_account()
    r = request(H.lighttpd_port, "POST", "/kling/v1/" + uniq("after"), auth(token), b"{}")
    eq(r.status, 200, "a good request afterwards")


# ---------------------------------------------------------------------------
# signals never cut a request in flight


@S.test(fronts=False)
def test_signals_during_upload():
    """SIGUSR1 (log rotation) and SIGHUP (reload) while a worker reads a
    request body: the upload completes byte for byte and is answered 200."""
    pool = H.start_pool("sigpool", workers=2)
    try:
        user, token, chan = H.setup_account()
        m = uniq("sig")
        first, rest = b'{"prompt":"' + b"a" * 5000, b"b" * 5000 + b'"}'
        rq = FcgiRequest(pool.sock, fcgi_params("POST", "/kling/v1/" + m, token,
                                                length=len(first) + len(rest)))
        rq.send(first)
        harness.wait_for(lambda: busy_workers(pool.workers_pids()), 10, "a worker reading the body")
        os.kill(pool.pid, signal.SIGUSR1)
        os.kill(pool.pid, signal.SIGHUP)
        harness.wait_for(lambda: "config reloaded" in open(pool.log_file, errors="replace").read(),
                         10, "the reload")
        rq.send(rest)
        rq.end()
        st, head, body = rq.answer()
        eq(st, 200, "status after the signals (%r)" % body[:200])
        got = H.stub.matching(m)
        eq(len(got), 1, "requests upstream")
        eq(rec_body(got[0]), first + rest, "body upstream")
    finally:
        pool.stop()


# ---------------------------------------------------------------------------
# allowed IPs are never cut


@S.test(fronts=False)
def test_long_allow_ips_not_cut():
    """An allowed-IP list of ~4,000 bytes whose last entry is the only one
    that matches admits the client; one whose cut would have matched
    (127.9.9.9/32 -> 127.9.9.9/3) does not; one longer than the relay
    holds admits nobody."""
    pad = "\n".join("10.%d.%d.%d/32" % (i // 65536, (i // 256) % 256, i % 256) for i in range(280))
    ok_list = pad + "\n127.0.0.1/32"
    check(3700 < len(ok_list) <= 4096, "list size %d" % len(ok_list))
    user, token, chan = H.setup_account(allow_ips=ok_list)
    r = request(H.lighttpd_port, "GET", "/kling/v1/" + uniq("ip"), auth(token))
    eq(r.status, 200, "the last entry admits: " + short(r))
    # the entry that straddled byte 1,023 before
    cut = ("x" * (1023 - len("\n127.9.9.9/3"))) + "\n127.9.9.9/32"
    user, token, chan = H.setup_account(allow_ips=cut)
    r = request(H.lighttpd_port, "GET", "/kling/v1/" + uniq("ip"), auth(token))
    expect_gw_error(r, 403, "ip_not_allowed", "您的 IP 不在令牌允许访问的列表中", "127.9.9.9/32")
    user, token, chan = H.setup_account(allow_ips=pad + "\n" + pad + "\n127.0.0.1/32")
    r = request(H.lighttpd_port, "GET", "/kling/v1/" + uniq("ip"), auth(token))
    expect_gw_error(r, 403, "ip_not_allowed", "您的 IP 不在令牌允许访问的列表中", "over the limit")


# ---------------------------------------------------------------------------
# a reload with a bad line keeps the old config whole


@S.test(fronts=False)
def test_bad_reload_keeps_config():
    """SIGHUP with a config whose first line is bad: the pool says so and
    keeps its config whole, so a worker forked afterwards still decrypts
    the channel keys (SESSION_SECRET) and forwards with the right key."""
    pool = H.start_pool("reloadpool", workers=1)
    try:
        user = H.make_user()
        token = H.make_token(user)
        key = "sealed-" + harness.rand_key(24)
        # added as the admin adds it: the key sealed with the pool's secret
        p = subprocess.run([os.path.join(harness.BUILD, "bltcy-ctl"), "-c", pool.config_path,
                            "add-channel", "--name", uniq("c"), "--base-url",
                            "http://127.0.0.1:%d" % H.stub_port, "--key", key, "--models", "kling",
                            "--group", user["group"]], env=H.env(), capture_output=True)
        check(p.returncode == 0, "bltcy-ctl add-channel: %r %r" % (p.stdout, p.stderr))
        stored = H.sql("SELECT `key` FROM channels WHERE id=%s", (int(p.stdout.split()[-1]),))[0]["key"]
        check(stored.startswith("enc:v1:"), "key stored sealed: %r" % stored[:12])
        m = uniq("rl")
        r = request(pool.port, "POST", "/kling/v1/" + m + "/1", auth(token), b"{}")
        eq(r.status, 200, "before the reload")
        with open(pool.config_path) as f:
            good = f.read()
        with open(pool.config_path, "w") as f:
            f.write("RELAY_TIMEOUT=soon\n" + good)
        old = set(pool.workers_pids())
        os.kill(pool.pid, signal.SIGHUP)
        harness.wait_for(lambda: "reload refused" in open(pool.log_file, errors="replace").read(),
                         10, "the refused reload in the log")
        for pid in old:                     # a worker forked after the reload
            os.kill(pid, signal.SIGKILL)
        harness.wait_for(lambda: set(pool.workers_pids()) - old, 10, "a new worker")
        r = request(pool.port, "POST", "/kling/v1/" + m + "/2", auth(token), b"{}")
        eq(r.status, 200, "after the refused reload: " + short(r))
        got = H.stub.matching(m + "/2")
        eq([rec_header(g, "Authorization") for g in got], [["Bearer " + key]], "key upstream")
    finally:
        pool.stop()


# ---------------------------------------------------------------------------
# task ownership: large bodies, ids in the path of any method


def _foreign_task(service="kling"):
    """A task id recorded for another user."""
    owner, otoken, ochan = H.setup_account()
    tid = uniq("task")
    H.sql("INSERT INTO bltcy_tasks (service, task_id, channel_id, user_id, token_id, created_at)"
          " VALUES (%s, %s, %s, %s, %s, %s)", (service, tid, ochan["id"], owner["id"], otoken["id"],
                                                int(time.time())))
    return tid


@S.test()
def test_foreign_task_in_large_body(front, port):
    """A body over 64 KiB is read whole before forwarding: the other
    user's task id in it is refused, nothing forwarded; the same body
    without it goes through byte for byte."""
    tid = _foreign_task()
    user, token, chan = H.setup_account()
    m = uniq("big")
    pad = "x" * (200 * 1024)
    body = json.dumps({"prompt": pad, "task_id": tid}).encode()
    r = request(port, "POST", "/kling/v1/" + m, auth(token) + [("Content-Type", "application/json")], body)
    expect_gw_error(r, 404, "task_not_exist", "任务不存在", "foreign id in a 200 KiB body")
    eq(H.stub.matching(m), [], "nothing forwarded")
    body = json.dumps({"prompt": pad, "task_id": "mine-" + m}).encode()
    r = request(port, "POST", "/kling/v1/" + m, auth(token) + [("Content-Type", "application/json")], body)
    eq(r.status, 200, "own body: " + short(r))
    got = H.stub.matching(m)
    eq(len(got), 1, "forwarded once")
    import hashlib
    eq(got[0].get("body_sha256"), hashlib.sha256(body).hexdigest(), "body upstream byte for byte")


@S.test()
def test_foreign_task_in_path_of_post(front, port):
    """An id in the path of a POST or PUT is checked as for GET."""
    tid = _foreign_task()
    user, token, chan = H.setup_account()
    for method in ("POST", "PUT", "PATCH"):
        r = request(port, method, "/kling/v1/videos/%s/cancel" % tid, auth(token), b"{}")
        expect_gw_error(r, 404, "task_not_exist", "任务不存在", method)
    eq(H.stub.matching(tid), [], "nothing forwarded")


# ---------------------------------------------------------------------------
# TRACE and CONNECT


@S.test(fronts=False)
def test_trace_refused_by_relay():
    """TRACE and CONNECT reaching the pool are refused before anything
    else: 405, nothing forwarded (the channel key would be echoed)."""
    user, token, chan = H.setup_account()
    m = uniq("tr")
    for method in ("TRACE", "CONNECT"):
        rq = FcgiRequest(H.relay_sock, fcgi_params(method, "/kling/v1/" + m, token, length=0))
        rq.end()
        st, head, body = rq.answer()
        eq(st, 405, method)
        check(b"method_not_allowed" in body, "%s body %r" % (method, body[:200]))
    eq(H.stub.matching(m), [], "nothing forwarded")


# ---------------------------------------------------------------------------
# multi-byte names


@S.test(fronts=False)
def test_multibyte_token_name_settles():
    """A token named "a" + "中" x 25 (76 bytes) is charged and logged with
    its whole name, and requests after it are settled too."""
    name = "a" + "中" * 25
    user, token, chan = H.setup_account(name=name)
    for i in range(3):
        r = request(H.lighttpd_port, "POST", "/kling/v1/" + uniq("mb"), auth(token), b"{}")
        eq(r.status, 200, "request %d" % i)
    harness.wait_for(lambda: len(H.logs(token)) == 3, 10, "3 logs rows")
    eq([row["token_name"] for row in H.logs(token)], [name] * 3, "token_name in logs")
    eq(H.sql("SELECT remain_quota FROM tokens WHERE id=%s", (token["id"],))[0]["remain_quota"],
       10 ** 12 - 3000, "charged 3 x 1000")


# ---------------------------------------------------------------------------


def start(keep):
    global H
    H = harness.start_suite(keep, workers=4)
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
