#!/usr/bin/python3
"""Integration tests of open-job caps: a token's and a user's tasks cap
(bltcy_limits.tasks), a channel's MaxTasks per key, and an upstream's 429
sending a job to the next key or channel.

The real pool behind lighttpd, a private MariaDB and the stub upstream,
whose jobs (modes job_submit, job_poll) stand for the upstream accounts.
Each test checks exact statuses, bodies, quotas, logs rows, bltcy_places
rows and what the stub received. "Written" is read from the pool itself
(bltcy_usage_backlog 0 with no request in flight), never a fixed sleep.
The main pool never polls (TASK_POLL_RATE=0); the test of the relay's own
poll runs a pool of its own.

Prints one line per test and ends with `places: N passed, M failed`.

Usage: test_places.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import re
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SetupError, request  # noqa: E402
import runner  # noqa: E402
from runner import Fail, check, eq, expect_gw_error, expect_ok  # noqa: E402

H = None
S = runner.Suite("places", timeout=150, after_each=lambda: H.stub.reset())
Q = 1000
SUB = "/kling/v1/videos/text2video"
CAPACITY = ("channel_capacity_exhausted", "当前分组上游负载已饱和，请稍后再试")
TASKS = ("too_many_open_tasks", "未完成的任务数已达上限，请等待任务完成后再提交")


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"]), ("Content-Type", "application/json")]


def jobs(prefix=""):
    H.stub.script({"path": "^" + re.escape(prefix + SUB) + "$", "method": "POST",
                   "mode": "job_submit", "service": "kling"},
                  {"path": "^" + re.escape(prefix + SUB + "/"), "method": "GET",
                   "mode": "job_poll", "service": "kling"})


def submit(token, port=None):
    return request(port or H.lighttpd_port, "POST", SUB, auth(token), b'{"prompt":"a cat"}')


def task_id(r):
    return r.json()["data"]["task_id"]


def limit(scope, id_, tasks):
    H.sql("INSERT INTO bltcy_limits (scope, id, tasks) VALUES (%s, %s, %s)", (scope, id_, tasks))


def written(port=None):
    harness.wait_written(port or H.lighttpd_port)


def submits_seen():
    return [x for x in H.stub.requests() if x["method"] == "POST"]


def key_of(rec):
    return harness.rec_header(rec, "Authorization")[0].split(" ", 1)[1]


def refused(r, err, what):
    expect_gw_error(r, 429, err[0], err[1], what)
    eq(r.header("Retry-After"), "5", what + ": Retry-After")


def places_row(scope, id_, key=""):
    rows = H.sql("SELECT open, granted FROM bltcy_places WHERE scope=%s AND id=%s AND key_hash=%s",
                 (scope, id_, key))
    return (rows[0]["open"], rows[0]["granted"]) if rows else None


def khash(key):
    import hashlib
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def client_poll_done(token, tid, port=None):
    """The job finishes upstream and a client's poll tells the relay."""
    H.stub.set_job(tid, "succeeded")
    r = request(port or H.lighttpd_port, "GET", SUB + "/" + tid, auth(token))
    expect_ok(r, "poll of %s" % tid)
    rows = H.sql("SELECT state FROM bltcy_tasks WHERE task_id=%s", (tid,))
    eq(rows[0]["state"], "succeeded", "task %s after the client's poll" % tid)


# ---------------------------------------------------------------------------


@S.test(fronts=False)
def test_token_tasks_cap():
    """Two open jobs for the token: the third submit is refused at once,
    nothing forwarded or charged; a finished job's place is free at once."""
    user, token, chan = H.setup_account(setting={"passthrough_quota": Q})
    limit("t", token["id"], 2)
    jobs()
    t1 = task_id(submit(token))
    submit(token)
    written()
    s0 = H.counters(user, token, None)
    r = submit(token)
    refused(r, TASKS, "third submit")
    eq(len(submits_seen()), 2, "submits the stub saw")
    written()
    eq(H.counters(user, token, None), s0, "account after the refusal")
    eq(places_row("t", token["id"]), (2, 0), "token places (open, granted)")
    client_poll_done(token, t1)
    eq(places_row("t", token["id"])[0], 1, "token open jobs after one finished")
    expect_ok(submit(token), "submit after a job finished")
    r = submit(token)
    refused(r, TASKS, "submit at the cap again")
    written()
    eq(places_row("t", token["id"]), (2, 0), "token places at the end")


@S.test(fronts=False)
def test_uncharged_task_holds_place():
    """A free channel's task is written at once (not through the usage
    ring) and holds its places all the same."""
    user, token, chan = H.setup_account(setting={"passthrough_quota": -1, "MaxTasks": 5})
    limit("t", token["id"], 1)
    jobs()
    tid = task_id(submit(token))
    rows = H.sql("SELECT places, key_hash, quota FROM bltcy_tasks WHERE task_id=%s", (tid,))
    eq([(x["places"], x["key_hash"], x["quota"]) for x in rows], [(5, khash(chan["key"]), 0)],
       "the task's row")
    eq(places_row("t", token["id"]), (1, 0), "token places")
    eq(places_row("k", chan["id"], khash(chan["key"])), (1, 0), "key places")
    refused(submit(token), TASKS, "second submit")
    eq(len(submits_seen()), 1, "submits the stub saw")
    client_poll_done(token, tid)
    eq(places_row("t", token["id"]), (0, 0), "token places after the job")


@S.test(fronts=False)
def test_user_tasks_cap():
    """A user's cap counts the jobs of all its tokens."""
    user, token, chan = H.setup_account(setting={"passthrough_quota": Q})
    token2 = H.make_token(user)
    limit("u", user["id"], 1)
    jobs()
    expect_ok(submit(token), "first submit")
    written()
    s0 = H.counters(user, token2, None)
    refused(submit(token2), TASKS, "the other token's submit")
    eq(len(submits_seen()), 1, "submits the stub saw")
    eq(H.counters(user, token2, None), s0, "account after the refusal")
    eq(places_row("u", user["id"]), (1, 0), "user places")


@S.test(fronts=False)
def test_max_tasks_keys():
    """MaxTasks 1 on a channel of two keys: the second submit goes to the
    key with room, the third finds both full: 429, nothing forwarded or
    charged; a job finished frees its key."""
    user, token, _ = H.setup_account(channel=False)
    keys = ["ka-" + harness.rand_key(20), "kb-" + harness.rand_key(20)]
    chan = H.make_channel(user["group"], key="\n".join(keys),
                          setting={"passthrough_quota": Q, "MaxTasks": 1})
    jobs()
    r1 = submit(token)
    expect_ok(r1, "first submit")
    expect_ok(submit(token), "second submit")
    got = [key_of(x) for x in submits_seen()]
    eq(sorted(got), sorted(keys), "keys of the two submits")
    written()
    s0 = H.counters(user, token, None)
    r = submit(token)
    refused(r, CAPACITY, "third submit")
    eq(len(submits_seen()), 2, "submits the stub saw")
    written()
    eq(H.counters(user, token, None), s0, "account after the refusal")
    for k in keys:
        eq(places_row("k", chan["id"], khash(k)), (1, 0), "places of a key")
    m = request(H.lighttpd_port, "GET", "/bltcy/metrics").body.decode()
    check('bltcy_key_open_jobs{channel="%d",key="%s"}' % (chan["id"], khash(keys[0])) in m,
          "no open-jobs gauge for the key")
    client_poll_done(token, task_id(r1))
    eq(sorted(places_row("k", chan["id"], khash(k)) for k in keys), [(0, 0), (1, 0)],
       "places of the keys after a job finished")
    expect_ok(submit(token), "submit after a job finished")
    eq(key_of(submits_seen()[-1]), got[0], "key of the job that finished")


@S.test(fronts=False)
def test_own_poll_frees():
    """The relay's own poll learns a job finished: its key's place is free
    at once."""
    p = H.start_pool("own-poll", workers=1, TASK_POLL_INTERVAL=1, TASK_POLL_RATE=6000)
    try:
        user, token, chan = H.setup_account(setting={"passthrough_quota": Q, "MaxTasks": 1})
        jobs()
        tid = task_id(submit(token, p.port))
        written(p.port)
        refused(submit(token, p.port), CAPACITY, "second submit")
        H.stub.set_job(tid, "succeeded")
        harness.wait_for(lambda: H.sql("SELECT state FROM bltcy_tasks WHERE task_id=%s",
                                       (tid,))[0]["state"] == "succeeded", 20, "the relay's poll")
        eq(places_row("k", chan["id"], khash(chan["key"]))[0], 0, "open jobs of the key")
        expect_ok(submit(token, p.port), "submit after the job finished")
    finally:
        p.stop()


def two_channels(user, a_keys, b_key):
    base = "http://127.0.0.1:%d" % H.stub_port
    a = H.make_channel(user["group"], base_url=base + "/A", key="\n".join(a_keys), priority=10,
                       setting={"passthrough_quota": Q})
    b = H.make_channel(user["group"], base_url=base + "/B", key=b_key, priority=0,
                       setting={"passthrough_quota": Q})
    return a, b


@S.test(fronts=False)
def test_upstream_429_next_key_then_channel():
    """Both keys of the first channel answer 429: the job goes to the
    other key, then to the next channel, and is charged once there."""
    user, token, _ = H.setup_account(channel=False)
    a_keys = ["a1-" + harness.rand_key(20), "a2-" + harness.rand_key(20)]
    b_key = "b1-" + harness.rand_key(20)
    a, b = two_channels(user, a_keys, b_key)
    H.stub.script({"path": "^/A/", "method": "POST", "status": 429,
                   "body": '{"code":1303,"message":"parallel task over resource pack limit"}'})
    jobs("/B")
    r = submit(token)
    expect_ok(r, "submit")
    seen = submits_seen()
    eq([x["path"].split("/")[1] for x in seen], ["A", "A", "B"], "channels tried in turn")
    eq(sorted(key_of(x) for x in seen[:2]), sorted(a_keys), "keys of the first channel")
    eq(key_of(seen[2]), b_key, "key of the second channel")
    written()
    logs = H.logs(token)
    eq([(x["channel_id"], x["quota"]) for x in logs], [(b["id"], Q)], "logs rows")


@S.test(fronts=False)
def test_upstream_429_all_refuse():
    """Every key of every channel answers 429: the client gets the gateway's
    429, nothing is charged, and no breaker opens (the next submit goes to
    the first channel again)."""
    user, token, _ = H.setup_account(channel=False)
    a_keys = ["a1-" + harness.rand_key(20)]
    a, b = two_channels(user, a_keys, "b1-" + harness.rand_key(20))
    H.stub.script({"path": "^/[AB]/", "method": "POST", "status": 429,
                   "body": '{"code":1303,"message":"busy"}'})
    s0 = H.counters(user, token, None)
    for i in range(6):      # more than BREAKER_THRESHOLD (5)
        refused(submit(token), CAPACITY, "submit %d" % i)
    eq(len(submits_seen()), 12, "submits the stub saw (two a request)")
    written()
    eq(H.counters(user, token, None), s0, "account after the refusals")
    H.stub.reset()
    jobs("/A")
    expect_ok(submit(token), "submit once the account has room")
    eq(submits_seen()[0]["path"].split("/")[1], "A", "channel of the first priority")


@S.test(fronts=False)
def test_two_pools_exact():
    """Two pools on one database, concurrent submits of one token (tasks
    cap 5) on a channel of two keys (MaxTasks 3 each): never more than the
    caps, and exactly the caps once every spare place went back."""
    p = H.start_pool("second", workers=2)
    try:
        user, token, _ = H.setup_account(channel=False)
        keys = ["ka-" + harness.rand_key(20), "kb-" + harness.rand_key(20)]
        chan = H.make_channel(user["group"], key="\n".join(keys),
                              setting={"passthrough_quota": Q, "MaxTasks": 3})
        limit("t", token["id"], 5)
        user2 = H.make_user()
        H.sql("UPDATE users SET `group`=%s WHERE id=%s", (user["group"], user2["id"]))
        token2 = H.make_token(user2)
        jobs()
        ports = [H.lighttpd_port, p.port]

        def burst(tok, n):
            out = [None] * n

            def one(i):
                out[i] = submit(tok, ports[i % 2])
            ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            return out

        def fill(tok, err, cap, n):
            """Bursts, then (spare places back) one at a time: exactly cap."""
            ok = sum(1 for r in burst(tok, n) if r.status == 200)
            check(ok <= cap, "%d submits passed a cap of %d" % (ok, cap))
            for port in ports:
                written(port)
            harness.wait_for(lambda: H.sql("SELECT COALESCE(SUM(granted), 0) AS g FROM bltcy_places"
                                           " WHERE id IN (%s, %s)", (token["id"], chan["id"]))[0]["g"] == 0,
                             10, "spare places given back")
            for i in range(cap - ok):
                expect_ok(submit(tok, ports[i % 2]), "submit %d below the cap" % i)
            for port in ports:
                refused(submit(tok, port), err, "submit at the cap")

        fill(token, TASKS, 5, 20)
        fill(token2, CAPACITY, 1, 10)
        for port in ports:
            written(port)
        got = [key_of(x) for x in submits_seen()]
        eq(len(got), 6, "submits the stub saw")
        eq(sorted(got.count(k) for k in keys), [3, 3], "jobs per key")
        eq(places_row("t", token["id"]), (5, 0), "token places")
        for k in keys:
            eq(places_row("k", chan["id"], khash(k)), (3, 0), "places of a key")
    finally:
        p.stop()


def _statements(token, n):
    """Statements the database ran for n sequential submits of token."""
    def questions():
        return int(H.sql("SHOW GLOBAL STATUS WHERE Variable_name = 'Questions'")[0]["Value"])
    for i in range(300):        # the batches grown to their steady size
        expect_ok(submit(token), "warm-up submit %d" % i)
    written()
    a = questions()
    own = questions() - a
    q0 = questions()
    for i in range(n):
        expect_ok(submit(token), "submit %d" % i)
    written()
    return questions() - q0 - own


@S.test(fronts=False)
def test_round_trips_per_submit():
    """The steady-state cost of the caps: statements per submit with a
    token tasks cap and MaxTasks set, against the same without."""
    n = 200
    jobs()
    user, token, chan = H.setup_account(setting={"passthrough_quota": Q})
    free = _statements(token, n)
    user2, token2, chan2 = H.setup_account(setting={"passthrough_quota": Q, "MaxTasks": 10 ** 6})
    limit("t", token2["id"], 10 ** 6)
    capped = _statements(token2, n)
    sys.stdout.write("# database statements per submit over %d sequential submits: no cap %.3f (%d), "
                     "token tasks cap and MaxTasks %.3f (%d)\n" % (n, free / n, free, capped / n, capped))
    eq(places_row("t", token2["id"])[0], 500, "open jobs of the capped token")
    # a take asks for a batch of places (up to 256) and the usage writer
    # moves a batch's places in one statement per scope: what is left per
    # submit is largest for slow sequential traffic like this
    check((capped - free) / n < 0.25, "the caps cost %.3f statements per submit, want < 0.25"
          % ((capped - free) / n))


def start(keep):
    global H
    H = harness.start_suite(keep, config={"TASK_POLL_RATE": "0"})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
