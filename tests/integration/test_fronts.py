#!/usr/bin/python3
"""Integration tests of the shipped front server configurations,
lighttpd.conf.sample and nginx.conf.sample, as an operator installs them:
one front serves /admin/ (the admin CGI; nginx through fcgiwrap) and hands
every other path to the relay pool.

Covered: a raw request target with a dot segment never reaches the admin
or the upstream, whatever path it names after normalising (SPEC 4.1);
TRACE and CONNECT are refused by the front; a raw control byte in the
query never reaches the upstream; request bodies reach the relay only once
complete and slow readers are buffered by the front while SSE still
reaches a fast reader event by event (SPEC 4.8).

The samples are rendered with only their paths, port and user changed
(render_sample() fails the setup when a line it changes is missing), and
run beside the harness's own fronts on the same private MariaDB, stub
upstream and relay pool. The raw-query test also runs on the harness's
fronts (tests/conf), which the other suites use.

Prints one line per test (`ok - name` / `not ok - name: reason`) and ends
with `fronts: N passed, M failed`. Exit status 0 only if M == 0.

Usage: test_fronts.py [-k SUBSTRING]... [--keep]
  -k      run only the tests whose name contains SUBSTRING
  --keep  keep the temporary directory (logs, configs) after the run
"""

import sys
sys.dont_write_bytecode = True
import hashlib
import json
import os
import re
import resource
import socket
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
from harness import BUILD, ROOT, Conn, SetupError, request, wait_for  # noqa: E402

H = None
SAMPLES = ("lighttpd", "nginx")                 # the rendered samples
HARNESS_FRONTS = ("lighttpd-it", "nginx-it")    # tests/conf/*.in
ACCOUNT = {}


def reset_stub():
    """The rules of one test never leak into the next."""
    H.stub.script(replace=True)


S = runner.Suite("fronts", timeout=120, after_each=reset_stub,
                 watch=("relay", "stub", "mariadbd", "fcgiwrap", "sample-lighttpd", "sample-nginx"))
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, expect_gw_error, expect_ok = runner.short, runner.expect_gw_error, runner.expect_ok


def test(fronts=SAMPLES):
    return S.test(fronts)


# ---------------------------------------------------------------------------
# helpers


def account():
    """One user, token and channel on the stub, shared by the tests."""
    if not ACCOUNT:
        user, token, chan = H.setup_account()
        ACCOUNT.update(user=user, token=token, chan=chan)
    return ACCOUNT["user"], ACCOUNT["token"], ACCOUNT["chan"]


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"])]


def raw(port, method, target, headers=(), body=None):
    """One request with the target sent byte for byte."""
    return request(port, method, target, headers, body, timeout=20)


def stub_seen():
    return len(H.stub.requests())


def expect_stub_untouched(since, what):
    new = H.stub.requests(since)
    eq([(x["method"], x["path"]) for x in new], [], what + ": requests seen by the upstream")


def expect_not_admin(r, what):
    """Neither the admin's redirect to its login page nor an admin page."""
    check(r.header("Location") is None, "%s: redirected (%s) to %r" % (what, short(r), r.header("Location")))
    check(b"<form" not in r.body and b"csrf" not in r.body, "%s: an admin page: %s" % (what, short(r)))


def relay_lines(rid, timeout):
    """The relay's log lines of request rid once its closing line is there
    (or whatever there is after timeout)."""
    rx = re.compile(r"req=%s\b" % re.escape(rid))
    deadline = time.time() + timeout
    while True:
        try:
            with open(H.log_file, "rb") as f:
                lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if rx.search(ln)]
        except OSError:
            lines = []
        if any(" status=" in ln for ln in lines) or time.time() > deadline:
            return lines
        time.sleep(0.05)


INFLIGHT_RE = re.compile(r"^bltcy_inflight_requests (\d+)$", re.M)


def inflight():
    """Requests the relay is serving now, not counting the metrics request
    that asks (through the harness's lighttpd, from a local address)."""
    r = request(H.lighttpd_port, "GET", "/bltcy/metrics", timeout=10)
    eq(r.status, 200, "GET /bltcy/metrics")
    m = INFLIGHT_RE.search(r.body.decode())
    check(m, "no bltcy_inflight_requests in the metrics")
    return int(m.group(1)) - 1


# ---------------------------------------------------------------------------
# tests: the admin is in the same front (the premise of the dot-segment tests)


@test()
def test_admin_served_beside_relay(front, port):
    """/admin/ without a session is the admin's 303 to its login page and
    /admin/login its form, while /kling/ is the relay on the same port."""
    r = raw(port, "GET", "/admin/")
    eq((r.status, r.header("Location")), (303, "/admin/login"), "GET /admin/ (status, Location)")
    r = raw(port, "GET", "/admin/login")
    eq(r.status, 200, "GET /admin/login status")
    check(b"<form" in r.body, "GET /admin/login is not the login form: %s" % short(r))
    _, token, _ = account()
    seen = stub_seen()
    r = raw(port, "GET", "/kling/v1/fronts-" + harness.rand_name("a"), auth(token))
    expect_ok(r, "GET /kling/v1/... beside the admin")
    eq(len(H.stub.requests(seen)), 1, "requests seen by the upstream")


# ---------------------------------------------------------------------------
# tests: dot segments


# Raw targets with a dot segment under a service prefix: the relay's own
# 400 invalid_path on both fronts, whatever the normalised path names.
DOTSEG_SERVICE = [
    b"/kling/../admin",
    b"/kling/../admin/",
    b"/kling/../admin/login",
    b"/kling/../admin?x=1",
    b"/kling/%2e%2e/admin",
    b"/kling/%2E%2E/admin/",
    b"/kling/%2e%2E/admin",
    b"/kling/.%2e/admin",
    b"/kling/%2e./admin",
    b"/kling/./../admin",
    b"/kling/%2e/../admin",
    b"/kling/./admin",
    b"/kling/v1/../../admin/",
    b"/kling/v1/%2e%2e/%2e%2e/admin/?page=1",
    b"/kling/..\\admin",
    b"/kling/..%5cadmin",
    b"/kling/%2e%2e%2fadmin",
    b"/kling/%2e%2e%2Fadmin/",
    b"/kling/../bltcy/metrics",
    b"/kling/v1/..",
    b"/kling/v1/.",
    b"/kling/v1/../videos",
]

# Dot segments before any service prefix: the relay's 400 invalid_path
# all the same, except where nginx refuses a target that climbs above the
# root itself (its own 400).
DOTSEG_OTHER = [
    b"/x/../admin/",
    b"/x/%2e%2e/admin/",
    b"/admin/../admin/",
    b"/admin/%2e%2e/admin/login",
    b"/./admin/",
    b"/../admin/",
    b"/%2e%2e/admin/",
]
NGINX_OWN_400 = {b"/../admin/", b"/%2e%2e/admin/"}


@test()
def test_dotseg_service_path_is_relay_400(front, port):
    """Every target of DOTSEG_SERVICE, with a valid token, as GET and as a
    POST with a body: the relay's 400 invalid_path JSON, never the admin,
    nothing forwarded upstream."""
    _, token, _ = account()
    seen = stub_seen()
    for target in DOTSEG_SERVICE:
        for method, body in (("GET", None), ("POST", b"username=root&password=x")):
            what = "%s %r" % (method, target)
            hdrs = auth(token)
            if body is not None:
                hdrs = hdrs + [("Content-Type", "application/x-www-form-urlencoded")]
            r = raw(port, method, target, hdrs, body)
            expect_not_admin(r, what)
            expect_gw_error(r, 400, "invalid_path", "非法的请求路径", what)
    expect_stub_untouched(seen, "dot-segment targets")


@test()
def test_dotseg_other_path_never_admin(front, port):
    """Every target of DOTSEG_OTHER: the relay's 400 invalid_path JSON, or
    nginx's own 400 for a target above the root; never the admin, nothing
    forwarded."""
    _, token, _ = account()
    seen = stub_seen()
    for target in DOTSEG_OTHER:
        what = "GET %r" % target
        r = raw(port, "GET", target, auth(token))
        expect_not_admin(r, what)
        if front == "nginx" and target in NGINX_OWN_400:
            eq((r.status, r.header("X-Request-Id")), (400, None), what + " (status, X-Request-Id): nginx's own 400")
            continue
        expect_gw_error(r, 400, "invalid_path", "非法的请求路径", what)
    expect_stub_untouched(seen, "dot-segment targets outside the services")


@test()
def test_dotlike_names_still_relayed(front, port):
    """Names that only look like dot segments (`...`, `.x`, `..x`, a dot
    segment in the query) are ordinary paths: relayed upstream byte for
    byte."""
    _, token, _ = account()
    mark = harness.rand_name("d")
    for target in ("/kling/v1/.../%s" % mark, "/kling/v1/.x/%s" % mark, "/kling/v1/..x/%s" % mark,
                   "/kling/v1/%s?path=../admin&b=%%2e%%2e/x" % mark, "/kling/v1/%s.%%2e" % mark):
        seen = stub_seen()
        r = raw(port, "GET", target, auth(token))
        expect_ok(r, "GET " + target)
        eq([x["path"] for x in H.stub.requests(seen)], [target], "GET %s: target seen upstream" % target)


# ---------------------------------------------------------------------------
# tests: TRACE and CONNECT


# lighttpd has no handler for them: its own 405 for CONNECT, 501 for TRACE
# (what it answers for a method its file handler does not implement).
# nginx refuses both with 405.
REFUSED = {("lighttpd", "TRACE"): 501, ("lighttpd", "CONNECT"): 405,
           ("nginx", "TRACE"): 405, ("nginx", "CONNECT"): 405}


@test()
def test_trace_connect_refused(front, port):
    """TRACE and CONNECT with a valid token, on a service path, the
    admin, health and a dot-segment path: the front's own refusal (no
    X-Request-Id: the relay never saw them), nothing forwarded."""
    _, token, _ = account()
    seen = stub_seen()
    for method in ("TRACE", "CONNECT"):
        for target in ("/kling/v1/videos", "/suno/x?y=1", "/admin/", "/bltcy/health", "/kling/../admin"):
            what = "%s %s" % (method, target)
            r = raw(port, method, target, auth(token) + [("Max-Forwards", "0")])
            eq((r.status, r.header("X-Request-Id")), (REFUSED[(front, method)], None),
               what + " (status, X-Request-Id)")
            check(b"Bearer" not in r.body and token["key"].encode() not in r.body,
                  "%s: the token is echoed: %s" % (what, short(r)))
    expect_stub_untouched(seen, "TRACE/CONNECT")


# ---------------------------------------------------------------------------
# tests: raw control bytes in the query


CTRL_QUERIES = [b"a=\x01b", b"a=b\x1f", b"\x7f", b"a=\x1b[31m", b"a=\tb", b"x=1&a=\x08"]


@test(fronts=SAMPLES + HARNESS_FRONTS)
def test_query_control_bytes_not_forwarded(front, port):
    """A raw control byte in the query of a valid, authorised request:
    400, either the relay's invalid_path JSON (the front passed the raw
    target on) or the front's own 400 (no X-Request-Id); nothing reaches
    the upstream."""
    _, token, _ = account()
    seen = stub_seen()
    for q in CTRL_QUERIES:
        target = b"/kling/v1/videos?" + q
        what = "GET %r" % target
        r = raw(port, "GET", target, auth(token))
        if r.header("X-Request-Id") is None:
            eq(r.status, 400, what + " status (the front's own answer)")
        else:
            expect_gw_error(r, 400, "invalid_path", "非法的请求路径", what)
    expect_stub_untouched(seen, "control bytes in the query")


@test(fronts=SAMPLES + HARNESS_FRONTS)
def test_query_passed_raw(front, port):
    """Odd but legal query bytes reach the upstream exactly as sent (no
    decoding, re-encoding or reordering by the front)."""
    _, token, _ = account()
    mark = harness.rand_name("q")
    target = "/kling/v1/%s?b=%%20x&a=%%2F%%2e&c=a+b&d=%%7e%%7E&e=%%E4%%BD%%A0&&f=&g=~!$'()*,;:@/?" % mark
    seen = stub_seen()
    r = raw(port, "GET", target, auth(token))
    expect_ok(r, "GET " + target)
    eq([x["path"] for x in H.stub.requests(seen)], [target], "target seen upstream")


# ---------------------------------------------------------------------------
# tests: slow clients


@test()
def test_slow_upload_reaches_relay_complete(front, port):
    """A client that sends its headers and half of a 1 MiB body, then
    stalls: the relay has no request in flight meanwhile (the front holds
    the body); once the rest arrives the request is relayed with the whole
    body."""
    _, token, _ = account()
    mark = harness.rand_name("up")
    body = os.urandom(1 << 20)
    base = inflight()
    c = Conn(port, timeout=30)
    try:
        head = ("POST /kling/v1/upload/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer sk-%s\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                % (mark, port, token["key"], len(body))).encode()
        c.sock.sendall(head + body[:len(body) // 2])
        # the relay would see the request within a few ms if the front
        # streamed it; watch for a second
        deadline = time.time() + 1.0
        while time.time() < deadline:
            n = inflight()
            check(n <= base, "the relay is serving the request before its body arrived (in flight %d, before %d)"
                  % (n, base))
            time.sleep(0.1)
        check(not H.stub.matching(mark), "the upstream saw the request before its body arrived")
        c.sock.sendall(body[len(body) // 2:])
        c.read_head("POST")
        got = c.read_body()
    finally:
        c.close()
    eq(c.status, 200, "status once the body is complete (%r)" % got[:200])
    recs = H.stub.matching(mark)
    eq([(x["body_len"], x["body_sha256"]) for x in recs], [(len(body), hashlib.sha256(body).hexdigest())],
       "body seen upstream (length, sha256)")


@test()
def test_slow_reader_frees_relay(front, port):
    """A 24 MiB answer to a client that reads only its headers: the relay
    finishes the request (its closing log line, status 200) while the
    client has read nothing more; the front holds the rest. The client
    then reads every byte."""
    _, token, _ = account()
    mark = harness.rand_name("dl")
    size = 24 << 20
    H.stub.script({"path": mark, "mode": "download", "size": size, "seed": mark})
    c = Conn(port, timeout=60)
    try:
        c.send_request("GET", "/kling/v1/files/" + mark, auth(token))
        c.read_head("GET")
        eq(c.status, 200, "status")
        rid = dict((k.lower(), v) for k, v in c.headers).get("x-request-id")
        check(rid, "no X-Request-Id")
        lines = relay_lines(rid, 20)
        check(any(" status=200" in ln for ln in lines),
              "the relay did not finish within 20 s while the client read nothing (still writing to the "
              "front, which does not buffer for slow readers?): %r" % lines)
        h = hashlib.sha256()
        n = [0]

        def sink(b):
            h.update(b)
            n[0] += len(b)
        c.read_body(sink)
    finally:
        c.close()
    eq((n[0], h.hexdigest()), (size, harness.stub_upstream.download_sha256(mark, size)),
       "body read after the relay finished (length, sha256)")


@test()
def test_sse_event_by_event(front, port):
    """An SSE answer whose second event waits for a release: the first
    event reaches the client while the upstream holds the stream open,
    then the rest; the body byte for byte."""
    _, token, _ = account()
    mark = harness.rand_name("sse")
    ev = "ev-" + mark
    events = ["event: progress\ndata: {\"step\":1}\n\n", "event: done\ndata: {\"step\":2}\n\n"]
    H.stub.script({"path": mark, "mode": "sse", "event": ev, "timeout": 30, "events": events})
    c = Conn(port, timeout=15)
    released = False
    try:
        c.send_request("POST", "/kling/v1/stream/" + mark, auth(token) + [("Accept", "text/event-stream")], b"{}")
        c.read_head("POST")
        eq(c.status, 200, "SSE status")
        got = b""
        try:
            while events[0].encode() not in got:
                piece = c.read_some()
                if not piece:
                    raise Fail("SSE body ended before event 1: %r" % got)
                got += piece
        except OSError as e:
            raise Fail("event 1 did not reach the client within 15 s while the upstream held the stream open "
                       "(answer buffered by the front?): %r, got %r" % (e, got))
        check(events[1].encode() not in got, "event 2 arrived before the release")
        H.stub.release(ev)
        released = True
        got += c.read_body()
        eq(got, "".join(events).encode(), "SSE body")
    finally:
        if not released:
            H.stub.release(ev)
        c.close()



# ---------------------------------------------------------------------------
# tests: requests in flight (SPEC 4.8)

QUOTA_CODES = {(403, "insufficient_quota"), (401, "token_quota_exhausted")}


def _hold_many(port, token, n, paid, what):
    """n requests at once on a token with quota for `paid` of them, the
    upstream holding every answer until all were sent: exactly `paid` are
    forwarded and held in flight together, the rest refused for quota;
    then every held one is answered 200."""
    mark = harness.rand_name("hold")
    ev = "ev-" + mark
    H.stub.script({"path": mark, "mode": "hang", "hang": 90, "event": ev, "status": 200,
                   "body": '{"ok":true}', "headers": [["Content-Type", "application/json"]]})
    results = [None] * n

    def one(i):
        try:
            r = request(port, "POST", "/kling/v1/%s/%d" % (mark, i), auth(token), b"{}", timeout=120)
            code = None
            if r.status != 200:
                try:
                    code = json.loads(r.body)["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = r.body[:100]
            results[i] = (r.status, code)
        except Exception as e:  # noqa: BLE001
            results[i] = ("exception", repr(e))
    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    released = False
    try:
        for t in ts:
            t.start()
        # readiness: the paid ones wait at the upstream, the others are answered
        check(H.stub.wait(mark, count=paid, timeout=90), "%s: %d requests never all reached the upstream"
              % (what, paid))
        wait_for(lambda: sum(1 for x in results if x is not None) >= n - paid, 90,
                 "%s: the %d refusals" % (what, n - paid))
        eq(len(H.stub.matching(mark)), paid, what + ": requests held at the upstream at once")
        H.stub.release(ev)
        released = True
        for t in ts:
            t.join(120)
    finally:
        if not released:
            H.stub.release(ev)
    got = {}
    for x in results:
        got[x] = got.get(x, 0) + 1
    ok = got.pop((200, None), 0)
    refused = sum(v for k, v in got.items() if k in QUOTA_CODES)
    other = {k: v for k, v in got.items() if k not in QUOTA_CODES}
    eq(other, {}, what + ": answers other than 200 and the quota refusal")
    eq((ok, refused), (paid, n - paid), what + ": answered 200, refused for quota")


def _expect_paid(user, token, paid, q, what):
    def settled():
        return len(H.logs(token)) >= paid
    wait_for(settled, 30, what + ": logs rows")
    t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
    wait_for(lambda: H.sql("SELECT remain_quota FROM tokens WHERE id=%s", (token["id"],))[0]["remain_quota"] == 0,
             30, what + ": remain_quota 0")
    t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
    eq((t["remain_quota"], t["used_quota"]), (0, paid * q), what + ": token remain_quota, used_quota")
    eq(len(H.logs(token)), paid, what + ": logs rows")
    u = H.sql("SELECT used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
    eq((u["used_quota"], u["request_count"]), (paid * q, paid), what + ": user used_quota, request_count")


@S.test(fronts=False)
def test_thousand_in_flight_strict():
    """1,000 requests at once through the shipped lighttpd sample, strict
    metering, on a token with quota for 100: 100 held in flight at once
    and answered 200, 900 refused for quota, remain 0, 100 logs rows."""
    user, token, chan = H.setup_account(remain_quota=100 * 1000)
    _hold_many(H.fronts["lighttpd"], token, 1000, 100, "strict")
    _expect_paid(user, token, 100, 1000, "strict")


@S.test(fronts=False)
def test_thousand_in_flight_lease():
    """The same with METERING=lease (a pool of its own, 4 workers)."""
    pool = H.start_pool("inflight-lease", workers=4, METERING="lease")
    try:
        user, token, chan = H.setup_account(remain_quota=100 * 1000)
        _hold_many(pool.port, token, 1000, 100, "lease")
        _expect_paid(user, token, 100, 1000, "lease")
    finally:
        pool.stop()


@test()
def test_slow_clients_hold_nothing(front, port):
    """400 clients that send their bodies a byte a second (half with a
    good token, half with an unknown one) and 64 that never read a 4 MiB
    answer: 20 ordinary requests in a row are each answered within 1 s."""
    _, token, _ = account()
    mark = harness.rand_name("slow")
    H.stub.script({"path": mark + "-big", "mode": "download", "size": 4 << 20, "seed": mark})
    socks, stop = [], threading.Event()
    try:
        for i in range(400):
            key = token["key"] if i % 2 == 0 else harness.rand_key(48)
            s_ = socket.create_connection(("127.0.0.1", port), timeout=10)
            s_.sendall(("POST /kling/v1/%s-up/%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-%s\r\n"
                        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" % (mark, i, key)).encode())
            socks.append(s_)
        readers = []
        for i in range(64):
            s_ = socket.create_connection(("127.0.0.1", port), timeout=10)
            s_.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s_.sendall(("GET /kling/v1/files/%s-big/%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-%s\r\n\r\n"
                        % (mark, i, token["key"])).encode())
            readers.append(s_)

        def trickle():
            while not stop.wait(1.0):
                for s_ in socks:
                    try:
                        s_.send(b" ")
                    except OSError:
                        pass
        th = threading.Thread(target=trickle, daemon=True)
        th.start()
        # the 64 downloads are under way at the upstream first
        check(H.stub.wait(mark + "-big", count=64, timeout=30), "the 64 downloads never reached the upstream")
        for i in range(20):
            t0 = time.time()
            r = request(port, "POST", "/kling/v1/%s-ok/%d" % (mark, i), auth(token), b"{}", timeout=10)
            took = time.time() - t0
            expect_ok(r, "ordinary request %d" % i)
            check(took < 1.0, "ordinary request %d took %.2f s beside the slow clients" % (i, took))
    finally:
        stop.set()
        for s_ in socks + locals().get("readers", []):
            try:
                s_.close()
            except OSError:
                pass

# ---------------------------------------------------------------------------
# the samples, rendered for a private directory


def render_sample(name, out, subs):
    """ROOT/name with each (old, new) of subs replaced; every old must occur
    exactly once, so a changed sample fails the setup instead of running
    with a line left as shipped."""
    with open(os.path.join(ROOT, name)) as f:
        text = f.read()
    for old, new in subs:
        n = text.count(old)
        if n != 1:
            raise SetupError("%s: %r occurs %d times, want 1" % (name, old, n))
        text = text.replace(old, new)
    path = os.path.join(H.dir, out)
    with open(path, "w") as f:
        f.write(text)
    return path


def start_samples():
    d = H.dir
    cgi = os.path.abspath(os.path.join(BUILD, "bltcy-admin.cgi"))
    if not os.access(cgi, os.X_OK):
        raise SetupError("%s is missing: run make first" % cgi)
    os.makedirs(os.path.join(d, "sample-nginx-tmp"))

    lport = harness.free_port()
    conf = render_sample("lighttpd.conf.sample", "sample-lighttpd.conf", [
        ('\nserver.port          = 3000\n', '\nserver.port          = %d\nserver.bind = "127.0.0.1"\n' % lport),
        ('\nserver.username      = "www-data"\n', '\n'),
        ('\nserver.groupname     = "www-data"\n', '\n'),
        ('"/var/www/html"', '"%s/www"' % d),
        ('"/run/bltcy-lighttpd.pid"', '"%s/sample-lighttpd.pid"' % d),
        ('"/var/log/lighttpd/bltcy-relay.error.log"', '"%s/sample-lighttpd-error.log"' % d),
        ('"/var/log/lighttpd/bltcy-relay.access.log"', '"%s/sample-lighttpd-access.log"' % d),
        ('( "/var/tmp" )', '( "%s/tmp" )' % d),
        ('"/run/bltcy-relay/relay.sock"', '"%s"' % H.relay_sock),
        ('"/usr/local/lib/bltcy-relay/bltcy-admin.cgi"', '"%s"' % cgi),
        # mod_cgi passes the CGI no environment of its own
        ('    "mod_cgi",\n', '    "mod_cgi",\n    "mod_setenv",\n'),
        ('    cgi.execute-x-only = "enable"\n',
         '    cgi.execute-x-only = "enable"\n    setenv.set-environment = ( "BLTCY_CONFIG" => "%s" )\n'
         % H.config_path),
    ])
    p = H.spawn("sample-lighttpd", ["lighttpd", "-tt", "-f", conf])
    if p.wait(20) != 0:
        raise SetupError("lighttpd -tt rejects the rendered sample: %s" % H.log_tail("sample-lighttpd.out"))
    H.procs.pop("sample-lighttpd")
    H.spawn("sample-lighttpd", ["lighttpd", "-D", "-f", conf])
    H.wait_port("sample-lighttpd", lport)

    fsock = os.path.join(d, "fcgiwrap.sock")
    H.spawn("fcgiwrap", ["fcgiwrap", "-c", "2", "-s", "unix:" + fsock])
    wait_for(lambda: os.path.exists(fsock), 10, "fcgiwrap socket")
    nport = harness.free_port()
    conf = render_sample("nginx.conf.sample", "sample-nginx.conf", [
        ("\nuser www-data;\n", "\nuser root;\n"),
        ("\nworker_processes auto;\n", "\nworker_processes 1;\n"),
        ("/run/bltcy-relay/nginx.pid;", "%s/sample-nginx.pid;" % d),
        ("/var/log/nginx/bltcy-relay.error.log warn;", "%s/sample-nginx-error.log info;" % d),
        ("/var/log/nginx/bltcy-relay.access.log;", "%s/sample-nginx-access.log;" % d),
        ("\nhttp {\n", "\nhttp {\n" + "".join("    %s_temp_path %s/sample-nginx-tmp/%s;\n" % (k, d, k)
                                               for k in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"))),
        ("listen 3000 backlog=4096;", "listen 127.0.0.1:%d backlog=4096;" % nport),
        ("unix:/run/bltcy-relay/fcgiwrap.sock;", "unix:%s;" % fsock),
        ("/usr/local/lib/bltcy-relay/bltcy-admin.cgi;", "%s;\n            fastcgi_param BLTCY_CONFIG %s;"
         % (cgi, H.config_path)),
    ])
    with open(conf) as f:
        text = f.read().replace("unix:/run/bltcy-relay/relay.sock;", "unix:%s;" % H.relay_sock)
    with open(conf, "w") as f:
        f.write(text)
    H.spawn("sample-nginx", ["nginx", "-p", d, "-c", conf, "-g", "daemon off;"])
    H.wait_port("sample-nginx", nport)

    H.fronts = {"lighttpd": lport, "nginx": nport,
                "lighttpd-it": H.lighttpd_port, "nginx-it": H.nginx_port}

    def healthy():
        return all(request(p, "GET", "/bltcy/health", timeout=5).status == 200 for p in H.fronts.values())
    wait_for(healthy, 30, "GET /bltcy/health = 200 through the samples", interval=0.2)


def start(keep):
    global H
    # a thousand clients at once: descriptors for them, here and in the fronts
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    def setup(h):
        global H
        H = h       # start_samples is the suite's, on its H
        start_samples()
    H = harness.start_suite(keep, workers=4, setup=setup)
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
