#!/usr/bin/python3
"""Integration tests of the limits on requests: a token's and a user's
caps on requests in flight and per minute (bltcy_limits), and new-api's
ModelRequestRateLimit* options (the options table), refused with 429,
Retry-After, nothing forwarded and nothing charged; counted across two
pools on one database.

The real pool behind lighttpd and nginx, a private MariaDB and the stub
upstream. The options are global: each test that sets them puts them
back.

Prints one line per test and ends with `limits: N passed, M failed`.

Usage: test_limits.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import re
import signal
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
from harness import request  # noqa: E402

H = None
S = runner.Suite("limits", timeout=150, after_each=lambda: after_each())
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, expect_gw_error, expect_ok = runner.short, runner.expect_gw_error, runner.expect_ok

KLING = "/kling/v1/videos/text2video"
WORKERS = 2
RATE_KEYS = ("ModelRequestRateLimitEnabled", "ModelRequestRateLimitDurationMinutes",
             "ModelRequestRateLimitCount", "ModelRequestRateLimitSuccessCount",
             "ModelRequestRateLimitGroup")

MSG_SUCCESS = "您已达到请求数限制：%d分钟内最多请求%d次"
MSG_TOTAL = "您已达到总请求数限制：%d分钟内最多请求%d次，包括失败次数，请检查您的请求是否正确"
MSG_IN_FLIGHT = "%s同时处理中的请求已达上限（%d 个），请等待已有请求完成后重试"
MSG_RPM = "%s已达到请求频率限制：每分钟最多请求%d次，请稍后重试"


def after_each():
    H.stub.script(replace=True)
    H.sql("DELETE FROM options WHERE `key` LIKE 'ModelRequestRateLimit%%'")


def auth(token):
    return harness.auth(token, harness.JSON)


def post(port, token, path=KLING, body=b'{"prompt":"x"}'):
    return request(port, "POST", path, auth(token), body=body, timeout=60)


def set_limits(scope, id_, in_flight=0, tasks=0, rpm=0):
    H.sql("REPLACE INTO bltcy_limits (scope, id, in_flight, tasks, rpm) VALUES (%s, %s, %s, %s, %s)",
          (scope, id_, in_flight, tasks, rpm))


def set_options(**kv):
    """Options as new-api's admin writes them: one row per key."""
    for k, v in kv.items():
        H.sql("REPLACE INTO options (`key`, value) VALUES (%s, %s)",
              ("ModelRequestRateLimit" + k, str(v)))


def forwarded(mark):
    return len(H.stub.matching(mark))


def retry_after(r, lo, hi, what):
    v = r.header("Retry-After")
    check(v is not None and v.isdigit() and lo <= int(v) <= hi,
          "%s: Retry-After %r, want seconds in [%d, %d]" % (what, v, lo, hi))


def refused(r, code, msg, what, lo=1, hi=60):
    expect_gw_error(r, 429, code, msg, what)
    retry_after(r, lo, hi, what)


def refusals(port, reason):
    """bltcy_limit_refusals_total{reason=...} of the pool behind port."""
    r = request(port, "GET", "/bltcy/metrics", timeout=10)
    m = re.search(r'^bltcy_limit_refusals_total\{reason="%s"\} (\d+)$' % reason,
                  r.body.decode(), re.M)
    check(m, "bltcy_limit_refusals_total{reason=%r} in /bltcy/metrics" % reason)
    return int(m.group(1))


def unchanged(user, token, chan, before, what):
    """Nothing charged: the account and its logs rows as they were."""
    eq(H.counters(user, token, chan), before, what + ": quota and logs rows")


def account(group=None):
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 7})
    return user, token, chan


# ---------------------------------------------------------------------------
# A token's and a user's caps (bltcy_limits)


@S.test(("lighttpd",))
def test_token_rpm(front, port):
    """A token's rpm: that many requests in a minute, then 429 at once
    with rate_limit_exceeded and Retry-After, nothing forwarded or
    charged; another token of the user is not held back."""
    user, token, chan = account()
    other = H.make_token(user)
    set_limits("t", token["id"], rpm=3)
    m = KLING + "?rpm=%dx" % token["id"]
    for i in range(3):
        expect_ok(post(port, token, m), "request %d of 3" % (i + 1))
    before = H.counters(user, token, chan)
    n = refusals(port, "token_rpm")
    r = post(port, token, m)
    refused(r, "rate_limit_exceeded", MSG_RPM % ("该令牌", 3), "the 4th in a minute")
    eq(refusals(port, "token_rpm"), n + 1, "refusals counted by reason token_rpm")
    eq(forwarded("rpm=%dx" % token["id"]), 3, "requests the upstream saw")
    unchanged(user, token, chan, before, "after the refusal")
    expect_ok(post(port, other, m), "the user's other token")


@S.test(("lighttpd",))
def test_user_rpm_shared_by_tokens(front, port):
    """A user's rpm counts every token of the user."""
    user, token, chan = account()
    second = H.make_token(user)
    set_limits("u", user["id"], rpm=2)
    expect_ok(post(port, token), "first token")
    expect_ok(post(port, second), "second token")
    before = H.counters(user, second, chan)
    refused(post(port, second), "rate_limit_exceeded", MSG_RPM % ("该用户", 2), "the user's 3rd")
    unchanged(user, second, chan, before, "after the refusal")


def hold_one(port, token, ev, path):
    """A request the stub holds until ev is released: (thread, out)."""
    H.stub.script({"path": path.split("?")[1], "hang": 30, "event": ev})
    out = {}
    t = harness.request_in_thread(out, port, "POST", path, auth(token), body=b'{"prompt":"x"}')
    H.stub.wait(path.split("?")[1], 1)
    return t, out


@S.test(("lighttpd",))
def test_in_flight(front, port):
    """A token's in-flight cap: while one request is at the upstream the
    next is refused at once (too_many_requests_in_flight, Retry-After),
    nothing forwarded or charged; once it is answered, the next goes. A
    user's cap counts its tokens together."""
    user, token, chan = account()
    set_limits("t", token["id"], in_flight=1)
    path = KLING + "?held=%dx" % token["id"]
    t, out = hold_one(port, token, "hold-%d" % token["id"], path)
    before = H.counters(user, token, chan)
    r = post(port, token, KLING + "?second=%dx" % token["id"])
    refused(r, "too_many_requests_in_flight", MSG_IN_FLIGHT % ("该令牌", 1), "a second at once",
            hi=1)
    eq(forwarded("second=%dx" % token["id"]), 0, "the refused request forwarded")
    unchanged(user, token, chan, before, "after the refusal")
    H.stub.release("hold-%d" % token["id"])
    t.join(30)
    expect_ok(out["r"], "the held request")
    expect_ok(post(port, token), "the next, once the first is answered")

    # the user's cap, over two tokens
    user, token, chan = account()
    second = H.make_token(user)
    set_limits("u", user["id"], in_flight=1)
    path = KLING + "?uheld=%dx" % token["id"]
    t, out = hold_one(port, token, "uhold-%d" % token["id"], path)
    refused(post(port, second), "too_many_requests_in_flight", MSG_IN_FLIGHT % ("该用户", 1),
            "the user's other token at once", hi=1)
    H.stub.release("uhold-%d" % token["id"])
    t.join(30)
    expect_ok(out["r"], "the held request")
    expect_ok(post(port, second), "the other token, once the first is answered")


@S.test(("lighttpd",))
def test_in_flight_every_way_out(front, port):
    """A request is let out however it ends: a bad Idempotency-Key (400),
    an upstream 500 and 404, an
    unreachable upstream (502), a quote; with an in-flight cap of 1 each
    next request still goes."""
    user, token, chan = account()
    set_limits("t", token["id"], in_flight=1)
    r = request(port, "POST", KLING, auth(token) + harness.idem("k" * 300), body=b"{}")
    eq(r.status, 400, "a bad Idempotency-Key: " + short(r))
    for status in (500, 404):
        H.stub.script({"path": "st=%d" % status, "status": status, "body": "no"})
        r = post(port, token, KLING + "?st=%d" % status)
        eq(r.status, status, "upstream %d: %s" % (status, short(r)))
    r = request(port, "GET", "/bltcy/quote" + KLING, auth(token))
    eq(r.status, 200, "a quote: " + short(r))
    H.sql("UPDATE channels SET base_url = %s WHERE id = %s",
          ("http://127.0.0.1:%d" % harness.free_port(), chan["id"]))
    # the channel edit is seen within the change counters' second
    harness.wait_for(lambda: post(port, token).status == 502, 5, "an unreachable upstream's 502")
    # its breaker may be open now: another channel of the group serves
    H.make_channel(user["group"])
    harness.wait_for(lambda: post(port, token).status == 200, 5, "a 200 after every way out")
    # and the cap is in force: one held, the next refused
    path = KLING + "?wayheld=%dx" % token["id"]
    t, out = hold_one(port, token, "wayhold-%d" % token["id"], path)
    refused(post(port, token), "too_many_requests_in_flight", MSG_IN_FLIGHT % ("该令牌", 1),
            "one at once", hi=1)
    H.stub.release("wayhold-%d" % token["id"])
    t.join(30)
    expect_ok(out["r"], "the held request")


@S.test(False)
def test_dead_worker_let_out():
    """A worker killed with a request in flight: the master lets the
    request out, so the token's in-flight cap does not keep it out."""
    p = H.start_pool("dead1", workers=1)
    try:
        user, token, chan = account()
        set_limits("t", token["id"], in_flight=1)
        path = KLING + "?dead=%dx" % token["id"]
        t, out = hold_one(p.port, token, "dead-%d" % token["id"], path)
        refused(post(p.port, token), "too_many_requests_in_flight", MSG_IN_FLIGHT % ("该令牌", 1),
                "a second while the first is held", hi=1)
        old = p.workers_pids()
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        t.join(30)
        H.stub.release("dead-%d" % token["id"])
        harness.wait_for(lambda: p.workers_pids() and not set(p.workers_pids()) & set(old), 20,
                         "a new worker")
        expect_ok(post(p.port, token), "a request after the worker died")
    finally:
        p.stop()


@S.test(("lighttpd",))
def test_limits_edit_seen(front, port):
    """An edit of a token's limits is seen by the next requests (within
    the change counters' second)."""
    user, token, chan = account()
    set_limits("t", token["id"], rpm=1)
    expect_ok(post(port, token), "the first")
    refused(post(port, token), "rate_limit_exceeded", MSG_RPM % ("该令牌", 1), "the second")
    set_limits("t", token["id"], rpm=10)
    harness.wait_for(lambda: post(port, token).status == 200, 5, "a raised cap to let one in")
    H.sql("DELETE FROM bltcy_limits WHERE scope = 't' AND id = %s", (token["id"],))


# ---------------------------------------------------------------------------
# new-api's ModelRequestRateLimit* options


def rate_on(groups=None, ports=None, **kv):
    """Enable the rate options, with groups for ModelRequestRateLimitGroup,
    and wait until the pools behind ports apply them: a probe user of a
    group whose cap is one request is refused its second."""
    g = dict(groups or {})
    probes = []
    for _ in ports or [H.lighttpd_port]:
        u, t, _c = account()
        g[u["group"]] = [1, 1]
        probes.append(t)
    set_options(Enabled="true", Group=json.dumps(g), **kv)
    for port, t in zip(ports or [H.lighttpd_port], probes):
        harness.wait_for(lambda: post(port, t).status == 429, 10,
                         "the options to apply on port %d" % port)


@S.test()
def test_rate_success_count(front, port):
    """SuccessCount: answers below 400 count; 4xx and 5xx from the
    upstream do not. Past it: new-api's message, 429, Retry-After within
    the window, nothing forwarded or charged."""
    rate_on(DurationMinutes=1, Count=0, SuccessCount=2, ports=[port])
    user, token, chan = account()
    mark = "succ=%dx" % token["id"]
    for status in (500, 404, 503):
        H.stub.script({"path": mark + "&f", "status": status, "body": "no"}, replace=True)
        r = post(port, token, KLING + "?" + mark + "&f")
        eq(r.status, status, "upstream %d: %s" % (status, short(r)))
    expect_ok(post(port, token, KLING + "?" + mark), "success 1")
    expect_ok(post(port, token, KLING + "?" + mark), "success 2")
    before = H.counters(user, token, chan)
    seen = forwarded(mark)
    n = refusals(port, "rate_success")
    r = post(port, token, KLING + "?" + mark)
    refused(r, "rate_limit_exceeded", MSG_SUCCESS % (1, 2), "the 3rd success")
    eq(refusals(port, "rate_success"), n + 1, "refusals counted by reason rate_success")
    eq(forwarded(mark), seen, "requests forwarded")
    unchanged(user, token, chan, before, "after the refusal")
    # another user is counted apart
    u2, t2, c2 = account()
    expect_ok(post(port, t2), "another user")


@S.test(("lighttpd",))
def test_rate_total_count(front, port):
    """Count: every request counts, failed ones too (also the gateway's own
    refusals after the check); past it new-api's total message."""
    rate_on(DurationMinutes=2, Count=3, SuccessCount=1000)
    user, token, chan = account()
    mark = "tot=%dx" % token["id"]
    H.stub.script({"path": mark + "&f", "status": 500, "body": "no"})
    eq(post(port, token, KLING + "?" + mark + "&f").status, 500, "a failure")
    r = request(port, "POST", KLING, auth(token) + harness.idem("k" * 300), body=b"{}")
    eq(r.status, 400, "a refused Idempotency-Key: " + short(r))
    expect_ok(post(port, token, KLING + "?" + mark), "a success")
    before = H.counters(user, token, chan)
    r = post(port, token, KLING + "?" + mark)
    refused(r, "rate_limit_exceeded", MSG_TOTAL % (2, 3), "the 4th", hi=120)
    unchanged(user, token, chan, before, "after the refusal")


@S.test(("lighttpd",))
def test_rate_group_override(front, port):
    """ModelRequestRateLimitGroup overrides both counts for its group: the
    token's group when it has one, else the user's."""
    user, token, chan = account()
    other_user, other_token, _ = account()
    rate_on({user["group"]: [1, 5], "nobody": [0, 1]}, DurationMinutes=1, Count=0,
            SuccessCount=1000)
    expect_ok(post(port, token), "the group's first")
    refused(post(port, token), "rate_limit_exceeded", MSG_TOTAL % (1, 1), "the group's second")
    for i in range(3):
        expect_ok(post(port, other_token), "another group's %d" % (i + 1))
    # a token of a group of its own: that group's caps, not the user's
    u3, t3, c3 = account()
    g = harness.rand_name("tg")
    H.sql("UPDATE tokens SET `group` = %s WHERE id = %s", (g, t3["id"]))
    H.make_channel(g)
    rate_on({g: [0, 1], u3["group"]: [1, 5]}, DurationMinutes=1, Count=0, SuccessCount=1000)
    expect_ok(post(port, t3), "the token group's first success")
    refused(post(port, t3), "rate_limit_exceeded", MSG_SUCCESS % (1, 1), "its second")


@S.test(("lighttpd",))
def test_rate_options_edit_and_bad_values(front, port):
    """An edit of the options is seen within seconds; a value that is not
    what the option holds leaves the default (DurationMinutes 1, Count 0)."""
    rate_on(DurationMinutes=0, Count="many", SuccessCount=1)
    user, token, chan = account()
    expect_ok(post(port, token), "the first")
    refused(post(port, token), "rate_limit_exceeded", MSG_SUCCESS % (1, 1), "past the cap")
    set_options(Enabled="false")
    harness.wait_for(lambda: post(port, token).status == 200, 5, "disabled options to let it in")


# ---------------------------------------------------------------------------
# Two pools on one database


def exchanged(log_file, what, kind, id_):
    """The pool writing log_file has taken the other hosts' rows of (kind,
    id) as they are now: it logged taking such counts as of a database
    time a second past the newest of those rows."""
    newest = H.sql("SELECT MAX(updated_at) AS t FROM bltcy_rate_counts WHERE kind = %s AND id = %s",
                   (kind, id_))[0]["t"]
    check(newest is not None, "no rows of kind %d for %d" % (kind, id_))

    def seen():
        with open(log_file, errors="replace") as f:
            text = f.read()
        return any(int(t) >= newest + 1000 for t in
                   re.findall(re.escape(what) + r" taken \(as of (\d+)\)", text))
    harness.wait_for(seen, 10, "an exchange in %s" % log_file)


@S.test(False)
def test_two_pools_share_counts():
    """Two pools on one database share a user's counts once they have
    traded them (once a second): the total cap counts both hosts'
    requests, and the user's in-flight cap the requests held on the
    other host."""
    p = H.start_pool("other", workers=1, LOG_LEVEL="debug")
    try:
        rate_on(DurationMinutes=1, Count=4, SuccessCount=1000, ports=[H.lighttpd_port, p.port])
        user, token, chan = account()
        for i in range(2):
            expect_ok(post(H.lighttpd_port, token), "main pool %d" % (i + 1))
            expect_ok(post(p.port, token), "other pool %d" % (i + 1))
        harness.wait_for(lambda: H.sql("SELECT COALESCE(SUM(n), 0) AS n FROM bltcy_rate_counts"
                                       " WHERE kind = 2 AND id = %s", (user["id"],))[0]["n"] == 4,
                         10, "both pools' counts in the database")
        exchanged(p.log_file, "slots of the other hosts' counts", 2, user["id"])
        before = H.counters(user, token, chan)
        refused(post(p.port, token), "rate_limit_exceeded", MSG_TOTAL % (1, 4),
                "the 5th, on the other pool")

        # in flight on one host, refused on the other
        u2, t2, c2 = account()
        set_limits("u", u2["id"], in_flight=1)
        path = KLING + "?xheld=%dx" % t2["id"]
        t, out = hold_one(H.lighttpd_port, t2, "xhold-%d" % t2["id"], path)
        harness.wait_for(lambda: H.sql("SELECT COALESCE(SUM(n), 0) AS n FROM bltcy_rate_counts"
                                       " WHERE kind = 5 AND id = %s", (u2["id"],))[0]["n"] == 1,
                         10, "the held request in the database")
        exchanged(p.log_file, "counts of the other hosts' requests in flight", 5, u2["id"])
        b2 = H.counters(u2, t2, c2)
        refused(post(p.port, t2), "too_many_requests_in_flight", MSG_IN_FLIGHT % ("该用户", 1),
                "on the other pool while one is held", hi=1)
        H.stub.release("xhold-%d" % t2["id"])
        t.join(30)
        expect_ok(out["r"], "the held request")
        unchanged(user, token, chan, before, "after the refusal")
    finally:
        p.stop()


def start(keep):
    global H
    H = harness.start_suite(keep, workers=WORKERS, config={"LOG_LEVEL": "debug"})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
