#!/usr/bin/python3
"""Integration tests of METERING=lease: quota leased in blocks, spent in
shared memory, usage written in batches by the master, leases given back
when idle, on SIGTERM and (after a crash) at the next start.

Every case runs its own lease pool (spawn-fcgi + lighttpd) on the
harness's MariaDB and stub, and checks exact database rows and quotas.
"Flushed" is read from the pool itself: `GET /bltcy/metrics` until
bltcy_usage_backlog is 0 with no request in flight, not a fixed sleep.

Cases: exact charges and the lease row; free and failed requests; 60
concurrent requests at the token and at the user limit; a worker killed
mid-request; a power loss (master and workers killed at once) and the
reconciliation at the next start; database statements per request
(lease and strict); two hosts on one token; the per-worker token cache;
the stop path (exit status, a request in flight during SIGTERM).

Prints one line per test and ends with `lease: N passed, M failed`.

Usage: test_lease.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import re
import signal
import socket
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, SetupError, request  # noqa: E402

import pymysql  # noqa: E402
import runner  # noqa: E402
from runner import Fail, check, eq, expect_ok, gw_error_body, short  # noqa: E402

H = None
S = runner.Suite("lease", timeout=150)
Q = 1000            # passthrough_quota of every channel here
BLOCK = 100         # a lease is worth this many requests (lease.c)


# ---------------------------------------------------------------------------
# helpers


def uniq(prefix="r"):
    return harness.rand_name(prefix)


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"])]


def is_denial(r, allow_exhausted=True):
    rid = r.header("X-Request-Id") or ""
    if r.status == 403 and r.body == gw_error_body(rid, "insufficient_quota", "额度不足"):
        return "403 insufficient_quota"
    if allow_exhausted and r.status == 401 and \
            r.body == gw_error_body(rid, "token_quota_exhausted", "该令牌额度已用尽"):
        return "401 token_quota_exhausted"
    return None


def lease_pool(name, workers=2, **cfg):
    cfg.setdefault("METERING", "lease")
    try:
        p = H.start_pool(name, workers=workers, **cfg)
    except SetupError as e:
        raise Fail("pool %s (%r) did not start: %s" % (name, cfg, e))
    p.inflight_base = 1     # the metrics request itself
    return p


def host_of(p):
    """The pool's lease identity: hostname:<socket path>, last 63 chars
    (main.c instance_name)."""
    h = "%s:%s" % (socket.gethostname()[:63], p.sock[:90])
    return h[-63:] if len(h) > 63 else h


def metrics(p):
    return harness.pool_metrics(p.port)


def wait_flushed(p, timeout=15):
    """Until the pool has nothing in flight but what it started with and
    its usage is written."""
    return harness.wait_written(p.port, timeout, inflight=p.inflight_base)


def sigterm(p, timeout=20):
    """SIGTERM the master, wait for it to exit, stop its front."""
    os.kill(p.pid, signal.SIGTERM)
    try:
        p.proc.wait(timeout)
    except Exception:  # noqa: BLE001
        raise Fail("pool %s still running %d s after SIGTERM" % (p.name, timeout))
    eq(p.proc.returncode, 0, "exit status of pool %s after SIGTERM" % p.name)
    p.stop()


def state(user, token, chan=None):
    """The rows a request may touch, in one consistent snapshot."""
    H.sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    try:
        s = {
            "user": H.sql("SELECT * FROM users WHERE id=%s", (user["id"],))[0],
            "token": H.sql("SELECT * FROM tokens WHERE id=%s", (token["id"],))[0],
            "logs": H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s OR user_id=%s",
                          (token["id"], user["id"]))[0]["n"],
            "leases": list(H.sql("SELECT * FROM bltcy_leases WHERE token_id=%s ORDER BY host", (token["id"],))),
        }
        if chan:
            s["chan"] = H.sql("SELECT * FROM channels WHERE id=%s", (chan["id"],))[0]
    finally:
        H.sql("COMMIT")
    return s


def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def no_quota_leased(s, what):
    """Nothing leased any more. Rows left with amount 0 hold no quota; they
    are reported as a comment (the design drops a lease row once it is
    given back), not failed here."""
    eq([(r["host"], r["amount"]) for r in s["leases"] if r["amount"] != 0], [], what + ": leases holding quota")
    zero = [r["host"] for r in s["leases"]]
    if zero:
        sys.stdout.write("# %s: bltcy_leases rows left with amount 0: %r\n" % (what, zero))


def expect_counters(s, remain0, quota0, n, when):
    """The token and user rows of state s after n charges of Q each."""
    eq((s["token"]["remain_quota"], s["token"]["used_quota"]), (remain0 - n * Q, n * Q),
       "token remain_quota, used_quota " + when)
    eq((s["user"]["quota"], s["user"]["used_quota"], s["user"]["request_count"]), (quota0 - n * Q, n * Q, n),
       "user quota, used_quota, request_count " + when)


def leased(s, host=None):
    return sum(r["amount"] for r in s["leases"] if host is None or r["host"] == host)


def account(quota=10 ** 9, remain_quota=10 ** 9, **kw):
    return H.setup_account(quota=quota, remain_quota=remain_quota, setting={"passthrough_quota": Q}, **kw)


def concurrent(jobs, timeout=90):
    """jobs: list of (port, token, path); all start at one barrier.
    Returns Responses (or exceptions) in order."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def one(i, port, token, path):
        try:
            c = Conn(port, timeout=60)
            try:
                barrier.wait(10)
                c.send_request("POST", path, auth(token), b'{"i":%d}' % i)
                c.read_head("POST")
                results[i] = harness.Response(c.status, c.reason, c.headers, c.read_body())
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001
            results[i] = e
    ts = [threading.Thread(target=one, args=(i,) + job) for i, job in enumerate(jobs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    return results


def split(results, allow_exhausted=True, label=None):
    """(answered 200, {denial kind: count}, [unexpected answers])."""
    errs = [r for r in results if not isinstance(r, harness.Response)]
    check(not errs, "client errors: %r" % errs[:3])
    ok = [r for r in results if r.status == 200]
    kinds = {}
    other = []
    for k, r in enumerate(results):
        if r.status == 200:
            continue
        kind = is_denial(r, allow_exhausted)
        if kind is None:
            other.append("%s answered %s" % (label(k) if label else "request %d" % k, short(r)))
            kind = "other %d" % r.status
        kinds[kind] = kinds.get(kind, 0) + 1
    return ok, kinds, other


def fail_on(problems):
    if problems:
        raise Fail("; ".join(problems[:4]) + (" (+%d more)" % (len(problems) - 4) if len(problems) > 4 else ""))


def check_log_row(row, user, token, chan, method, path, rid, recovered=False, what=""):
    want = {
        "user_id": user["id"], "type": 2, "model_name": path.split("/")[1] + "_passthrough", "quota": Q,
        "content": "Bltcy透传模式（%s %s），消费配额: %d" % (method, path.split("?")[0], Q),
        "channel_id": chan["id"], "token_id": token["id"], "token_name": token["name"],
        "username": user["username"], "group": user["group"], "ip": "127.0.0.1",
        "other": '{"request_id":"%s"%s}' % (rid, ',"recovered":true' if recovered else ""),
    }
    eq({k: row[k] for k in want}, want, what + " logs row")
    check(0 <= (row["use_time"] or 0) < 120, "%s: use_time %r" % (what, row["use_time"]))
    check(abs(row["created_at"] - time.time()) < 300, "%s: created_at %r" % (what, row["created_at"]))


# ---------------------------------------------------------------------------
# 1. charges exact; lease row; SIGTERM gives the rest back


@S.test(fronts=False)
def test_charges_exact():
    U0, R0, N = 10 ** 9, 10 ** 7, 25
    user, token, chan = account(quota=U0, remain_quota=R0)
    p = lease_pool("lease1")
    host = host_of(p)
    try:
        sent = {}
        for i in range(N):
            path = "/kling/v1/charge/%d" % i
            r = request(p.port, "POST", path + "?x=%d" % i, auth(token) + [("Content-Type", "application/json")],
                        b'{"prompt":"p%d"}' % i)
            rid = expect_ok(r, "POST %d" % i)
            check(rid not in sent, "request id %s answered twice" % rid)
            sent[rid] = path
        wait_flushed(p)
        s = state(user, token, chan)
        rows = H.sql("SELECT * FROM logs WHERE token_id=%s ORDER BY id", (token["id"],))
        eq(len(rows), N, "logs rows of the token after the flush")
        eq(s["logs"], N, "logs rows of the token or its user")
        for row in rows:
            rid = (json.loads(row["other"]) or {}).get("request_id")
            check(rid in sent, "logs row with unknown request id: %r" % row["other"])
            check_log_row(row, user, token, chan, "POST", sent.pop(rid), rid, what="request %s" % rid)
        eq(sent, {}, "requests without a logs row")
        eq(s["token"]["used_quota"], N * Q, "token used_quota")
        eq((s["user"]["used_quota"], s["user"]["request_count"]), (N * Q, N), "user used_quota, request_count")
        eq(s["chan"]["used_quota"], N * Q, "channel used_quota")
        mine = [r for r in s["leases"] if r["host"] == host]
        eq(len(mine), 1, "bltcy_leases rows of host %r (rows of the token: %r)" % (host, s["leases"]))
        eq(len(s["leases"]), 1, "bltcy_leases rows of the token")
        lr = mine[0]
        eq((lr["last_grant"], lr["user_id"], lr["unlimited"]), (BLOCK * Q, user["id"], 0),
           "lease row last_grant (one block), user_id, unlimited")
        eq(lr["amount"], BLOCK * Q - N * Q, "lease amount = granted - spent")
        eq(s["token"]["remain_quota"] + lr["amount"] + s["token"]["used_quota"], R0,
           "token remain_quota + leased + used")
        eq(s["user"]["quota"] + lr["amount"] + s["user"]["used_quota"], U0, "user quota + leased + used")
        sigterm(p)
    finally:
        p.stop()
    s = state(user, token, chan)
    eq(s["leases"], [], "bltcy_leases rows of the token after SIGTERM")
    eq(H.sql("SELECT COUNT(*) AS n FROM bltcy_leases WHERE host=%s", (host,))[0]["n"], 0,
       "bltcy_leases rows of the host after SIGTERM")
    expect_counters(s, R0, U0, N, "after SIGTERM")
    eq(s["chan"]["used_quota"], N * Q, "channel used_quota after SIGTERM")
    eq(s["logs"], N, "logs rows after SIGTERM")


# ---------------------------------------------------------------------------
# 2. free and failed requests


@S.test(fronts=False)
def test_free_and_failed_not_charged():
    user, token, chan = account(quota=10 ** 9, remain_quota=10 ** 6)
    dead = harness.free_port()
    user2, token2, chan2 = account(quota=10 ** 9, remain_quota=10 ** 6,
                                   base_url="http://127.0.0.1:%d" % dead)
    before = state(user, token, chan)
    before2 = state(user2, token2, chan2)
    p = lease_pool("lease2")
    host = host_of(p)
    try:
        # a GET is free: nothing at all in the database, not even a lease
        r = request(p.port, "GET", "/kling/v1/free/" + uniq("g"), auth(token))
        expect_ok(r, "free GET")
        wait_flushed(p)
        eq(state(user, token, chan), before, "rows after a free GET (nothing written)")

        # upstream 500: relayed, refunded into the lease
        m = uniq("e500")
        H.stub.script({"path": m, "status": 500, "body": '{"error":"boom"}'})
        r = request(p.port, "POST", "/kling/v1/" + m, auth(token), b"{}")
        eq((r.status, r.body), (500, b'{"error":"boom"}'), "upstream 500 relayed")
        wait_flushed(p)
        s = state(user, token, chan)
        eq(s["logs"], before["logs"], "logs rows after an upstream 500")
        eq(s["token"]["used_quota"], before["token"]["used_quota"], "token used_quota after an upstream 500")
        eq((s["user"]["used_quota"], s["user"]["request_count"]),
           (before["user"]["used_quota"], before["user"]["request_count"]),
           "user used_quota, request_count after an upstream 500")
        eq(s["chan"]["used_quota"], before["chan"]["used_quota"], "channel used_quota after an upstream 500")
        eq(s["token"]["remain_quota"] + leased(s, host), before["token"]["remain_quota"],
           "token remain_quota + leased after an upstream 500")
        eq(s["user"]["quota"] + leased(s, host), before["user"]["quota"],
           "user quota + leased after an upstream 500")

        # a channel where nothing listens: 502, refunded
        for i in range(3):
            r = request(p.port, "POST", "/kling/v1/dead/%d" % i, auth(token2), b"{}")
            eq(r.status, 502, "POST to a channel where nothing listens: %s" % short(r))
        wait_flushed(p)
        s2 = state(user2, token2, chan2)
        eq(s2["logs"], before2["logs"], "logs rows after 502s")
        eq(s2["token"]["used_quota"], 0, "token used_quota after 502s")
        eq((s2["user"]["used_quota"], s2["user"]["request_count"]), (0, 0),
           "user used_quota, request_count after 502s")
        eq(s2["chan"]["used_quota"], 0, "channel used_quota after 502s")
        eq(s2["token"]["remain_quota"] + leased(s2, host), before2["token"]["remain_quota"],
           "token remain_quota + leased after 502s")
        sigterm(p)
    finally:
        p.stop()
    eq(state(user, token, chan), before, "rows of the free/500 account after the pool stopped")
    eq(state(user2, token2, chan2), before2, "rows of the unreachable-channel account after the pool stopped")


# ---------------------------------------------------------------------------
# 3. concurrency at the token limit and at the user limit


@S.test(fronts=False)
def test_concurrent_limits():
    uA, tA, cA = account(quota=10 ** 9, remain_quota=10000)
    uB = H.make_user(quota=10000)
    tB = H.make_token(uB, remain_quota=0, unlimited=1)
    cB = H.make_channel(uB["group"], setting={"passthrough_quota": Q})
    p = lease_pool("lease3", workers=4)
    problems = []
    try:
        paths = ["/kling/v1/conc/a%d" % i for i in range(60)]
        res = concurrent([(p.port, tA, x) for x in paths])
        okA, kinds, other = split(res, label=lambda k: paths[k])
        sys.stdout.write("# 60 concurrent, token limit: %d ok, %r\n" % (len(okA), kinds))
        problems += ["token limit: " + x for x in other]
        if len(okA) != 10:
            problems.append("token limit: want 10 answered 200 (remain_quota 10000, 1000 each), got %d" % len(okA))
        wait_flushed(p)
        s = state(uA, tA, cA)
        check(s["token"]["remain_quota"] >= 0, "token remain_quota negative: %r" % s["token"]["remain_quota"])
        rows = H.logs(tA)
        eq(sorted(json.loads(r["other"])["request_id"] for r in rows),
           sorted(r.header("X-Request-Id") for r in okA), "request ids of the logs rows (token limit)")

        paths = ["/kling/v1/conc/b%d" % i for i in range(60)]
        res = concurrent([(p.port, tB, x) for x in paths])
        okB, kinds, other = split(res, allow_exhausted=False, label=lambda k: paths[k])
        sys.stdout.write("# 60 concurrent, user limit: %d ok, %r\n" % (len(okB), kinds))
        problems += ["user limit: " + x for x in other]
        if len(okB) != 10:
            problems.append("user limit: want 10 answered 200 (user quota 10000, token unlimited), got %d"
                            % len(okB))
        wait_flushed(p)
        s = state(uB, tB, cB)
        check(s["user"]["quota"] >= 0, "user quota negative: %r" % s["user"]["quota"])
        eq(sorted(json.loads(r["other"])["request_id"] for r in H.logs(tB)),
           sorted(r.header("X-Request-Id") for r in okB), "request ids of the logs rows (user limit)")
        sigterm(p)
    finally:
        p.stop()
    n = len(okA)
    s = state(uA, tA, cA)
    expect_counters(s, 10000, 10 ** 9, n, "after SIGTERM (token limit, %d answered 200)" % n)
    no_quota_leased(s, "after SIGTERM (token limit)")
    eq(s["logs"], n, "logs rows after SIGTERM (token limit)")
    n = len(okB)
    s = state(uB, tB, cB)
    eq((s["user"]["quota"], s["user"]["used_quota"], s["user"]["request_count"]), (10000 - n * Q, n * Q, n),
       "user quota, used_quota, request_count after SIGTERM (user limit, %d answered 200)" % n)
    eq((s["token"]["remain_quota"], s["token"]["used_quota"]), (0, n * Q),
       "unlimited token remain_quota (untouched), used_quota after SIGTERM")
    no_quota_leased(s, "after SIGTERM (user limit)")
    eq(s["logs"], n, "logs rows after SIGTERM (user limit)")
    fail_on(problems)


# ---------------------------------------------------------------------------
# 4. a worker killed mid-request: settled once by the master, "recovered"


@S.test(fronts=False)
def test_worker_killed_mid_request():
    R0, U0 = 10 ** 7, 10 ** 9
    user, token, chan = account(quota=U0, remain_quota=R0)
    p = lease_pool("lease4", LOG_LEVEL="debug")
    m = uniq("kill")
    ev = "ev-" + m
    path = "/kling/v1/" + m
    out = {}
    th = None
    try:
        # one charged request first, so the token holds a lease already
        expect_ok(request(p.port, "POST", "/kling/v1/before-kill", auth(token), b"{}"), "POST before the kill")
        wait_flushed(p)
        restarts0 = metrics(p).get("bltcy_worker_restarts_total")
        H.stub.script({"path": m, "mode": "hang", "hang": 60, "event": ev, "status": 200, "body": "late"})

        th = harness.request_in_thread(out, p.port, "POST", path, auth(token), b'{"prompt":"x"}',
                                       timeout=90)
        found = H.stub.wait(m, timeout=15)
        check(found, "the request never reached the stub")
        pids = p.workers_pids()
        victim = harness.pid_with_local_port(pids, found[0]["peer_port"], H.stub_port)
        check(victim, "no worker among %r holds the TCP connection from port %d to the stub"
              % (pids, found[0]["peer_port"]))
        with open(p.log_file, encoding="utf-8", errors="replace") as f:
            rids = re.findall(r"DEBUG Bltcy req=(\S+) POST %s -> channel" % re.escape(path), f.read())
        eq(len(rids), 1, "debug log lines naming the hanging request")
        rid = rids[0]
        os.kill(victim, signal.SIGKILL)
        th.join(30)
        check(not th.is_alive(), "the client of the killed worker got no answer within 30 s")
        if "r" in out:
            check(out["r"].status != 200, "the killed request answered 200: %s" % short(out["r"]))
            sys.stdout.write("# client of the killed worker got %d\n" % out["r"].status)
        try:
            harness.wait_for(lambda: (lambda ps: ps if len(ps) >= 2 and victim not in ps else None)(
                p.workers_pids()), 10, "a replacement worker")
        except SetupError as e:
            raise Fail(str(e))
        H.stub.release(ev)
        # the killed request can never finish: the in-flight gauge may keep it
        mt = metrics(p)
        eq(mt.get("bltcy_worker_restarts_total"), restarts0 + 1, "bltcy_worker_restarts_total after the kill")
        deadline = time.time() + 3
        while mt["bltcy_inflight_requests"] != 1 and time.time() < deadline:
            time.sleep(0.05)
            mt = metrics(p)
        if mt["bltcy_inflight_requests"] != 1:
            sys.stdout.write("# bltcy_inflight_requests stays %d with nothing in flight after the kill "
                             "(the killed request is never taken off the gauge)\n" % mt["bltcy_inflight_requests"])
            p.inflight_base = mt["bltcy_inflight_requests"]
        wait_flushed(p)
        s = state(user, token, chan)
        rows = [r for r in H.logs(token) if m in r["content"]]
        eq(len(rows), 1, "logs rows of the killed request")
        check_log_row(rows[0], user, token, chan, "POST", path, rid, recovered=True, what="killed request")
        eq(s["logs"], 2, "logs rows of the token (one before, the killed one)")
        eq(s["token"]["used_quota"], 2 * Q, "token used_quota (the killed request charged once)")
        eq((s["user"]["used_quota"], s["user"]["request_count"]), (2 * Q, 2), "user used_quota, request_count")
        eq(s["chan"]["used_quota"], 2 * Q, "channel used_quota")
        eq(s["token"]["remain_quota"] + leased(s, host_of(p)) + s["token"]["used_quota"], R0,
           "token remain_quota + leased + used")
        # the pool keeps serving
        for i in range(6):
            expect_ok(request(p.port, "POST", "/kling/v1/after-kill/%d" % i, auth(token), b"{}"),
                      "POST %d after the kill" % i)
        wait_flushed(p)
        s = state(user, token, chan)
        eq(s["logs"], 8, "logs rows after 6 more requests")
        eq(s["token"]["used_quota"], 8 * Q, "token used_quota after 6 more requests")
        sigterm(p)
    finally:
        H.stub.release(ev)
        if th is not None:
            th.join(5)
        p.stop()
    s = state(user, token, chan)
    eq(s["leases"], [], "bltcy_leases rows after SIGTERM")
    expect_counters(s, R0, U0, 8, "after SIGTERM")
    eq(len([r for r in H.logs(token) if m in r["content"]]), 1, "logs rows of the killed request after SIGTERM")


# ---------------------------------------------------------------------------
# 5. power loss: master and workers SIGKILLed together; the next start on
#    the same socket gives the lease back


@S.test(fronts=False)
def test_power_loss_reconciled():
    R0, U0, N = 10 ** 6, 10 ** 9, 7
    user, token, chan = account(quota=U0, remain_quota=R0)
    name = "lease5"
    p = lease_pool(name)
    host = host_of(p)
    p2 = None
    try:
        for i in range(N):
            expect_ok(request(p.port, "POST", "/kling/v1/power/%d" % i, auth(token), b"{}"), "POST %d" % i)
        wait_flushed(p)
        procs = [p.pid] + p.workers_pids()
        # power loss: everything of the pool at once, no shutdown path
        H.kill(name, signal.SIGKILL)
        deadline = time.time() + 5
        while True:
            alive = [pid for pid in procs if running(pid)]
            if not alive or time.time() > deadline:
                break
            time.sleep(0.02)
        eq(alive, [], "pool processes alive 5 s after SIGKILL of the process group")
        s = state(user, token, chan)
        mine = [r for r in s["leases"] if r["host"] == host]
        eq(len(mine), 1, "bltcy_leases rows of host %r after the power loss (rows: %r)" % (host, s["leases"]))
        eq(mine[0]["amount"], BLOCK * Q - N * Q, "lease amount left after the power loss")
        eq(s["token"]["remain_quota"], R0 - BLOCK * Q, "token remain_quota after the power loss (lowered by the lease)")
        eq(s["token"]["used_quota"], N * Q, "token used_quota after the power loss")
        eq(s["logs"], N, "logs rows after the power loss")
        H.kill(name + "-lighttpd")
        p2 = lease_pool(name)
        eq(host_of(p2), host, "host identity of the restarted pool")
        s = state(user, token, chan)
        eq(H.sql("SELECT COUNT(*) AS n FROM bltcy_leases WHERE host=%s", (host,))[0]["n"], 0,
           "bltcy_leases rows of the host after the restart (reconciled)")
        eq(s["leases"], [], "bltcy_leases rows of the token after the restart")
        expect_counters(s, R0, U0, N, "after the restart")
        eq(s["chan"]["used_quota"], N * Q, "channel used_quota after the restart")
        eq(s["logs"], N, "logs rows after the restart (nothing written twice)")
        # the restarted pool works and stops cleanly
        expect_ok(request(p2.port, "POST", "/kling/v1/power/after", auth(token), b"{}"), "POST after the restart")
        wait_flushed(p2)
        sigterm(p2)
    finally:
        p.stop()
        if p2 is not None:
            p2.stop()
    s = state(user, token, chan)
    eq(s["leases"], [], "bltcy_leases rows after the restarted pool stopped")
    eq((s["token"]["remain_quota"], s["token"]["used_quota"], s["logs"]), (R0 - (N + 1) * Q, (N + 1) * Q, N + 1),
       "token remain_quota, used_quota, logs rows after the restarted pool stopped")
    eq(s["user"]["quota"], U0 - (N + 1) * Q, "user quota after the restarted pool stopped")


# ---------------------------------------------------------------------------
# 6. database round trips per request: lease vs strict


def _round_trips(p, token, n=200):
    mc = pymysql.connect(unix_socket=H.db_sock, user="root", password="", database="bltcy", autocommit=True)
    try:
        def questions():
            with mc.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_stmt_execute')")
                return {k: int(v) for k, v in cur.fetchall()}
        # warm up the workers that take requests (a process's channel cache
        # is loaded once, on its first request; connections go to the
        # processes whose threads wait first, so not every one gets some)
        for k in range(10):
            res = concurrent([(p.port, token, "/kling/v1/rt/warm%d-%d" % (k, i)) for i in range(4)])
            for r in res:
                expect_ok(r if isinstance(r, harness.Response) else harness.Response(0, str(r), [], b""),
                          "warm-up POST")
        wait_flushed(p)
        warm = len(H.logs(token))
        # what our own SHOW adds
        a = questions()
        b = questions()
        own = b["Questions"] - a["Questions"]
        q0 = questions()
        # one submit path, as a client's: a path segment that is new each
        # time would cost a task-owner lookup each time (see route())
        for i in range(n):
            expect_ok(request(p.port, "POST", "/kling/v1/videos/text2video", auth(token),
                              b'{"n":%d}' % i), "POST %d" % i)
        wait_flushed(p)
        q1 = questions()
    finally:
        mc.close()
    d = q1["Questions"] - q0["Questions"] - own
    eq(len(H.logs(token)), warm + n, "logs rows of the measured requests")
    return d, q1["Com_stmt_execute"] - q0["Com_stmt_execute"]


@S.test(fronts=False)
def test_round_trips_per_request():
    n = 200
    user, token, chan = account()
    p = lease_pool("lease6")
    try:
        dl, el = _round_trips(p, token, n)
        sigterm(p)
    finally:
        p.stop()
    user2, token2, chan2 = account()
    p = lease_pool("strict6", METERING="strict")
    try:
        ds, es = _round_trips(p, token2, n)
    finally:
        p.stop()        # its exit status is test_strict_pool_sigterm_exit's
    sys.stdout.write("# database statements per request over %d sequential POSTs: lease %.3f (%d), "
                     "strict %.3f (%d); prepared executions: lease %d, strict %d\n"
                     % (n, dl / n, dl, ds / n, ds, el, es))
    # the master's batch is about ten statements whatever its size, so the
    # share per request is largest for slow sequential traffic like this
    check(dl / n < 0.5, "lease: %.3f round trips per request (%d for %d), want < 0.5" % (dl / n, dl, n))
    check(ds / n <= 3, "strict: %.3f round trips per charged request (%d for %d), want <= 3" % (ds / n, ds, n))
    check(ds > 0, "strict: no statements counted at all (measurement broken)")


# ---------------------------------------------------------------------------
# 7. two hosts on one token: never overdrawn together


@S.test(fronts=False)
def test_two_hosts_one_token():
    user, token, chan = account(quota=10 ** 9, remain_quota=20 * Q)
    pa = lease_pool("lease7a", workers=3)
    pb = None
    problems = []
    try:
        pb = lease_pool("lease7b", workers=3)
        jobs = []
        for i in range(30):
            jobs.append((pa.port, token, "/kling/v1/two/a%d" % i))
            jobs.append((pb.port, token, "/kling/v1/two/b%d" % i))
        res = concurrent(jobs)
        ok, kinds, other = split(res, label=lambda k: "%s to pool %s" % (
            jobs[k][2], "lease7a" if jobs[k][0] == pa.port else "lease7b"))
        problems += other
        by = {"a": sum(1 for j, r in zip(jobs, res) if r.status == 200 and j[0] == pa.port)}
        by["b"] = len(ok) - by["a"]
        sys.stdout.write("# two hosts, 60 concurrent: %d ok (%r), %r\n" % (len(ok), by, kinds))
        if len(ok) != 20:
            problems.append("requests answered 200 over both hosts: want 20 (remain_quota 20000, 1000 each), got %d"
                            % len(ok))
            sys.stdout.write("# leases %r, token %r\n" % (
                list(H.sql("SELECT * FROM bltcy_leases WHERE token_id=%s", (token["id"],))),
                H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))))
            sys.stdout.write("# metrics a %r\n# metrics b %r\n" % (metrics(pa), metrics(pb)))
        wait_flushed(pa)
        wait_flushed(pb)
        s = state(user, token, chan)
        check(s["token"]["remain_quota"] >= 0, "token remain_quota negative: %r" % s["token"]["remain_quota"])
        check(all(r["amount"] >= 0 for r in s["leases"]), "negative lease: %r" % s["leases"])
        eq(s["token"]["remain_quota"] + leased(s) + s["token"]["used_quota"], 20 * Q,
           "token remain_quota + leased (both hosts) + used")
        eq(s["logs"], len(ok), "logs rows after both flushed = requests answered 200")
        sigterm(pa)
        sigterm(pb)
    finally:
        pa.stop()
        if pb is not None:
            pb.stop()
    s = state(user, token, chan)
    n = len(ok)
    expect_counters(s, 20 * Q, 10 ** 9, n, "after both pools stopped (%d answered 200)" % n)
    no_quota_leased(s, "after both pools stopped")
    eq(s["logs"], n, "logs rows after both pools stopped")
    eq(sorted(json.loads(r["other"])["request_id"] for r in H.logs(token)),
       sorted(r.header("X-Request-Id") for r in ok), "request ids of the logs rows")
    fail_on(problems)


# ---------------------------------------------------------------------------
# the per-worker token cache of lease mode and the channel cache


@S.test(fronts=False)
def test_cached_token_after_rejected_first_request():
    """One worker. Its first request is rejected by the token check (a
    service outside the token's model limits), the second, with the same
    token and within the 2 s token cache, asks for an allowed service and
    must be relayed like on any worker that loaded its channels."""
    user = H.make_user()
    token = H.make_token(user, model_limits_enabled=1, model_limits="kling")
    H.make_channel(user["group"], setting={"passthrough_quota": Q})
    p = lease_pool("lease10", workers=1)
    try:
        r = request(p.port, "POST", "/pika/v1/" + uniq("limit"), auth(token), b"{}")
        rid = r.header("X-Request-Id") or ""
        eq((r.status, r.body), (403, gw_error_body(rid, "model_not_allowed", "该令牌无权访问模型 pika")),
           "POST /pika/ with model_limits kling")
        r = request(p.port, "POST", "/kling/v1/" + uniq("allowed"), auth(token), b"{}")
        expect_ok(r, "POST /kling/ right after, same token, same worker")
        wait_flushed(p)
        sigterm(p)
    finally:
        p.stop()
    eq(len(H.logs(token)), 1, "logs rows")


@S.test(fronts=False)
def test_strict_worker_died_in_charge():
    """Strict metering, one worker. A test transaction holds the token's
    row, so the worker's charge statement waits for the lock; the worker
    is killed then. The statement still applies once the lock is free, so
    the master must wait until the dead worker's connection is gone, then
    read its bltcy_slots row: the charge stands, once, with its logs row
    marked recovered."""
    user, token, chan = account()
    p = lease_pool("strict7", workers=1, METERING="strict")
    mc = pymysql.connect(unix_socket=H.db_sock, user="root", password="", database="bltcy")
    out = {}
    try:
        expect_ok(request(p.port, "POST", "/kling/v1/" + uniq("warm"), auth(token), b"{}"), "warm-up POST")
        wait_flushed(p)
        before = state(user, token, chan)
        with mc.cursor() as c:
            c.execute("START TRANSACTION")
            c.execute("SELECT remain_quota FROM tokens WHERE id=%s FOR UPDATE", (token["id"],))

        th = harness.request_in_thread(out, p.port, "POST", "/kling/v1/" + uniq("died"), auth(token),
                                       b"{}", timeout=60)

        def waiting():
            rows = H.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE tokens%%'")
            return rows[0]["ID"] if rows else None
        conn = harness.wait_for(waiting, 15, "the charge statement waiting for the token's row")
        victim = p.workers_pids()[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.3)     # the master is now waiting for connection `conn` to go
        eq(len(H.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE ID=%s", (conn,))), 1,
           "the dead worker's connection, still waiting for the lock")
        mc.commit()         # the statement goes on and applies
        th.join(30)
        check("r" in out and out["r"].status >= 500, "the killed request's answer: %r" % (out,))
        harness.wait_for(lambda: len(H.logs(token)) >= 2, 15, "the recovered logs row")
        wait_flushed(p)
        after = state(user, token, chan)
        eq(after["token"]["remain_quota"], before["token"]["remain_quota"] - Q, "token remain_quota")
        eq(after["user"]["quota"], before["user"]["quota"] - Q, "user quota")
        rows = H.logs(token)
        eq(len(rows), 2, "logs rows (the warm-up and the killed request)")
        check('"recovered":true' in rows[-1]["other"], "logs.other of the killed request: %r" % rows[-1]["other"])
        sigterm(p)
    finally:
        try:
            mc.rollback()
        except Exception:  # noqa: BLE001
            pass
        mc.close()
        p.stop()


# ---------------------------------------------------------------------------
# shutdown: exit status, a request in flight during SIGTERM


@S.test(fronts=False)
def test_strict_pool_sigterm_exit():
    # the master's stop path also runs in strict mode: it must exit 0
    user, token, chan = account()
    p = lease_pool("strict8", METERING="strict")
    try:
        expect_ok(request(p.port, "POST", "/kling/v1/strict-stop", auth(token), b"{}"), "POST")
        wait_flushed(p)
        sigterm(p)
    finally:
        p.stop()


@S.test(fronts=False)
def test_sigterm_in_flight_failure_not_charged():
    """SIGTERM while one worker relays a request and the other is idle and
    leaves at once: the request then fails upstream (500), so it must not
    be charged, and nothing is "recovered"."""
    R0 = 10 ** 7
    user, token, chan = account(remain_quota=R0)
    p = lease_pool("lease9")
    evs = []
    ths = []
    try:
        expect_ok(request(p.port, "POST", "/kling/v1/stop/warm", auth(token), b"{}"), "warm-up POST")
        wait_flushed(p)
        outs = []
        m = uniq("stop")
        ev = "ev-" + m
        evs.append(ev)
        H.stub.script({"path": m, "mode": "hang", "hang": 60, "event": ev, "status": 500,
                       "body": '{"error":"late failure"}', "times": 1})
        out = {}
        outs.append(out)
        ths.append(harness.request_in_thread(out, p.port, "POST", "/kling/v1/" + m, auth(token),
                                             b"{}", timeout=90))
        found = H.stub.wait(m, timeout=15)
        check(found, "the hanging request never reached the stub")
        # the worker holding it may be either: a process holds many requests
        holder = harness.pid_with_local_port(p.workers_pids(), found[0]["peer_port"], H.stub_port)
        check(holder in p.workers_pids(), "no worker holds the hanging request (%r)" % holder)
        wait_ev = evs[-1]
        before = state(user, token, chan)
        os.kill(p.pid, signal.SIGTERM)
        # the idle worker leaves; the master reaps it while the other still relays
        harness.wait_for(lambda: len(p.workers_pids()) == 1, 10, "the idle worker to exit")
        time.sleep(0.3)
        H.stub.release(wait_ev)
        ths[-1].join(20)
        r = outs[-1].get("r")
        check(r is not None, "in-flight request got no answer after SIGTERM: %r" % outs[-1].get("e"))
        eq((r.status, r.body), (500, b'{"error":"late failure"}'), "in-flight request answered after SIGTERM")
        try:
            p.proc.wait(20)
        except Exception:  # noqa: BLE001
            raise Fail("pool still running 20 s after SIGTERM")
        p.stop()
    except SetupError as e:
        raise Fail(str(e))
    finally:
        for ev in evs:
            H.stub.release(ev)
        for th in ths:
            th.join(5)
        p.stop()
    s = state(user, token, chan)
    rec = [r for r in H.logs(token) if "recovered" in (r["other"] or "")]
    problems = []
    if rec:
        problems.append("logs rows marked recovered although no worker died: %r"
                        % [(r["content"], r["other"]) for r in rec])
    if s["logs"] != before["logs"]:
        problems.append("logs rows: want %d (the request answered 500 after SIGTERM is not charged), got %d"
                        % (before["logs"], s["logs"]))
    if (s["token"]["used_quota"], s["token"]["remain_quota"]) != (Q, R0 - Q):
        problems.append("token used_quota, remain_quota after the pool stopped: want %r (only the warm-up), "
                        "got %r" % ((Q, R0 - Q), (s["token"]["used_quota"], s["token"]["remain_quota"])))
    if s["leases"]:
        problems.append("bltcy_leases rows after the pool stopped: %r" % s["leases"])
    fail_on(problems)


@S.test(fronts=False)
def test_charge_group_statement():
    """Strict metering's group charge: one statement for n charges to one
    token. Also when the token holds exactly their sum, the token and the
    user are charged the sum once and every slot row names its request;
    run again (a lost reply) it changes nothing; and when the token cannot
    pay the sum, or its rows changed since the worker read them, it changes
    nothing at all."""
    stmt = harness.relay_sql("ST_CHARGE_GROUP")
    host = "group-test-host"
    now = int(time.time())
    for n in (2, 3, 8, 32):
        user, token, chan = H.setup_account(quota=10 ** 6, remain_quota=7 * n)
        cv = H.sql("SELECT v FROM bltcy_meta WHERE k='channels'")[0]["v"]
        av = H.sql("SELECT v FROM bltcy_meta WHERE k='auth'")[0]["v"]
        slots = list(range(100, 100 + n))
        for sl in slots:
            H.sql("REPLACE INTO bltcy_slots (host, slot, req, updated_at) VALUES (%s, %s, '', 0)", (host, sl))
        rids = ["group-%d-%d" % (n, sl) for sl in slots]

        def pad(xs):
            return (xs + [xs[0]] * 32)[:32]

        def args(q, auth=av):
            s_ = q * n
            return ([user["id"], host] + pad(slots) + [0, s_, s_, s_, s_, n] + pad(slots) + pad(rids) +
                    [now, now, token["id"]] + pad(rids) + [0, s_, s_, cv, auth, s_, s_, n])

        def named():
            return [r["req"] for r in H.sql("SELECT req FROM bltcy_slots WHERE host=%s AND slot IN %s "
                                           "ORDER BY slot", (host, slots))]
        c = H.db().cursor()
        eq(c.execute(stmt, args(8)), 0, "n=%d: rows changed when the token cannot pay the sum" % n)
        eq(c.execute(stmt, args(7, av - 1)), 0, "n=%d: rows changed when the token rows changed since" % n)
        eq(named(), [""] * n, "n=%d: slot rows after a refused group" % n)
        eq(c.execute(stmt, args(7)), n + 2, "n=%d: rows changed (token, user, slots)" % n)
        eq(named(), rids, "n=%d: slot rows after the group" % n)
        t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
        u = H.sql("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
        eq((t["remain_quota"], t["used_quota"]), (0, 7 * n), "n=%d: token after the group" % n)
        eq((u["quota"], u["used_quota"], u["request_count"]), (10 ** 6 - 7 * n, 7 * n, n),
           "n=%d: user after the group" % n)
        eq(c.execute(stmt, args(7)), 0, "n=%d: rows changed by the same group again" % n)
        H.sql("DELETE FROM bltcy_slots WHERE host=%s", (host,))


@S.test(fronts=False)
def test_old_charges_settled_and_dropped():
    """Migration 015 settles what an older version left open in
    bltcy_charges, as its recovery did (the charge stands; a logs row of
    one that never finished says recovered; the channel takes the quota;
    a row without a logs row is left alone), then drops the table and
    its seven routines."""
    user, token, chan = account()
    used = H.sql("SELECT used_quota FROM channels WHERE id=%s", (chan["id"],))[0]["used_quota"]
    H.sql("CREATE TABLE bltcy_charges (request_id varchar(40) NOT NULL, host varchar(64) NOT NULL,"
          " pid int NOT NULL, token_id bigint NOT NULL, user_id bigint NOT NULL, channel_id bigint NOT NULL,"
          " quota bigint NOT NULL, unlimited tinyint(1) NOT NULL, created_at bigint NOT NULL,"
          " logs_id bigint NOT NULL DEFAULT 0, done tinyint(1) NOT NULL DEFAULT 0, PRIMARY KEY (request_id))")
    H.sql("CREATE PROCEDURE bltcy_recover(IN p_host varchar(64), IN p_pid int, IN p_now bigint) BEGIN END")
    ids = []
    for rid in ("old-open", "old-done"):
        H.sql("INSERT INTO logs (user_id, created_at, type, content, quota, channel_id, token_id, other)"
              " VALUES (%s, 1, 2, 'old', 300, %s, %s, %s)",
              (user["id"], chan["id"], token["id"], '{"request_id":"%s"}' % rid))
        ids.append(H.sql("SELECT MAX(id) AS id FROM logs WHERE token_id=%s", (token["id"],))[0]["id"])
    H.sql("INSERT INTO bltcy_charges VALUES ('old-open', 'h', 1, %s, %s, %s, 300, 0, 1, %s, 0),"
          " ('old-done', 'h', 1, %s, %s, %s, 300, 0, 1, %s, 1),"
          " ('old-nolog', 'h', 1, %s, %s, %s, 300, 0, 1, 0, 0)",
          (token["id"], user["id"], chan["id"], ids[0], token["id"], user["id"], chan["id"], ids[1],
           token["id"], user["id"], chan["id"]))
    sql = open(os.path.join(harness.ROOT, "schema", "015_drop_charges.sql")).read()
    sql = "\n".join(l for l in sql.splitlines() if not l.startswith("--"))
    for stmt in [x.strip() for x in sql.split(";") if x.strip()]:
        H.sql(stmt)
    other = [H.sql("SELECT other FROM logs WHERE id=%s", (i,))[0]["other"] for i in ids]
    eq(other, ['{"request_id":"old-open","recovered":true}', '{"request_id":"old-done"}'], "logs.other")
    eq(H.sql("SELECT used_quota FROM channels WHERE id=%s", (chan["id"],))[0]["used_quota"], used + 600,
       "channel used_quota")
    eq(H.sql("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA=DATABASE()"
             " AND TABLE_NAME='bltcy_charges'")[0]["n"], 0, "bltcy_charges tables")
    eq(H.sql("SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA=DATABASE()"
             " AND (ROUTINE_NAME LIKE 'bltcy\\_charge%%' OR ROUTINE_NAME LIKE 'bltcy\\_recover%%')")[0]["n"],
       0, "routines left")


@S.test(fronts=False)
def test_routines_applied_once():
    """The relay runs a statement again, once, when the connection dropped
    before its reply: every metering routine run twice with the same
    arguments must change the rows once."""
    user, token, chan = H.setup_account(quota=10 ** 6, remain_quota=100000)
    host = "retry-test-host"
    now = int(time.time())

    def rows():
        t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
        u = H.sql("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
        n = H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (token["id"],))[0]["n"]
        return (t["remain_quota"], t["used_quota"], u["quota"], u["used_quota"], u["request_count"], n)

    start = rows()
    # lease metering: a lease, a usage batch, a return
    for _ in range(2):
        H.sql("CALL bltcy_lease(%s, %s, %s, 0, 1000, 5000, %s, 'lease:once-1:0')",
              (host, token["id"], user["id"], now))
    eq(rows()[0], start[0] - 5000, "remain_quota after the same lease twice")
    batch = json.dumps([{"rid": "once-req-1", "u": user["id"], "t": token["id"], "c": chan["id"],
                         "q": 1000, "ts": now, "ut": 0, "rc": 0, "m": "POST", "p": "/kling/x",
                         "ip": "127.0.0.1", "un": user["username"], "tn": token["name"],
                         "g": user["group"], "s": "kling", "k": ["once-task-1"]}])
    for _ in range(2):
        H.sql("CALL bltcy_lease_flush(%s, %s, 'flush:once-req-1')", (host, batch))
    r = rows()
    eq((r[1], r[3], r[4], r[5]), (start[1] + 1000, start[3] + 1000, start[4] + 1, start[5] + 1),
       "used quotas, request_count and logs rows after the same batch twice")
    eq(H.sql("SELECT amount FROM bltcy_leases WHERE host=%s AND token_id=%s", (host, token["id"]))[0]["amount"],
       4000, "lease amount after the same batch twice")
    for _ in range(2):
        H.sql("CALL bltcy_lease_return(%s, %s, 4000, 1, %s, 'return:once-1')", (host, token["id"], now))
    r = rows()
    eq((r[0], r[2]), (start[0] - 1000, start[2] - 1000), "remain_quota and user quota after the same return twice")
    eq(H.sql("SELECT COUNT(*) AS n FROM bltcy_leases WHERE host=%s", (host,))[0]["n"], 0, "lease rows left")
    eq(H.sql("SELECT COUNT(*) AS n FROM bltcy_tasks WHERE task_id = 'once-task-1'")[0]["n"], 1,
       "task id recorded by the batch")


# ---------------------------------------------------------------------------


def start(keep):
    global H
    H = harness.start_suite(keep, workers=2)
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
