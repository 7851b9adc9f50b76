#!/usr/bin/python3
"""Integration tests of the front door: which answers an Idempotency-Key
keeps, how a repeat waits for the first, the pruning of old keys, and the
cost of requests with unknown tokens (the refused keys a worker
remembers, and the throttle of failed token checks per client address).

The real pool behind lighttpd and nginx, a private MariaDB and the stub
upstream. Requests that must come from other client addresses talk
FastCGI to the pool directly, with REMOTE_ADDR set as a front server sets
it.

Prints one line per test and ends with `door: N passed, M failed`.

Usage: test_door.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import re
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
from harness import request  # noqa: E402
from test_hardening import FcgiRequest, fcgi_params  # noqa: E402

H = None
S = runner.Suite("door", timeout=150, after_each=lambda: H.stub.script(replace=True))
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, expect_gw_error, expect_ok = runner.short, runner.expect_gw_error, runner.expect_ok

KLING = "/kling/v1/videos/text2video"
IDEM_WAIT = 4       # seconds a repeat waits for the first (IDEMPOTENCY_WAIT)
WORKERS = 2
FAIL_BURST = 100    # RELAY_AUTH_FAIL_BURST: the default
FAIL_RATE = 1       # RELAY_AUTH_FAIL_RATE
FAIL_DELAY_MS = 40  # RELAY_AUTH_FAIL_DELAY_MS


def auth(token, extra=()):
    return harness.auth(token, harness.JSON + list(extra))


idem = harness.idem


def db_status(name):
    """A MariaDB server status counter (SHOW GLOBAL STATUS)."""
    return int(H.sql("SHOW GLOBAL STATUS LIKE %s", (name,))[0]["Value"])


def rows_read(table):
    """Rows read from table since the server started counting (userstat)."""
    rows = H.sql("SELECT ROWS_READ AS n FROM INFORMATION_SCHEMA.TABLE_STATISTICS"
                 " WHERE TABLE_SCHEMA = 'bltcy' AND TABLE_NAME = %s", (table,))
    return int(rows[0]["n"]) if rows else 0


def refusals(port=None, strict=True):
    """bltcy_token_refusals_total of the pool behind port, by label (with
    strict=False, {} when the pool does not say)."""
    r = request(port or H.lighttpd_port, "GET", "/bltcy/metrics", timeout=10)
    eq(r.status, 200, "GET /bltcy/metrics")
    out = {}
    for line in r.body.decode().splitlines():
        m = re.match(r'^bltcy_token_refusals_total\{by="([a-z]+)"\} (\d+)$', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    check(set(out) == {"lookup", "memory", "throttle"} or not (strict or out),
          "bltcy_token_refusals_total in /bltcy/metrics: %r" % out)
    return out


def fcgi(sock, addr, key, method="GET", path=KLING + "/x"):
    """One request straight to a pool's FastCGI socket, from client
    address addr (REMOTE_ADDR), with token key: (status, head, body)."""
    p = fcgi_params(method, path, {"key": key}, extra={"REMOTE_ADDR": addr})
    rq = FcgiRequest(sock, p)
    rq.end()
    return rq.answer(timeout=30)


def gw_body_ok(body, code, msg, what):
    """A gateway error body in new-api's shape, whatever its request id."""
    try:
        e = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        raise Fail("%s: not a gateway error: %r" % (what, body[:300]))
    eq((e.get("type"), e.get("code")), ("new_api_error", code), what + ": type, code")
    check(re.fullmatch(re.escape(msg) + r" \(request id: [0-9a-f]{26}\)", e.get("message", "")),
          "%s: message %r" % (what, e.get("message")))


def insert_token(user, key):
    """A token with the given key, inserted as new-api's admin does."""
    now = int(time.time())
    return H.sql("INSERT INTO tokens (user_id, `key`, status, name, created_time, accessed_time,"
                 " expired_time, remain_quota, unlimited_quota, model_limits_enabled, model_limits,"
                 " allow_ips, used_quota, `group`) VALUES"
                 " (%s, %s, 1, %s, %s, %s, -1, %s, 0, 0, '', '', 0, '')",
                 (user["id"], key, harness.rand_name("t"), now, now, 10 ** 12))


# ---------------------------------------------------------------------------
# Idempotency-Key: what is kept, how a repeat waits, how keys are pruned


@S.test(("lighttpd",))
def test_idem_try_again_not_kept(front, port):
    """An upstream answer that says "try again" (401 about the channel's
    key, 408, 425, 429) frees the key as a 5xx does: the retry with the
    same key is forwarded, and its answer is the one kept. A 4xx about the
    request itself (400, 404, 409, 422) is kept and replayed."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000}, auto_ban=0)
    body = b'{"prompt":"a cat","duration":5}'
    for st in (429, 408, 425, 401):
        key = harness.rand_name("idem")
        H.stub.script({"path": "^" + KLING + "$", "method": "POST", "status": st, "times": 1,
                       "headers": [["Content-Type", "application/json"]],
                       "body": '{"error":"try again %d"}' % st},
                      {"path": "^" + KLING + "$", "method": "POST", "mode": "task_create"},
                      replace=True)
        seen = len(H.stub.matching("^" + KLING + "$"))
        r = request(port, "POST", KLING, auth(token, idem(key)), body)
        if st == 429:   # the only key refused the job: the gateway's 429
            runner.expect_gw_error(r, 429, "channel_capacity_exhausted",
                                   "当前分组上游负载已饱和，请稍后再试", "429: the first")
        else:
            eq((r.status, r.body), (st, b'{"error":"try again %d"}' % st), "%d: the first" % st)
        r = request(port, "POST", KLING, auth(token, idem(key)), body)
        expect_ok(r, "%d: the retry" % st)
        eq(r.header("Idempotent-Replayed"), None, "%d: the retry was forwarded" % st)
        eq(len(H.stub.matching("^" + KLING + "$")) - seen, 2, "%d: forwarded" % st)
        again = request(port, "POST", KLING, auth(token, idem(key)), body)
        eq((again.status, again.body, again.header("Idempotent-Replayed")),
           (200, r.body, "true"), "%d: the retry's answer is kept" % st)
    for st in (400, 404, 409, 422):
        key = harness.rand_name("idem")
        H.stub.script({"path": "^" + KLING + "$", "method": "POST", "status": st,
                       "headers": [["Content-Type", "application/json"]],
                       "body": '{"error":"bad request %d"}' % st}, replace=True)
        seen = len(H.stub.matching("^" + KLING + "$"))
        r = request(port, "POST", KLING, auth(token, idem(key)), body)
        eq(r.status, st, "%d: the first" % st)
        again = request(port, "POST", KLING, auth(token, idem(key)), body)
        eq((again.status, again.body, again.header("Idempotent-Replayed")),
           (st, r.body, "true"), "%d: replayed" % st)
        eq(len(H.stub.matching("^" + KLING + "$")) - seen, 1, "%d: forwarded" % st)


@S.test(("lighttpd",))
def test_idem_wait_backs_off(front, port):
    """A repeat waiting for the first's answer looks at the key's row after
    50 ms, then ever less often (up to once a second): over a 4 s wait it
    reads the row about 9 times, not 80 (MariaDB's table statistics). An
    answer that comes while it waits is still seen within a second."""
    H.sql("SET GLOBAL userstat = 1")
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    key = harness.rand_name("idem")
    ev = harness.rand_name("ev")
    H.stub.script({"path": "^" + KLING + "$", "method": "POST", "mode": "task_create",
                   "hang": 30, "event": ev}, replace=True)
    body = b'{"duration":5}'
    first = {}
    seen = len(H.stub.matching("^" + KLING + "$"))
    t = harness.request_in_thread(first, port, "POST", KLING, auth(token, idem(key)), body)
    check(H.stub.wait("^" + KLING + "$", seen + 1), "the first reached the stub")
    read0 = rows_read("bltcy_idempotency")
    t0 = time.time()
    r = request(port, "POST", KLING, auth(token, idem(key)), body)
    waited = time.time() - t0
    reads = rows_read("bltcy_idempotency") - read0
    expect_gw_error(r, 409, "idempotency_key_in_flight",
                    "相同 Idempotency-Key 的请求仍在处理中，请稍后重试", "repeat in flight")
    check(IDEM_WAIT - 0.2 <= waited < IDEM_WAIT + 2, "repeat in flight waited %.1f s" % waited)
    check(reads <= 12, "a %.1f s wait read the key's row %d times" % (waited, reads))
    H.stub.release(ev)
    t.join(30)
    expect_ok(first.get("r"), "the first")
    # the first answers after 1.5 s: the waiting repeat has it soon after
    key = harness.rand_name("idem")
    H.stub.script({"path": "^" + KLING + "$", "method": "POST", "mode": "task_create",
                   "hang": 1.5}, replace=True)
    first = {}
    seen = len(H.stub.matching("^" + KLING + "$"))
    t = harness.request_in_thread(first, port, "POST", KLING, auth(token, idem(key)), body)
    check(H.stub.wait("^" + KLING + "$", seen + 1), "the first reached the stub")
    t0 = time.time()
    r = request(port, "POST", KLING, auth(token, idem(key)), body)
    waited = time.time() - t0
    t.join(30)
    expect_ok(first.get("r"), "the first")
    eq((r.status, r.body, r.header("Idempotent-Replayed")), (200, first["r"].body, "true"),
       "the repeat got the first's answer")
    check(waited < 1.5 + 1.2, "the repeat of a first answered after 1.5 s took %.2f s" % waited)


@S.test(False)
def test_idem_prune_until_done():
    """25,000 keys past their day (kept 4xx answers, as free requests leave
    them) are all deleted by the next pruning, a slice at a time, however
    many there are; keys younger than a day stay."""
    old = int(time.time()) - 2 * 86400
    tid = 900000000 + int(time.time()) % 1000000
    H.sql("INSERT INTO bltcy_idempotency (token_id, idem_key, body_hash, state, owner,"
          " created_at, status, headers, body, complete)"
          " SELECT %s, CONCAT('old-', seq), REPEAT('a', 64), 1, 'gone/1', %s, 404, '',"
          " '{\"error\":\"not found\"}', 1 FROM seq_1_to_25000", (tid, old))
    H.sql("INSERT INTO bltcy_idempotency (token_id, idem_key, body_hash, state, owner,"
          " created_at, status, headers, body, complete)"
          " SELECT %s, CONCAT('new-', seq), REPEAT('a', 64), 1, 'here/1', %s, 400, '', '{}', 1"
          " FROM seq_1_to_5", (tid, int(time.time()) - 3600))

    def left(prefix):
        return H.sql("SELECT COUNT(*) AS n FROM bltcy_idempotency WHERE token_id=%s"
                     " AND idem_key LIKE %s", (tid, prefix + "%"))[0]["n"]
    eq(left("old-"), 25000, "rows before")
    # a pool's master prunes at its first tick, then hourly
    pool = H.start_pool("prune", workers=1)
    try:
        try:
            harness.wait_for(lambda: left("old-") == 0, 30, "the old keys pruned")
        except harness.SetupError:
            raise Fail("old keys left 30 s after a pool started: %d of 25000" % left("old-"))
        eq(left("new-"), 5, "keys younger than a day")
    finally:
        pool.stop()


# ---------------------------------------------------------------------------
# unknown tokens: remembered, and throttled per client address


BAD_TOKEN_MSG = "无效的令牌"
THROTTLED_MSG = "此地址无效令牌请求过多，请稍后重试"


@S.test(False)
def test_unknown_token_remembered():
    """200 requests with one unknown token, 8 at a time (each from its own
    address, so no throttle applies), are all refused 401, but the token
    is looked up at most once per worker: the rest are refused from
    memory, and the burst costs far fewer database statements than
    requests."""
    key = harness.rand_key(48)
    before = refusals(strict=False)
    sel0, q0 = db_status("Com_select"), db_status("Questions")
    n = 200
    out = [None] * n

    def one(i):
        try:
            out[i] = fcgi(H.relay_sock, "10.1.%d.%d" % (i // 250, i % 250 + 1), key)
        except Exception as e:  # noqa: BLE001
            out[i] = e
    for at in range(0, n, 8):
        th = [threading.Thread(target=one, args=(i,)) for i in range(at, min(at + 8, n))]
        for t in th:
            t.start()
        for t in th:
            t.join(60)
    for i, got in enumerate(out):
        check(isinstance(got, tuple), "request %d: %r" % (i, got))
        eq(got[0], 401, "request %d" % i)
        gw_body_ok(got[2], "invalid_token", BAD_TOKEN_MSG, "request %d" % i)
    selects, questions = db_status("Com_select") - sel0, db_status("Questions") - q0
    check(selects <= n // 5, "%d requests with one unknown token: %d SELECTs (%d statements)" % (
        n, selects, questions))
    after = refusals()
    got = {k: after[k] - before[k] for k in after}
    check(got["lookup"] <= WORKERS, "looked up %d times (workers: %d): %r" % (
        got["lookup"], WORKERS, got))
    eq(got["lookup"] + got["memory"], n, "refusals counted: %r" % got)
    eq(got["throttle"], 0, "throttled")


@S.test(False)
def test_token_created_after_refusal():
    """A key refused (and remembered) works as soon as a token with it is
    created: creating a token moves the auth counter, and a remembered
    refusal holds only while the counter read at most 0.1 s before stands
    where it stood (so within 0.1 s and a round trip)."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    key = harness.rand_key(48)
    before = refusals(strict=False)
    for i in range(6):
        r = request(H.lighttpd_port, "GET", KLING + "/x", [("Authorization", "Bearer sk-" + key)])
        expect_gw_error(r, 401, "invalid_token", BAD_TOKEN_MSG, "refusal %d" % i)
    got = refusals(strict=False)
    if got:     # a pool that says how: the key was remembered
        check(got["memory"] > before["memory"], "the refusals came from memory too: %r -> %r" % (
            before, got))
    insert_token(user, key)
    t0 = time.time()
    tries = []
    while True:     # every 20 ms: well inside the address's failed checks
        r = request(H.lighttpd_port, "GET", KLING + "/x", [("Authorization", "Bearer sk-" + key)])
        tries.append((r.status, round(time.time() - t0, 3)))
        if r.status == 200 or time.time() - t0 > 1:
            break
        time.sleep(0.02)
    took = time.time() - t0
    expect_ok(r, "the new token (%r)" % tries)
    check(took < 0.3, "the new token was refused for %.2f s after it was made: %r" % (took, tries))


@S.test(False)
def test_failed_checks_throttled():
    """An address that failed RELAY_AUTH_FAIL_BURST (100, the default)
    token checks, counted across the workers of the host, is answered 429
    in new-api's shape with Retry-After and without a lookup, for any key
    no worker has found a token for; a token the host has served still
    works from there, and another address is not throttled. The bucket
    refills at RELAY_AUTH_FAIL_RATE a second (1 in this suite, so that the
    test's own pace refills nothing). Each 429 waits
    RELAY_AUTH_FAIL_DELAY_MS (40 here), so that a flood that sends again
    when answered sends slowly."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    fresh = H.make_token(user)
    a, b = "10.2.0.1", "10.2.0.2"
    st, _, body = fcgi(H.relay_sock, "10.2.0.9", token["key"])
    eq(st, 200, "the valid token, from elsewhere: %r" % body[:200])
    base = refusals(strict=False)
    for i in range(FAIL_BURST):
        st, head, body = fcgi(H.relay_sock, a, harness.rand_key(48))
        eq(st, 401, "failed check %d from %s" % (i + 1, a))
    emptied = time.time()
    for i in range(10):
        t0 = time.time()
        st, head, body = fcgi(H.relay_sock, a, harness.rand_key(48))
        took = time.time() - t0
        eq(st, 429, "unknown token %d past the burst" % (i + 1))
        check(took >= FAIL_DELAY_MS / 1000.0, "429 %d came after %.3f s" % (i + 1, took))
        gw_body_ok(body, "too_many_invalid_tokens", THROTTLED_MSG, "429 %d" % (i + 1))
        check(re.search(r"^Retry-After: 1\r?$", head, re.M), "Retry-After: %r" % head)
    got = refusals()
    # the 100 failed checks were lookups; the 10 throttled ones none
    eq({k: got[k] - base[k] for k in got}, {"lookup": FAIL_BURST, "memory": 0, "throttle": 10},
       "refusals")
    for i in range(4):      # whichever worker takes it
        st, _, body = fcgi(H.relay_sock, a, token["key"])
        eq(st, 200, "a token the host has served, from the throttled address: %r" % body[:200])
    st, _, body = fcgi(H.relay_sock, a, fresh["key"])
    eq(st, 429, "a token the host has not served, from the throttled address")
    st, _, body = fcgi(H.relay_sock, b, harness.rand_key(48))
    eq(st, 401, "an unknown token from another address")
    gw_body_ok(body, "invalid_token", BAD_TOKEN_MSG, "another address")
    st, _, body = fcgi(H.relay_sock, b, fresh["key"])
    eq(st, 200, "the new token from another address")
    st, _, body = fcgi(H.relay_sock, a, fresh["key"])
    eq(st, 200, "and now from the throttled address too")
    # one failure back every second since the bucket was emptied
    time.sleep(1.0 / FAIL_RATE)
    n = 0
    while fcgi(H.relay_sock, a, harness.rand_key(48))[0] == 401 and n < FAIL_BURST:
        n += 1
    refilled = (time.time() - emptied) * FAIL_RATE
    check(1 <= n <= refilled + 1, "%d failed checks allowed again after %.1f refilled" % (
        n, refilled))


@S.test(False)
def test_throttle_holds_few_threads():
    """Held-back 429s take at most RELAY_THREADS / 2 threads of the host,
    counted across its workers: in a pool of two workers of 8 threads with
    RELAY_AUTH_FAIL_DELAY_MS 3000, 8 throttled requests at once get 4
    slow 429s and 4 at once, and a valid client is served meanwhile."""
    pool = H.start_pool("door8", workers=2, RELAY_THREADS=8, RELAY_AUTH_FAIL_DELAY_MS=3000)
    try:
        user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
        a = "10.3.0.1"
        for i in range(FAIL_BURST):
            eq(fcgi(pool.sock, a, harness.rand_key(48))[0], 401, "failed check %d" % (i + 1))
        out = [None] * 8

        def one(i):
            t0 = time.time()
            st = fcgi(pool.sock, a, harness.rand_key(48))[0]
            out[i] = (st, time.time() - t0)
        th = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in th:
            t.start()
        t0 = time.time()
        st, _, body = fcgi(pool.sock, "10.3.0.2", token["key"])
        served = time.time() - t0
        for t in th:
            t.join(30)
        eq(st, 200, "the valid client meanwhile: %r" % body[:200])
        check(served < 2, "the valid client waited %.1f s" % served)
        eq(sorted(o[0] for o in out), [429] * 8, "statuses")
        times = sorted(round(o[1], 2) for o in out)
        eq(len([x for x in times if x >= 2.9]), 4, "429s held back (times %r)" % times)
        check(all(x < 2 for x in times[:4]), "the others at once (times %r)" % times)
    finally:
        pool.stop()


# ---------------------------------------------------------------------------
# runner


def start(keep):
    global H
    H = harness.start_suite(keep, workers=WORKERS, config={
        "IDEMPOTENCY_WAIT": str(IDEM_WAIT), "RELAY_AUTH_FAIL_BURST": str(FAIL_BURST),
        "RELAY_AUTH_FAIL_RATE": str(FAIL_RATE),
        "RELAY_AUTH_FAIL_DELAY_MS": str(FAIL_DELAY_MS)})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
