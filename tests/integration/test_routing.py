#!/usr/bin/python3
"""Integration tests of channel routing (SPEC 4.3): failover past a dead
channel and the circuit breaker, task affinity and ownership, round-robin
of a channel's keys, weighted random within a priority, automatic disabling
on an upstream 401 (AutomaticDisableChannelEnabled on), and admin
channel pinning.

The real pool under spawn-fcgi behind lighttpd and nginx, a private
MariaDB, three stub upstreams (stubA from the harness, stubB and stubC
started here, each with its own task set) and a port where nothing
listens. The pool runs with BREAKER_THRESHOLD=3, a long BREAKER_COOLDOWN
and LOG_LEVEL=debug.

Prints one line per test (`ok - name` / `not ok - name: reason`) and ends
with `routing: N passed, M failed`. Exit status 0 only if M == 0.

Usage: test_routing.py [-k SUBSTRING]... [--keep]
  -k      run only the tests whose name contains SUBSTRING
  --keep  keep the temporary directory (logs, configs) after the run
"""

import sys
sys.dont_write_bytecode = True
import hashlib
import json
import os
import re
import socket
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
from harness import SetupError, StubClient, rec_body, rec_header, request, wait_for  # noqa: E402

H = None
STUB = {}           # stub name -> StubClient
STUB_URL = {}       # stub name -> base URL
DEAD_URL = None     # a port where nothing listens
BOTH = ("lighttpd", "nginx")
BREAKER_THRESHOLD = 3
CONFIG = {
    "BREAKER_THRESHOLD": str(BREAKER_THRESHOLD),
    "BREAKER_COOLDOWN": "3600",
    "LOG_LEVEL": "debug",
}


def reset_stubs():
    """The rules of one test never leak into the next."""
    for s in STUB.values():
        s.script(replace=True)


S = runner.Suite("routing", timeout=120, after_each=reset_stubs,
                 watch=("relay", "lighttpd", "nginx", "stub", "stubB", "stubC"))
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, gw_error_body, expect_gw_error = runner.short, runner.gw_error_body, runner.expect_gw_error
transport_error_body, expect_ok = runner.transport_error_body, runner.expect_ok


def test(fronts=("lighttpd",)):
    """Register a test that runs once per front server named in fronts and
    gets (front, port)."""
    return S.test(fronts)


# ---------------------------------------------------------------------------
# assertions


def echo_of(r, what):
    """The stub's echo body of a relayed 200."""
    expect_ok(r, what)
    try:
        return r.json()
    except ValueError:
        raise Fail("%s: answer is not the stub's JSON echo: %s" % (what, short(r)))


# ---------------------------------------------------------------------------
# helpers


def uniq(prefix="r"):
    return harness.rand_name(prefix)


def auth(token, pin=None):
    k = "sk-" + token["key"]
    if pin is not None:
        k += "-%d" % pin
    return [("Authorization", "Bearer " + k)]


def channel(group, stub=None, base_url=None, auto_ban=None, **kw):
    """A type-55 channel on stub (name) or base_url; auto_ban set with SQL
    so it does not depend on the harness version."""
    url = base_url or STUB_URL[stub or "stubA"]
    ch = H.make_channel(group, base_url=url, **kw)
    if auto_ban is not None:
        H.sql("UPDATE channels SET auto_ban=%s WHERE id=%s", (auto_ban, ch["id"]))
    ch["stub"] = stub
    return ch


def state(user, token, chans=()):
    """Rows a request may touch, read in one consistent snapshot (once the
    pool has closed the charges it settled)."""
    H.wait_settled(token)
    H.sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    try:
        s = {
            "user": H.sql("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0],
            "token": H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0],
            "logs": H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s OR user_id=%s",
                          (token["id"], user["id"]))[0]["n"],
        }
        for c in chans:
            s["chan%d" % c["id"]] = H.sql("SELECT used_quota, status FROM channels WHERE id=%s", (c["id"],))[0]
    finally:
        H.sql("COMMIT")
    return s


def expect_unchanged(before, user, token, chans=(), what="", wait=0.3):
    time.sleep(wait)
    after = state(user, token, chans)
    for k in before:
        if before[k] != after[k]:
            raise Fail("%s: %s changed: %r -> %r" % (what, k, before[k], after[k]))


def expect_charged(before, user, token, chan, n, rid, method, path, what="", others=()):
    """The request rid was charged n exactly once on chan, with its one
    logs row naming chan; the channels in others got nothing."""
    deadline = time.time() + 5
    while True:
        after = state(user, token, [chan] + list(others))
        if after["logs"] >= before["logs"] + 1 or time.time() > deadline:
            break
        time.sleep(0.05)
    b, a = before, after
    eq(a["token"]["remain_quota"], b["token"]["remain_quota"] - n, what + " token remain_quota")
    eq(a["token"]["used_quota"], b["token"]["used_quota"] + n, what + " token used_quota")
    eq(a["user"]["quota"], b["user"]["quota"] - n, what + " user quota")
    eq(a["user"]["used_quota"], b["user"]["used_quota"] + n, what + " user used_quota")
    eq(a["user"]["request_count"], b["user"]["request_count"] + 1, what + " user request_count")
    ck = "chan%d" % chan["id"]
    eq(a[ck]["used_quota"], b[ck]["used_quota"] + n, what + " used_quota of channel %d" % chan["id"])
    for o in others:
        ok = "chan%d" % o["id"]
        eq(a[ok]["used_quota"], b[ok]["used_quota"], what + " used_quota of channel %d" % o["id"])
    eq(a["logs"], b["logs"] + 1, what + " logs rows")
    rows = H.sql("SELECT * FROM logs WHERE token_id=%s AND other LIKE %s", (token["id"], '%"' + rid + '"%'))
    eq(len(rows), 1, what + " logs rows with request id " + rid)
    row = rows[0]
    want = {"user_id": user["id"], "type": 2, "model_name": path.split("/")[1] + "_passthrough", "quota": n,
            "content": "Bltcy透传模式（%s %s），消费配额: %d" % (method, path.split("?")[0], n),
            "channel_id": chan["id"], "token_id": token["id"]}
    eq({k: row[k] for k in want}, want, what + " logs row")
    return row


def stub_count():
    return {name: len(s.requests()) for name, s in STUB.items()}


def stub_new(since):
    """Requests each stub received after the stub_count() snapshot since."""
    return {name: s.requests(since[name]) for name, s in STUB.items()}


METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


def metrics(port):
    r = request(port, "GET", "/bltcy/metrics")
    eq(r.status, 200, "GET /bltcy/metrics status")
    out = {}
    for line in r.body.decode().splitlines():
        m = METRIC_RE.match(line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


SKIPS = "bltcy_breaker_skips_total"
REFUSED = 'bltcy_upstream_errors_total{kind="refused"}'


def relay_log(path=None):
    try:
        with open(path or H.log_file, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def req_log(rid, timeout=5, path=None):
    """The relay's log lines of request rid, once its closing line is there."""
    rx = re.compile(r"req=%s\b" % re.escape(rid))
    deadline = time.time() + timeout
    while True:
        lines = [ln for ln in relay_log(path) if rx.search(ln)]
        if any(" status=" in ln for ln in lines) or time.time() > deadline:
            return lines


def has_line(lines, *parts):
    return any(all(p in ln for p in parts) for ln in lines)


# ---------------------------------------------------------------------------
# tests: failover and circuit breaker


@test(fronts=BOTH)
def test_failover_dead_channel_breaker(front, port):
    """Dead channel (refused) at priority 10, live stubA at 0. Every request
    is answered by the live one and charged once on it. The first
    BREAKER_THRESHOLD requests try the dead one first (refused counter
    +1 each, a WARN line); after that the breaker skips it (skips +1 per
    request, refused counter flat, no line naming it)."""
    user = H.make_user()
    token = H.make_token(user)
    dead = channel(user["group"], base_url=DEAD_URL, priority=10)
    live = channel(user["group"], "stubA", priority=0)
    m0 = metrics(port)
    n = BREAKER_THRESHOLD + 5
    for i in range(n):
        what = "request %d" % (i + 1)
        mark = uniq("fo")
        path = "/kling/v1/videos/" + mark
        before = state(user, token, [live, dead])
        seen0 = stub_count()
        r = request(port, "POST", path, auth(token), b'{"prompt":"x"}')
        echo = echo_of(r, what)
        rid = r.header("X-Request-Id")
        eq(echo.get("stub"), "stubA", what + " answered by")
        recs = stub_new(seen0)
        eq([x["path"] for x in recs["stubA"]], [path], what + " requests seen by stubA")
        eq(rec_header(recs["stubA"][0], "Authorization"), ["Bearer " + live["key"]],
           what + " Authorization upstream")
        expect_charged(before, user, token, live, 1000, rid, "POST", path, what, others=[dead])
        m = metrics(port)
        lines = req_log(rid)
        tried_dead = has_line(lines, "DEBUG Bltcy req=%s POST %s -> channel %d " % (rid, path, dead["id"]))
        warned = has_line(lines, "WARN", "req=%s channel %d failed (connection refused); trying channel %d"
                          % (rid, dead["id"], live["id"]))
        check(has_line(lines, "DEBUG Bltcy req=%s POST %s -> channel %d " % (rid, path, live["id"])),
              "%s: no debug line '-> channel %d' in the relay log: %r" % (what, live["id"], lines))
        check(has_line(lines, "req=%s POST %s " % (rid, path), "channel=%d status=200" % live["id"]),
              "%s: closing log line does not name channel %d / status 200: %r" % (what, live["id"], lines))
        if i < BREAKER_THRESHOLD:
            eq(m[REFUSED] - m0[REFUSED], i + 1, what + " refused upstream errors since the start")
            eq(m[SKIPS] - m0[SKIPS], 0, what + " breaker skips since the start")
            check(tried_dead and warned, "%s: dead channel %d not tried first (log: %r)" % (what, dead["id"], lines))
        else:
            eq(m[REFUSED] - m0[REFUSED], BREAKER_THRESHOLD, what + " refused upstream errors since the start "
               "(breaker open after %d)" % BREAKER_THRESHOLD)
            eq(m[SKIPS] - m0[SKIPS], i + 1 - BREAKER_THRESHOLD, what + " breaker skips since the start")
            check(not tried_dead and not warned, "%s: dead channel %d still tried with its breaker open: %r"
                  % (what, dead["id"], lines))
    row = H.sql("SELECT status, used_quota FROM channels WHERE id=%s", (dead["id"],))[0]
    eq((row["status"], row["used_quota"]), (1, 0), "dead channel (status, used_quota): refused is no auto-ban")
    eq(H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s AND channel_id=%s", (token["id"], live["id"]))[0]["n"],
       n, "logs rows on the live channel")


@test()
def test_failover_at_most_three_channels(front, port):
    """Two dead channels above a live one: answered by the live one. Three
    dead channels above a live one: 502 connection refused after trying
    the three, never the live one (at most 3 channels), nothing charged."""
    user = H.make_user()
    token = H.make_token(user)
    d1 = channel(user["group"], base_url=DEAD_URL, priority=30)
    d2 = channel(user["group"], base_url=DEAD_URL, priority=20)
    live = channel(user["group"], "stubA", priority=0)
    path = "/kling/v1/" + uniq("fo")
    before = state(user, token, [live, d1, d2])
    r = request(port, "POST", path, auth(token), b"{}")
    eq(echo_of(r, "2 dead + live").get("stub"), "stubA", "2 dead + live: answered by")
    rid = r.header("X-Request-Id")
    expect_charged(before, user, token, live, 1000, rid, "POST", path, "2 dead + live", others=[d1, d2])
    lines = req_log(rid)
    for a, b in ((d1, d2), (d2, live)):
        check(has_line(lines, "req=%s channel %d failed (connection refused); trying channel %d" % (rid, a["id"], b["id"])),
              "2 dead + live: no 'channel %d failed ... trying channel %d' line: %r" % (a["id"], b["id"], lines))

    user2 = H.make_user()
    token2 = H.make_token(user2)
    ds = [channel(user2["group"], base_url=DEAD_URL, priority=p) for p in (30, 20, 10)]
    live2 = channel(user2["group"], "stubA", priority=0)
    seen0 = stub_count()
    before = state(user2, token2, [live2] + ds)
    path = "/kling/v1/" + uniq("fo")
    r = request(port, "POST", path, auth(token2), b"{}")
    eq((r.status, r.body), (502, transport_error_body("connection refused")), "3 dead + live: answer")
    check(r.header("X-Request-Id"), "3 dead + live: no X-Request-Id")
    eq(stub_new(seen0)["stubA"], [], "3 dead + live: requests seen by the stub (4th channel tried)")
    expect_unchanged(before, user2, token2, [live2] + ds, "3 dead + live")
    lines = req_log(r.header("X-Request-Id"))
    tried = [int(x) for x in re.findall(r"-> channel (\d+) ", "\n".join(lines))]
    eq(tried, [c["id"] for c in ds], "3 dead + live: channels tried, in order")


@test()
def test_failover_price_and_concurrency(front, port):
    """The dead channel costs 5000, the live one 2000: the request is
    charged 2000 on the live one. Then 24 concurrent requests on a fresh
    dead+live pair: all 200, each charged once on the live channel."""
    user = H.make_user()
    token = H.make_token(user)
    dead = channel(user["group"], base_url=DEAD_URL, priority=10, setting={"passthrough_quota": 5000})
    live = channel(user["group"], "stubA", priority=0, setting={"passthrough_quota": 2000})
    path = "/kling/v1/" + uniq("fo")
    before = state(user, token, [live, dead])
    r = request(port, "POST", path, auth(token), b"{}")
    eq(echo_of(r, "priced failover").get("stub"), "stubA", "priced failover: answered by")
    expect_charged(before, user, token, live, 2000, r.header("X-Request-Id"), "POST", path, "priced failover",
                   others=[dead])

    user = H.make_user()
    token = H.make_token(user)
    dead = channel(user["group"], base_url=DEAD_URL, priority=10)
    live = channel(user["group"], "stubA", priority=0)
    before = state(user, token, [live, dead])
    m0 = metrics(port)
    answers = []

    def one(i):
        try:
            answers.append(request(port, "POST", "/kling/v1/%s/%d" % (uniq("fc"), i), auth(token), b"{}").status)
        except Exception as e:  # noqa: BLE001
            answers.append(repr(e))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    eq(sorted(answers, key=str), [200] * 24, "answers to 24 concurrent requests")
    deadline = time.time() + 5
    while time.time() < deadline:
        after = state(user, token, [live, dead])
        if after["logs"] == before["logs"] + 24:
            break
        time.sleep(0.1)
    k, kd = "chan%d" % live["id"], "chan%d" % dead["id"]
    eq((after["logs"] - before["logs"], before["user"]["quota"] - after["user"]["quota"],
        after["user"]["request_count"] - before["user"]["request_count"],
        before["token"]["remain_quota"] - after["token"]["remain_quota"],
        after[k]["used_quota"] - before[k]["used_quota"], after[kd]["used_quota"]),
       (24, 24000, 24, 24000, 24000, 0),
       "(logs rows, user quota spent, request_count, token quota spent, live used, dead used)")
    eq(H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s AND channel_id<>%s", (token["id"], live["id"]))[0]["n"],
       0, "logs rows not on the live channel")
    refused = metrics(port)[REFUSED] - m0[REFUSED]
    check(BREAKER_THRESHOLD <= refused <= 24, "refused errors %r: want %d..24" % (refused, BREAKER_THRESHOLD))


@test()
def test_failover_large_body(front, port):
    """A refused connection sends no byte, so even a body too large to hold
    (300 KiB, streamed) goes on to the next channel, byte for byte."""
    user = H.make_user()
    token = H.make_token(user)
    dead = channel(user["group"], base_url=DEAD_URL, priority=10)
    live = channel(user["group"], "stubA", priority=0)
    body = os.urandom(300 * 1024)
    path = "/kling/v1/" + uniq("fo")
    before = state(user, token, [live, dead])
    seen0 = stub_count()
    r = request(port, "POST", path, auth(token) + [("Content-Type", "application/octet-stream")], body)
    echo = echo_of(r, "large body past a dead channel")
    eq((echo.get("stub"), echo.get("body_len"), echo.get("body_sha256")),
       ("stubA", len(body), hashlib.sha256(body).hexdigest()), "large body past a dead channel: (stub, length, sha256)")
    eq(len(stub_new(seen0)["stubA"]), 1, "requests at stubA")
    expect_charged(before, user, token, live, 1000, r.header("X-Request-Id"), "POST", path, "large body failover",
                   others=[dead])


@test()
def test_retry_on_upstream_5xx(front, port):
    """stubC answers 503 on the higher channel: a GET goes on to the next
    channel (SPEC: GET may be retried on 502/503/504); a POST is never
    sent twice: its 503 is relayed and not charged."""
    user = H.make_user()
    token = H.make_token(user)
    mark = uniq("rt")
    STUB["stubC"].script({"path": mark, "status": 503, "body": '{"error":"busy"}'})
    bad = channel(user["group"], "stubC", priority=10)
    good = channel(user["group"], "stubA", priority=0)
    seen0 = stub_count()
    r = request(port, "GET", "/kling/v1/%s/get" % mark, auth(token))
    eq(echo_of(r, "GET after a 503").get("stub"), "stubA", "GET after a 503: answered by")
    new = stub_new(seen0)
    eq((len(new["stubC"]), len(new["stubA"])), (1, 1), "GET after a 503: requests at (stubC, stubA)")
    before = state(user, token, [bad, good])
    seen0 = stub_count()
    r = request(port, "POST", "/kling/v1/%s/post" % mark, auth(token), b"{}")
    eq((r.status, r.body), (503, b'{"error":"busy"}'), "POST answered 503 upstream")
    new = stub_new(seen0)
    eq((len(new["stubC"]), len(new["stubA"])), (1, 0), "POST answered 503: requests at (stubC, stubA)")
    expect_unchanged(before, user, token, [bad, good], "POST answered 503")


@test()
def test_auto_ban_single_channel(front, port):
    """The only channel answers 401: the client gets that 401 as it came,
    nothing is charged, the channel is banned; the next request finds no
    channel (503 model_not_found)."""
    user = H.make_user()
    token = H.make_token(user)
    mark = uniq("ab")
    STUB["stubC"].script({"path": mark, "status": 401, "body": UNAUTH,
                          "headers": [["Content-Type", "application/json"], ["X-Why", "bad-key"]]})
    x = channel(user["group"], "stubC", priority=0, auto_ban=1)
    before = state(user, token)
    r = request(port, "POST", "/kling/v1/%s/1" % mark, auth(token), b"{}")
    eq((r.status, r.body, r.header("X-Why")), (401, UNAUTH.encode(), "bad-key"), "401 of the only channel")
    expect_unchanged(before, user, token, [], "401 of the only channel")
    expect_banned(x, "only channel 401")
    r = request(port, "POST", "/kling/v1/%s/2" % mark, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                    "after the only channel was banned")


_pool = {}


def breaker_pool():
    if "p" not in _pool:
        try:
            _pool["p"] = H.start_pool("brkpool", workers=2, BREAKER_THRESHOLD=BREAKER_THRESHOLD,
                                      BREAKER_COOLDOWN=1, RELAY_CONNECT_TIMEOUT=1,
                                      LOG_LEVEL="debug")
        except SetupError as e:
            raise Fail("pool with BREAKER_COOLDOWN=1 did not start: %s" % e)
    return _pool["p"]


@test()
def test_breaker_after_cooldown(front, port):
    """Pool with BREAKER_COOLDOWN=1 and RELAY_CONNECT_TIMEOUT=1 (own
    lighttpd front). Dead channel D
    (priority 10) over live stubA. After the breaker opened and the
    cool-down passed: a request still succeeds (D probed, refused, next
    channel), and once something listens on D's port again, D gets the
    traffic back."""
    p = breaker_pool()
    dport = harness.free_port()
    user = H.make_user()
    token = H.make_token(user)
    d = channel(user["group"], base_url="http://127.0.0.1:%d" % dport, priority=10)
    channel(user["group"], "stubA", priority=0)
    m0 = metrics(p.port)
    for i in range(BREAKER_THRESHOLD + 2):
        r = request(p.port, "POST", "/kling/v1/" + uniq("cd"), auth(token), b"{}")
        eq(echo_of(r, "request %d" % i).get("stub"), "stubA", "request %d: answered by" % i)
    m1 = metrics(p.port)
    eq((m1[REFUSED] - m0[REFUSED], m1[SKIPS] - m0[SKIPS]), (BREAKER_THRESHOLD, 2),
       "(refused, breaker skips) while the breaker is open")
    problems = []
    time.sleep(1.5)
    answers = []
    for i in range(3):
        r = request(p.port, "POST", "/kling/v1/" + uniq("cd"), auth(token), b"{}")
        answers.append(r.json().get("stub") if r.status == 200 else short(r))
    if answers != ["stubA"] * 3:
        problems.append("D still dead, cool-down over: answers %r, want 200 from stubA for all 3" % answers)
    m2 = metrics(p.port)
    if m2[REFUSED] - m1[REFUSED] != 1:
        problems.append("D still dead, cool-down over: %d refused errors, want 1 (one probe of D)"
                        % (m2[REFUSED] - m1[REFUSED]))
    # D comes back
    pf = os.path.join(H.dir, "stubD.port")
    H.spawn("stubD", [harness.PY, os.path.join(harness.TESTS, "stub_upstream.py"), "--port", str(dport),
                      "--port-file", pf, "--name", "stubD"])
    try:
        wait_for(lambda: open(pf).read().strip(), 20, "stubD port file")
        time.sleep(1.5)
        answers = []
        for i in range(4):
            r = request(p.port, "POST", "/kling/v1/" + uniq("cd"), auth(token), b"{}")
            answers.append(r.json().get("stub") if r.status == 200 else short(r))
        if answers != ["stubD"] * 4:
            problems.append("D listens again, cool-down over: answers %r, want stubD for all 4" % answers)
        eq(H.sql("SELECT status FROM channels WHERE id=%s", (d["id"],))[0]["status"], 1, "D status")
        check(not problems, "; ".join(problems))
    finally:
        H.kill("stubD", wait=5)


# ---------------------------------------------------------------------------
# tests: task affinity and ownership


TASK_RE = re.compile(r"^(stub[ABC])-[0-9a-f]{16}$")


@test(fronts=BOTH)
def test_task_affinity(front, port):
    """Two live channels (stubA, stubB) at one priority. 20 tasks created
    with POST land on both; each poll (path segment, ?task_id=, ?id=,
    ?ids=, a small JSON body's task_id) reaches the stub that created the
    task. bltcy_tasks holds (service, task_id, channel_id, user_id,
    token_id) for each."""
    user = H.make_user()
    token = H.make_token(user)
    ca = channel(user["group"], "stubA", priority=0)
    cb = channel(user["group"], "stubB", priority=0)
    by_stub = {"stubA": ca, "stubB": cb}
    mark = uniq("tk")
    base = "/kling/v1/videos/" + mark
    for s in ("stubA", "stubB"):
        STUB[s].script({"method": "POST", "path": "^%s$" % re.escape(base), "mode": "task_create"},
                       {"method": "GET", "path": re.escape(base), "mode": "task_get"})
    tasks = {}      # task id -> stub name
    for i in range(20):
        before = state(user, token, [ca, cb])
        r = request(port, "POST", base, auth(token) + [("Content-Type", "application/json")],
                    b'{"prompt":"cat %d"}' % i)
        expect_ok(r, "create %d" % i)
        tid = r.json().get("task_id", "")
        m = TASK_RE.match(tid)
        check(m, "create %d: task id %r not from a stub" % (i, tid))
        tasks[tid] = m.group(1)
        expect_charged(before, user, token, by_stub[m.group(1)], 1000, r.header("X-Request-Id"), "POST", base,
                       "create %d" % i, others=[by_stub["stubB" if m.group(1) == "stubA" else "stubA"]])
    for s in ("stubA", "stubB"):
        check(s in tasks.values(), "20 creates at equal weight never reached %s: %r" % (s, tasks))
    # the rows recorded for them
    rows = H.sql("SELECT service, task_id, channel_id, user_id, token_id FROM bltcy_tasks WHERE task_id IN (%s)"
                 % ",".join(["%s"] * len(tasks)), tuple(tasks))
    got = sorted((r["service"], r["task_id"], r["channel_id"], r["user_id"], r["token_id"]) for r in rows)
    want = sorted(("kling", t, by_stub[s]["id"], user["id"], token["id"]) for t, s in tasks.items())
    eq(got, want, "bltcy_tasks rows")

    # polls: GET is free, so nothing changes in the DB
    before = state(user, token, [ca, cb])
    polls = 0
    for tid, s in tasks.items():
        for target in ("%s/%s" % (base, tid), "%s?task_id=%s" % (base, tid), "%s?id=%s" % (base, tid),
                       "%s?ids=%s" % (base, tid)):
            seen0 = stub_count()
            r = request(port, "GET", target, auth(token))
            polls += 1
            if r.status != 200:
                raise Fail("poll %s (created by %s): want 200, got %s" % (target, s, short(r)))
            eq(r.json(), {"task_id": tid, "status": "succeed", "stub": s}, "poll %s answer" % target)
            new = stub_new(seen0)
            eq(len(new[s]), 1, "poll %s: requests at %s" % (target, s))
            eq(sum(len(v) for v in new.values()), 1, "poll %s: requests at all stubs" % target)
            eq(rec_header(new[s][0], "Authorization"), ["Bearer " + by_stub[s]["key"]],
               "poll %s: Authorization upstream" % target)
    expect_unchanged(before, user, token, [ca, cb], "after %d free polls" % polls, wait=0.2)
    # one debug line says why
    lines = req_log(r.header("X-Request-Id"))
    check(has_line(lines, "task affinity -> channel %d" % by_stub[s]["id"]),
          "no 'task affinity -> channel %d' debug line: %r" % (by_stub[s]["id"], lines))

    # a small JSON body's task_id (echoed: the body names the stub)
    for tid, s in list(tasks.items())[:6]:
        path = "/kling/v1/query-" + mark
        before = state(user, token, [ca, cb])
        r = request(port, "POST", path, auth(token) + [("Content-Type", "application/json")],
                    json.dumps({"task_id": tid}).encode())
        eq(echo_of(r, "body task_id %s" % tid).get("stub"), s, "POST body task_id %s answered by" % tid)
        expect_charged(before, user, token, by_stub[s], 1000, r.header("X-Request-Id"), "POST", path,
                       "POST body task_id %s" % tid)


@test(fronts=BOTH)
def test_task_of_another_user(front, port):
    """Another user's token (same group, so it would otherwise route to the
    same stubs) naming a task id in any form gets 404 task_not_exist and
    nothing is forwarded or charged."""
    owner = H.make_user()
    otoken = H.make_token(owner)
    ca = channel(owner["group"], "stubA", priority=0)
    cb = channel(owner["group"], "stubB", priority=0)
    mark = uniq("tk")
    base = "/kling/v1/videos/" + mark
    for s in ("stubA", "stubB"):
        STUB[s].script({"method": "POST", "path": "^%s$" % re.escape(base), "mode": "task_create"},
                       {"method": "GET", "path": re.escape(base), "mode": "task_get"})
    tids = []
    for i in range(4):
        r = request(port, "POST", base, auth(otoken), b'{"prompt":"dog"}')
        expect_ok(r, "create %d" % i)
        tids.append(r.json()["task_id"])
    other = H.make_user(group=owner["group"])
    token = H.make_token(other)
    for tid in tids:
        for method, target, body in (("GET", "%s/%s" % (base, tid), None),
                                     ("GET", "%s?task_id=%s" % (base, tid), None),
                                     ("GET", "/kling/v1/videos?ids=x1,%s" % tid, None),
                                     ("POST", "/kling/v1/query-" + mark, json.dumps({"task_id": tid}).encode()),
                                     ("DELETE", "%s/%s" % (base, tid), None)):
            seen0 = stub_count()
            before = state(other, token, [ca, cb])
            r = request(port, method, target, auth(token), body)
            expect_gw_error(r, 404, "task_not_exist", "任务不存在", "%s %s by another user" % (method, target))
            eq(stub_new(seen0), {k: [] for k in STUB}, "%s %s by another user: requests seen by the stubs"
               % (method, target))
            expect_unchanged(before, other, token, [ca, cb], "%s %s by another user" % (method, target), wait=0)
    # the owner still polls fine, also with another token of the same user;
    # the other user without a task id is routed normally
    for t in (otoken, H.make_token(owner)):
        r = request(port, "GET", "%s/%s" % (base, tids[0]), auth(t))
        eq((r.status, r.json().get("stub")), (200, tids[0].split("-")[0]),
           "owner's poll (token %d) after the refusals" % t["id"])
    r = request(port, "GET", "/kling/v1/other-" + mark, auth(token))
    check(echo_of(r, "other user, no task id").get("stub") in ("stubA", "stubB"), "other user routed normally")


# ---------------------------------------------------------------------------
# tests: keys, weights


@test()
def test_channel_keys_round_robin(front, port):
    """Key "k1\\nk2\\nk3": 30 sequential requests use each key exactly 10
    times, in rotation (the counter is shared by all workers and nothing
    else uses this channel)."""
    user = H.make_user()
    token = H.make_token(user)
    keys = ["k1", "k2", "k3"]
    channel(user["group"], "stubB", key="\n".join(keys))
    mark = uniq("rr")
    seen0 = stub_count()
    for i in range(30):
        expect_ok(request(port, "POST", "/kling/v1/%s/%d" % (mark, i), auth(token), b"{}"), "request %d" % i)
    recs = [x for x in stub_new(seen0)["stubB"] if mark in x["path"]]
    eq(len(recs), 30, "requests seen upstream")
    recs.sort(key=lambda x: int(x["path"].rsplit("/", 1)[1]))
    seq = []
    for x in recs:
        a = rec_header(x, "Authorization")
        check(len(a) == 1 and a[0].startswith("Bearer "), "Authorization upstream %r" % a)
        seq.append(a[0][len("Bearer "):])
    counts = {k: seq.count(k) for k in keys}
    eq(counts, {"k1": 10, "k2": 10, "k3": 10}, "requests per key over 30 (sequence %r)" % seq)
    start = keys.index(seq[0])
    eq(seq, [keys[(start + i) % 3] for i in range(30)], "key sequence is a rotation")


# chi-square, 2 degrees of freedom, p = 0.001
CHI2_CRIT = 13.816


@test()
def test_weights(front, port):
    """Weights 0, 10, 30 at one priority: picked in proportion to weight+10
    (10:20:40 = 1/7, 2/7, 4/7). 600 GETs; chi-square (2 df) below 13.816
    (p = 0.001) and each share within 7 percentage points. A uniform
    split would give chi-square ~150; plain `weight` (0:10:30) ~110."""
    user = H.make_user()
    token = H.make_token(user)
    chans = [channel(user["group"], "stubC", weight=w, key="w%d-%s" % (w, harness.rand_key(8)))
             for w in (0, 10, 30)]
    mark = uniq("wt")
    seen0 = stub_count()
    n = 600
    errors = []

    def worker(k):
        for i in range(k, n, 8):
            try:
                r = request(port, "GET", "/kling/v1/%s/%d" % (mark, i), auth(token))
                if r.status != 200:
                    errors.append(short(r))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "answers other than 200: %r" % errors[:3])
    recs = [x for x in stub_new(seen0)["stubC"] if mark in x["path"]]
    eq(len(recs), n, "requests seen upstream")
    got = []
    for c in chans:
        got.append(sum(1 for x in recs if rec_header(x, "Authorization") == ["Bearer " + c["key"]]))
    eq(sum(got), n, "requests with one of the three keys")
    expect = [n * w / 70.0 for w in (10, 20, 40)]
    chi2 = sum((g - e) ** 2 / e for g, e in zip(got, expect))
    shares = ["%.1f%%" % (100.0 * g / n) for g in got]
    print("# weights 0/10/30: counts %r of %d, shares %s, chi-square %.2f" % (got, n, shares, chi2))
    check(chi2 < CHI2_CRIT, "counts %r (shares %s) vs expected %r: chi-square %.1f >= %.3f"
          % (got, shares, [round(e, 1) for e in expect], chi2, CHI2_CRIT))
    for g, w in zip(got, (10, 20, 40)):
        check(abs(g / n - w / 70.0) <= 0.07, "counts %r (shares %s): a share is more than 7 points off"
              % (got, shares))


# ---------------------------------------------------------------------------
# tests: auto-ban on 401


UNAUTH = '{"error":{"message":"invalid api key"}}'


def ban_log_rows(chan):
    return H.sql("SELECT * FROM logs WHERE type=5 AND channel_id=%s", (chan["id"],))


def expect_banned(chan, what):
    eq(H.sql("SELECT status FROM channels WHERE id=%s", (chan["id"],))[0]["status"], 3, what + " channel status")
    rows = ban_log_rows(chan)
    eq(len(rows), 1, what + " type-5 logs rows for channel %d" % chan["id"])
    c = rows[0]["content"] or ""
    check(("#%d" % chan["id"]) in c and chan["name"] in c and "401" in c,
          "%s: type-5 logs content %r does not name channel #%d (%s) and 401" % (what, c, chan["id"], chan["name"]))
    eq(H.sql("SELECT used_quota FROM channels WHERE id=%s", (chan["id"],))[0]["used_quota"], 0,
       what + " used_quota of the banned channel")


@test(fronts=BOTH)
def test_auto_ban_401(front, port):
    """stubC answers 401 for channel X (auto_ban=1, priority 10); stubA is
    channel Y (priority 0). A small-body request is answered by Y in the
    same request and charged once on Y; X becomes status 3 with one
    type-5 logs row; later requests go straight to Y."""
    user = H.make_user()
    token = H.make_token(user)
    mark = uniq("ab")
    STUB["stubC"].script({"path": mark, "status": 401, "body": UNAUTH,
                          "headers": [["Content-Type", "application/json"]]})
    x = channel(user["group"], "stubC", priority=10, auto_ban=1)
    y = channel(user["group"], "stubA", priority=0, auto_ban=1)
    path = "/kling/v1/%s/first" % mark
    before = state(user, token, [x, y])
    seen0 = stub_count()
    r = request(port, "POST", path, auth(token), b'{"prompt":"small"}')
    echo = echo_of(r, "401 on X, small body")
    eq(echo.get("stub"), "stubA", "small body after 401: answered by")
    rid = r.header("X-Request-Id")
    new = stub_new(seen0)
    eq([(q["path"], rec_header(q, "Authorization")) for q in new["stubC"]], [(path, ["Bearer " + x["key"]])],
       "requests seen by stubC (X)")
    eq([(q["path"], rec_header(q, "Authorization"), rec_body(q)) for q in new["stubA"]],
       [(path, ["Bearer " + y["key"]], b'{"prompt":"small"}')], "requests seen by stubA (Y): the same request")
    expect_charged(before, user, token, y, 1000, rid, "POST", path, "401 then Y", others=[x])
    expect_banned(x, "after 401")
    lines = req_log(rid)
    check(has_line(lines, "req=%s channel %d key #1 answered 401: disabled" % (rid, x["id"])),
          "no auto-ban log line: %r" % lines)
    check(has_line(lines, "req=%s channel %d failed" % (rid, x["id"]), "trying channel %d" % y["id"]),
          "no failover log line: %r" % lines)
    # the following requests go straight to Y
    for i in range(5):
        p = "/kling/v1/%s/next%d" % (mark, i)
        before = state(user, token, [x, y])
        seen0 = stub_count()
        r = request(port, "POST", p, auth(token), b"{}")
        eq(echo_of(r, "after the ban %d" % i).get("stub"), "stubA", "after the ban %d: answered by" % i)
        eq(stub_new(seen0)["stubC"], [], "after the ban %d: requests seen by stubC" % i)
        expect_charged(before, user, token, y, 1000, r.header("X-Request-Id"), "POST", p, "after the ban %d" % i,
                       others=[x])
        check(not has_line(req_log(r.header("X-Request-Id")), "-> channel %d " % x["id"]),
              "after the ban %d: banned channel %d still tried" % (i, x["id"]))
    eq(len(ban_log_rows(x)), 1, "type-5 logs rows for X at the end")


@test()
def test_auto_ban_401_large_body(front, port):
    """A body over what is kept in memory (256 KiB) is spooled, so it can
    be sent again: X answers 401 and is banned, and the same request goes
    on to Y, which answers and is charged."""
    user = H.make_user()
    token = H.make_token(user)
    mark = uniq("ab")
    STUB["stubC"].script({"path": mark, "status": 401, "body": UNAUTH,
                          "headers": [["Content-Type", "application/json"]]})
    x = channel(user["group"], "stubC", priority=10, auto_ban=1)
    y = channel(user["group"], "stubA", priority=0)
    before = state(user, token, [x, y])
    seen0 = stub_count()
    p = "/kling/v1/%s/big" % mark
    r = request(port, "POST", p, auth(token), b"x" * (256 * 1024))
    eq(echo_of(r, "large body after X's 401").get("stub"), "stubA", "large body: answered by")
    got = stub_new(seen0)["stubA"]
    eq([g["body_len"] for g in got], [256 * 1024], "large body: sent whole to Y")
    expect_charged(before, user, token, y, 1000, r.header("X-Request-Id"), "POST", p, "large body at Y",
                   others=[x])
    expect_banned(x, "large body 401")
    p = "/kling/v1/%s/after" % mark
    before = state(user, token, [x, y])
    r = request(port, "POST", p, auth(token), b"{}")
    eq(echo_of(r, "after the ban").get("stub"), "stubA", "after the ban: answered by")
    expect_charged(before, user, token, y, 1000, r.header("X-Request-Id"), "POST", p, "after the ban", others=[x])


@test()
def test_no_auto_ban_when_off(front, port):
    """auto_ban=0: a 401 leaves the channel enabled, with no type-5 row."""
    user = H.make_user()
    token = H.make_token(user)
    mark = uniq("ab")
    STUB["stubC"].script({"path": mark, "status": 401, "body": UNAUTH})
    x = channel(user["group"], "stubC", priority=10, auto_ban=0)
    channel(user["group"], "stubA", priority=0)
    for i in range(3):
        r = request(port, "POST", "/kling/v1/%s/%d" % (mark, i), auth(token), b"{}")
        check(r.status in (200, 401), "request %d: %s" % (i, short(r)))
    eq(H.sql("SELECT status FROM channels WHERE id=%s", (x["id"],))[0]["status"], 1, "status of auto_ban=0 channel")
    eq(len(ban_log_rows(x)), 0, "type-5 logs rows of auto_ban=0 channel")


# ---------------------------------------------------------------------------
# tests: admin pinning


@test(fronts=BOTH)
def test_admin_pin(front, port):
    """sk-KEY-<id> by a role-10 user goes to that channel although it has
    the lowest priority, charged on it; a pinned dead channel is not
    failed over; a role-1 user gets 403 channel_pin_forbidden with
    nothing forwarded or charged."""
    admin = H.make_user(role=10)
    atoken = H.make_token(admin)
    hi = channel(admin["group"], "stubA", priority=10)
    mid = channel(admin["group"], "stubA", priority=5)
    low = channel(admin["group"], "stubB", priority=0)
    dead = channel(admin["group"], base_url=DEAD_URL, priority=-1)
    for i in range(4):
        p = "/kling/v1/%s" % uniq("pin")
        before = state(admin, atoken, [low, hi, mid])
        seen0 = stub_count()
        r = request(port, "POST", p, auth(atoken, pin=low["id"]), b"{}")
        eq(echo_of(r, "pinned %d" % i).get("stub"), "stubB", "pinned %d: answered by" % i)
        new = stub_new(seen0)
        eq([(q["path"], rec_header(q, "Authorization")) for q in new["stubB"]], [(p, ["Bearer " + low["key"]])],
           "pinned %d: requests at stubB" % i)
        eq(new["stubA"], [], "pinned %d: requests at stubA" % i)
        expect_charged(before, admin, atoken, low, 1000, r.header("X-Request-Id"), "POST", p, "pinned %d" % i,
                       others=[hi, mid])
    # without the pin the highest priority wins
    r = request(port, "POST", "/kling/v1/%s" % uniq("pin"), auth(atoken), b"{}")
    eq(echo_of(r, "unpinned").get("stub"), "stubA", "unpinned: answered by")
    # a pinned dead channel: its own error, no failover
    seen0 = stub_count()
    before = state(admin, atoken, [low, hi, mid, dead])
    r = request(port, "POST", "/kling/v1/%s" % uniq("pin"), auth(atoken, pin=dead["id"]), b"{}")
    eq((r.status, r.body), (502, transport_error_body("connection refused")), "pinned dead channel")
    eq(stub_new(seen0), {k: [] for k in STUB}, "pinned dead channel: requests at the stubs")
    expect_unchanged(before, admin, atoken, [low, hi, mid, dead], "pinned dead channel")

    for role in (1, 5):
        user = H.make_user(role=role, group=admin["group"])
        token = H.make_token(user)
        seen0 = stub_count()
        before = state(user, token, [low, hi, mid])
        r = request(port, "POST", "/kling/v1/%s" % uniq("pin"), auth(token, pin=low["id"]), b"{}")
        expect_gw_error(r, 403, "channel_pin_forbidden", "普通用户不支持指定渠道", "pin by role %d" % role)
        eq(stub_new(seen0), {k: [] for k in STUB}, "pin by role %d: requests at the stubs" % role)
        expect_unchanged(before, user, token, [low, hi, mid], "pin by role %d" % role)


# ---------------------------------------------------------------------------
# runner


def setup(h):
    global DEAD_URL
    for name, s in h.stubs.items():
        STUB[name] = s
        STUB_URL[name] = "http://127.0.0.1:%d" % s.port
    dead = harness.free_port()
    try:
        socket.create_connection(("127.0.0.1", dead), timeout=1).close()
        raise SetupError("port %d for the dead channel is listening" % dead)
    except ConnectionRefusedError:
        pass
    DEAD_URL = "http://127.0.0.1:%d" % dead
    # new-api's automatic disabling is off unless an operator turns it on
    h.sql("REPLACE INTO options (`key`, value) VALUES ('AutomaticDisableChannelEnabled', 'true')")


def start(keep):
    global H
    H = harness.start_suite(keep, workers=4, config=CONFIG, stubs=("stubB", "stubC"),
                            setup=setup)
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
