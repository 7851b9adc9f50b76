#!/usr/bin/python3
"""Integration tests of the task lifecycle: a task is charged once at its
submit; a poll answer (a client's, or the relay's own poller's) that says
it failed refunds it exactly once, as does its timeout; a succeeded task
keeps its charge; a refund cut off by a crash is done once after it.

Each test runs on a pool of its own (METERING strict and lease where it
matters) against the stub's jobs (modes job_submit and job_poll), and
checks exact quotas, used counters, logs rows and bltcy_tasks rows.
"Written" is read from the pool itself (bltcy_usage_backlog 0 with no
request in flight) and states from the database, never a fixed sleep.
The main pool never polls (TASK_POLL_RATE=0), so a test's polls are its
own pool's.

Prints one line per test and ends with `tasks: N passed, M failed`.

Usage: test_tasks.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import hashlib
import json
import os
import re
import signal
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Harness, SetupError, request  # noqa: E402

import pymysql  # noqa: E402
import runner  # noqa: E402
from runner import Fail, check, eq, expect_ok, short  # noqa: E402

H = None
S = runner.Suite("tasks", timeout=150, after_each=lambda: H.stub.reset())
Q = 1000            # passthrough_quota of every channel here
MODES = ("strict", "lease")

# Each service's submit and poll as the stub's jobs answer them (and as
# the seeded bltcy_task_kinds rows expect): (submit path, poll path of id).
SERVICES = {
    "kling": ("/kling/v1/videos/text2video", lambda i: "/kling/v1/videos/text2video/" + i),
    "runway": ("/runway/v1/image_to_video", lambda i: "/runway/v1/tasks/" + i),
    "suno": ("/suno/submit/music", lambda i: "/suno/fetch/" + i),
    "pika": ("/pika/generate", lambda i: "/pika/generate/" + i),
    "jimeng": ("/jimeng/submit", lambda i: "/jimeng/submit?task_id=" + i),
}


# ---------------------------------------------------------------------------
# helpers


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"])]


def account(key=None):
    user = H.make_user(quota=10 ** 9)
    token = H.make_token(user, remain_quota=10 ** 9)
    chan = H.make_channel(user["group"], key=key, setting={"passthrough_quota": Q})
    return user, token, chan


def jobs_scripted(*services):
    rules = []
    for svc in services:
        sub, poll = SERVICES[svc]
        rules.append({"path": "^" + re.escape(sub) + "$", "method": "POST", "mode": "job_submit",
                      "service": svc})
        rules.append({"path": "^" + re.escape(poll("")), "method": "GET", "mode": "job_poll",
                      "service": svc})
    H.stub.script(*rules)


def pool(name, metering="strict", workers=2, **cfg):
    try:
        return H.start_pool(name, workers=workers, METERING=metering, **cfg)
    except SetupError as e:
        raise Fail("pool %s (%r) did not start: %s" % (name, cfg, e))


wait_written = harness.wait_written


def submit(port, token, svc="kling"):
    """A submit through the pool: (request id, task id). The task's row
    exists once its usage is written (wait_written)."""
    r = request(port, "POST", SERVICES[svc][0], auth(token) + [("Content-Type", "application/json")],
                json.dumps({"model": svc + "-test", "prompt": "a cat"}).encode())
    rid = expect_ok(r, "%s submit" % svc)
    body = r.json()
    if svc in ("runway", "pika"):
        tid = body["id"]
    elif svc == "suno":
        tid = body["data"]
    else:
        tid = body["data"]["task_id"]
    return rid, tid


def task_row(svc, tid):
    rows = H.sql("SELECT * FROM bltcy_tasks WHERE service=%s AND task_id=%s", (svc, tid))
    eq(len(rows), 1, "bltcy_tasks rows of %s %s" % (svc, tid))
    return rows[0]


def wait_state(svc, tid, state, timeout=20):
    try:
        return harness.wait_for(lambda: (lambda r: r if r and r[0]["state"] == state else None)(
            H.sql("SELECT * FROM bltcy_tasks WHERE service=%s AND task_id=%s", (svc, tid)))[0],
            timeout, "task %s of %s %s" % (tid, svc, state), interval=0.1)
    except SetupError as e:
        rows = H.sql("SELECT state, polls, next_poll, quota FROM bltcy_tasks WHERE service=%s AND task_id=%s",
                     (svc, tid))
        raise Fail("%s (row %r, now %d)" % (e, rows, time.time()))


def money(user, token, chan):
    """What the account has and has used: the token's remain_quota and the
    user's quota with what their leases still hold (lease metering), and
    the used_quota of token, user and channel."""
    t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
    u = H.sql("SELECT quota, used_quota FROM users WHERE id=%s", (user["id"],))[0]
    c = H.sql("SELECT used_quota FROM channels WHERE id=%s", (chan["id"],))[0]
    lt = H.sql("SELECT IFNULL(SUM(amount), 0) AS a FROM bltcy_leases WHERE token_id=%s", (token["id"],))[0]["a"]
    lu = H.sql("SELECT IFNULL(SUM(amount), 0) AS a FROM bltcy_leases WHERE user_id=%s", (user["id"],))[0]["a"]
    return {"token_remain": int(t["remain_quota"] + lt), "user_quota": int(u["quota"] + lu),
            "token_used": int(t["used_quota"]), "user_used": int(u["used_quota"]),
            "chan_used": int(c["used_quota"])}


def less(m, q):
    """m after a charge of q."""
    return {"token_remain": m["token_remain"] - q, "user_quota": m["user_quota"] - q,
            "token_used": m["token_used"] + q, "user_used": m["user_used"] + q,
            "chan_used": m["chan_used"] + q}


def refund_logs(token):
    return H.sql("SELECT * FROM logs WHERE token_id=%s AND type=6 ORDER BY id", (token["id"],))


def check_refunded_once(svc, tid, token, rid, state="failed"):
    """One type-6 row naming the task, the task row refunded with its
    whole quota."""
    row = wait_state(svc, tid, "refunded")
    eq((row["quota"], row["refunded_quota"], row["request_id"]), (Q, Q, rid),
       "task row quota, refunded_quota, request_id")
    logs = refund_logs(token)
    eq(len(logs), 1, "type-6 logs rows of the token")
    other = json.loads(logs[0]["other"])
    eq((logs[0]["quota"], other.get("task_id"), other.get("service"), other.get("request_id"),
        other.get("state")), (Q, tid, svc, rid, state), "refund row: quota, other's task_id, service, "
       "request_id, state")
    word = "任务超时" if state == "timeout" else "任务失败"
    check(logs[0]["content"].startswith(word) and tid in logs[0]["content"],
          "refund row content %r" % logs[0]["content"])
    return row


def log_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def per_mode(fn):
    """Register fn(metering) once per metering mode, as NAME_strict and
    NAME_lease."""
    for m in MODES:
        def case(m=m):
            fn(m)
        case.__name__ = "test_%s_%s" % (fn.__name__, m)
        case.__doc__ = fn.__doc__
        S.test(fronts=False)(case)
    return fn


# ---------------------------------------------------------------------------
# a client's polls


def client_poll_refund(metering):
    """A kling task the stub reports failed, polled by 50 clients at once:
    every poll is answered 200 with the upstream's answer, and the task
    is refunded exactly once: one type-6 row naming it, the token's and
    user's quota and the used counters of token, user and channel as they
    were before the submit."""
    user, token, chan = account()
    jobs_scripted("kling")
    p = pool("cp-" + metering, metering, TASK_POLL_RATE=0)
    try:
        start = money(user, token, chan)
        rid, tid = submit(p.port, token)
        wait_written(p.port)
        eq(money(user, token, chan), less(start, Q), "counters after the submit")
        row = task_row("kling", tid)
        eq((row["state"], row["quota"], row["request_id"], row["path"], row["user_id"], row["token_id"],
            row["channel_id"]), ("submitted", Q, rid, SERVICES["kling"][0], user["id"], token["id"], chan["id"]),
           "task row after the submit")
        check(H.stub.set_job(tid, "failed", "content moderation"), "stub job state")
        out = [{} for _ in range(50)]
        go = threading.Event()

        def poll(o):
            go.wait(10)
            try:
                o["r"] = request(p.port, "GET", SERVICES["kling"][1](tid), auth(token), timeout=60)
            except Exception as e:  # noqa: BLE001
                o["e"] = e
        th = [threading.Thread(target=poll, args=(o,)) for o in out]
        for t in th:
            t.start()
        go.set()
        for t in th:
            t.join(60)
        for i, o in enumerate(out):
            check("r" in o, "poll %d: %r" % (i, o.get("e")))
            eq(o["r"].status, 200, "poll %d status (%s)" % (i, short(o["r"])))
            eq(o["r"].json()["data"]["task_status"], "failed", "poll %d task_status" % i)
        eq(H.stub.jobs()[tid]["polls"], 50, "polls the stub saw")
        row = check_refunded_once("kling", tid, token, rid)
        eq(row["reason"], "content moderation", "task row reason")
        wait_written(p.port)
        eq(money(user, token, chan), start, "counters after the refund")
        eq(len(refund_logs(token)), 1, "type-6 rows once everything settled")
    finally:
        p.stop()


per_mode(client_poll_refund)


# ---------------------------------------------------------------------------
# the relay's own polling


def own_poll_refund(metering):
    """Tasks nobody polls, one of each service, failing upstream: the
    relay's poller (TASK_POLL_INTERVAL=1) asks for each on its poll path
    with the key its submit went with (the channel has two), and each is
    refunded once. Counters end as they started."""
    keys = ["chan-a-" + harness.rand_key(24), "chan-b-" + harness.rand_key(24)]
    user, token, chan = account(key="\n".join(keys))
    jobs_scripted(*SERVICES)
    p = pool("op-" + metering, metering, TASK_POLL_INTERVAL=1, TASK_POLL_RATE=6000)
    try:
        start = money(user, token, chan)
        made = []
        for svc in SERVICES:
            for _ in range(2 if svc == "kling" else 1):   # kling: both keys
                rid, tid = submit(p.port, token, svc)
                made.append((svc, rid, tid))
        wait_written(p.port)
        eq(money(user, token, chan), less(start, Q * len(made)), "counters after the submits")
        submit_auth = {}
        for rec in H.stub.requests():
            if rec["method"] == "POST":
                submit_auth[rec["path"]] = submit_auth.get(rec["path"], []) + [
                    harness.rec_header(rec, "Authorization")]
        for svc, rid, tid in made:
            check(H.stub.set_job(tid, "failed", "no credits"), "stub job %s" % tid)
        seen = set()
        for svc, rid, tid in made:
            row = wait_state(svc, tid, "refunded")
            eq((row["quota"], row["refunded_quota"], row["reason"]), (Q, Q, "no credits"),
               "%s task row quota, refunded_quota, reason" % svc)
            job = H.stub.jobs()[tid]
            check(job["polls"] >= 1, "%s: the stub saw no poll" % svc)
            eq(job["paths"][0], SERVICES[svc][1](tid), "%s poll path" % svc)
            key = [k for k in keys if hashlib.sha256(k.encode()).hexdigest()[:16] == row["key_hash"]]
            eq(len(key), 1, "%s: the task's key_hash names one of the channel's keys" % svc)
            eq(set(job["auth"]), {"Bearer " + key[0]}, "%s: the key of its polls" % svc)
            seen.add(key[0])
        eq(seen, set(keys), "keys the polls went with (two kling tasks, round robin)")
        logs = refund_logs(token)
        eq(sorted(json.loads(x["other"])["task_id"] for x in logs), sorted(t for _, _, t in made),
           "type-6 rows, one per task")
        eq(money(user, token, chan), start, "counters after the refunds")
        check(not any(k in line for line in log_lines(p.log_file) for k in keys),
              "a channel key in the pool's log")
    finally:
        p.stop()


per_mode(own_poll_refund)


def timeout_refund(metering):
    """A task that never finishes (the stub says running) is timed out by
    the poller after TASK_TIMEOUT=2 and refunded once."""
    user, token, chan = account()
    jobs_scripted("kling")
    p = pool("to-" + metering, metering, TASK_TIMEOUT=2, TASK_POLL_INTERVAL=1, TASK_POLL_RATE=600)
    try:
        start = money(user, token, chan)
        rid, tid = submit(p.port, token)
        check(H.stub.set_job(tid, "running"), "stub job state")
        wait_written(p.port)
        t0 = time.time()
        row = check_refunded_once("kling", tid, token, rid, state="timeout")
        eq((row["reason"], row["finished_at"] - row["created_at"] >= 2), ("timeout", True),
           "task row reason, finished 2 s after it was made at the earliest")
        check(H.stub.jobs()[tid]["polls"] >= 1, "the poller never polled the running task")
        eq(money(user, token, chan), start, "counters after the refund")
        check(time.time() - t0 < 15, "timed out late")
    finally:
        p.stop()


per_mode(timeout_refund)


def mixed_outcomes(metering):
    """Two tasks succeed, two fail, two never finish (TASK_TIMEOUT=6):
    the succeeded ones keep their charge, the others are refunded; per
    token, user and channel used_quota = sum(type 2) - sum(type 6)."""
    user, token, chan = account()
    jobs_scripted("kling", "suno")
    p = pool("mix-" + metering, metering, TASK_TIMEOUT=6, TASK_POLL_INTERVAL=1, TASK_POLL_RATE=6000)
    try:
        start = money(user, token, chan)
        plan = ["succeeded", "failed", "running"] * 2
        made = []
        for i, want in enumerate(plan):
            svc = "kling" if i < 3 else "suno"
            rid, tid = submit(p.port, token, svc)
            check(H.stub.set_job(tid, want, "bad prompt" if want == "failed" else ""), "stub job")
            made.append((svc, tid, want))
        wait_written(p.port)
        for svc, tid, want in made:
            wait_state(svc, tid, {"succeeded": "succeeded", "failed": "refunded",
                                  "running": "refunded"}[want])
        for svc, tid, want in made:
            row = task_row(svc, tid)
            eq((row["quota"], row["refunded_quota"]), (Q, 0 if want == "succeeded" else Q),
               "%s %s: quota, refunded_quota" % (want, svc))
        eq(money(user, token, chan), less(start, 2 * Q), "counters: the two succeeded tasks charged")
        s2 = H.sql("SELECT IFNULL(SUM(quota), 0) AS q FROM logs WHERE token_id=%s AND type=2", (token["id"],))[0]["q"]
        s6 = H.sql("SELECT IFNULL(SUM(quota), 0) AS q FROM logs WHERE token_id=%s AND type=6", (token["id"],))[0]["q"]
        eq((int(s2), int(s6)), (6 * Q, 4 * Q), "sum of type-2 and type-6 quota")
        m = money(user, token, chan)
        eq((m["token_used"], m["user_used"], m["chan_used"]), (s2 - s6,) * 3,
           "used_quota of token, user, channel")
        states = sorted(json.loads(x["other"])["state"] for x in refund_logs(token))
        eq(states, ["failed", "failed", "timeout", "timeout"], "refund rows' states")
    finally:
        p.stop()


per_mode(mixed_outcomes)


# ---------------------------------------------------------------------------
# crashes in the middle of a refund


def seen_in_flight():
    """bltcy_task_seen's statements waiting for their commit."""
    return [r for r in H.sql("SELECT ID, STATE, INFO FROM information_schema.PROCESSLIST")
            if r["INFO"] and ("bltcy_task_seen" in r["INFO"] or "UPDATE bltcy_tasks SET state" in r["INFO"])]


def refund_in_flight(p, user, token, chan, whole_pool):
    """A client's poll says failed while commits are held: its
    bltcy_task_seen waits in the database. The worker is killed (SIGKILL),
    and with whole_pool the master and every child of it too, and the
    database connection of the poll's statement (the server undoes what
    it had not committed); commits go on; the pool (started again, and
    then polling) ends with the task refunded exactly once and the
    counters as before the submit."""
    start = money(user, token, chan)
    rid, tid = submit(p.port, token)
    wait_written(p.port)
    check(H.stub.set_job(tid, "failed", "gpu fault"), "stub job state")
    out = {}
    with harness.CommitsHeld(H) as hc:
        th = harness.request_in_thread(out, p.port, "GET", SERVICES["kling"][1](tid), auth(token), timeout=60)
        harness.wait_for(lambda: H.stub.jobs()[tid]["polls"] == 1, 10, "the client's poll at the stub")
        try:
            harness.wait_for(seen_in_flight, 10, "bltcy_task_seen in flight")
        except SetupError as e:
            raise Fail("%s: %r" % (e, [(r["STATE"], r["INFO"]) for r in
                                       H.sql("SELECT STATE, INFO FROM information_schema.PROCESSLIST")]))
        if whole_pool:
            victims = [p.pid] + harness.children_of(p.pid)
        else:
            victims = p.workers_pids()   # the one holding the poll among them
        for v in victims:
            try:
                os.kill(v, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if whole_pool:
            for r in seen_in_flight():
                try:
                    H.sql("KILL CONNECTION %d" % r["ID"])
                except pymysql.MySQLError:
                    pass
        th.join(30)
        if whole_pool:
            try:
                p.proc.wait(10)
            except Exception:  # noqa: BLE001
                raise Fail("pool master still there after SIGKILL")
        hc.release()
    if whole_pool:
        p.stop()
        p = pool(p.name, p.config["METERING"], TASK_POLL_INTERVAL=1, TASK_POLL_RATE=600)
    else:
        harness.wait_for(lambda: len(p.workers_pids()) == p.workers and
                         not set(p.workers_pids()) & set(victims), 10, "new workers")
    check_refunded_once("kling", tid, token, rid)
    wait_written(p.port)
    eq(money(user, token, chan), start, "counters after the refund")
    # the pool goes on serving and charging
    rid2, tid2 = submit(p.port, token)
    wait_written(p.port)
    eq(money(user, token, chan), less(start, Q), "counters after one more submit")
    eq(len(refund_logs(token)), 1, "type-6 rows")
    return p


def killed_worker(metering):
    """Workers killed (SIGKILL) while the refund of their client's poll
    waits for its commit: the task is refunded exactly once."""
    user, token, chan = account()
    jobs_scripted("kling")
    p = pool("kw-" + metering, metering, TASK_POLL_RATE=0)
    try:
        p = refund_in_flight(p, user, token, chan, whole_pool=False)
    finally:
        p.stop()


per_mode(killed_worker)


def killed_pool(metering):
    """The whole pool killed (SIGKILL to the master and its children)
    while a refund waits for its commit; commits go on; the pool started
    again: the task is refunded exactly once."""
    user, token, chan = account()
    jobs_scripted("kling")
    p = pool("kp-" + metering, metering, TASK_POLL_INTERVAL=1, TASK_POLL_RATE=0)
    try:
        p = refund_in_flight(p, user, token, chan, whole_pool=True)
    finally:
        p.stop()


per_mode(killed_pool)


@S.test(fronts=False)
def test_refund_sweep():
    """A task left failed with its refund not done (a crash between the
    two, simulated in SQL) is refunded by the poller's sweep, once, also
    with two pools sweeping."""
    user, token, chan = account()
    jobs_scripted("kling")
    p = pool("sweep", "strict", TASK_POLL_RATE=0)
    try:
        start = money(user, token, chan)
        rid, tid = submit(p.port, token)
        wait_written(p.port)
        H.sql("UPDATE bltcy_tasks SET state='failed', reason='cut off' WHERE service='kling' AND task_id=%s",
              (tid,))
        check_refunded_once("kling", tid, token, rid)
        eq(money(user, token, chan), start, "counters after the refund")
        swept = [x for f in (p.log_file, H.log_file) for x in log_lines(f)
                 if tid in x and "its refund had not happened" in x]
        eq(len(swept), 1, "sweep lines naming the task in the two pools' logs")
    finally:
        p.stop()


# ---------------------------------------------------------------------------
# the poller process


@S.test(fronts=False)
def test_poller_process_and_rate():
    """The pool has one bltcy-tasks process, started again when killed;
    with TASK_POLL_RATE=60 and 10 tasks due every second, it polls about
    once a second (at most 1 + window + 1 in a window, and it does poll),
    where unbounded it would poll about ten times a second."""
    user, token, chan = account()
    jobs_scripted("kling")
    p = pool("rate", "strict", TASK_POLL_INTERVAL=1, TASK_POLL_RATE=60)
    try:
        first = harness.wait_for(p.tasks_pid, 10, "the pool's bltcy-tasks process")
        eq(harness.children_of(p.pid, comm=harness.TASKS_COMM), [first], "bltcy-tasks processes")
        check(first not in p.workers_pids(), "the poller counted as a worker")
        tids = [submit(p.port, token)[1] for _ in range(10)]
        for t in tids:
            H.stub.set_job(t, "running")
        wait_written(p.port)

        def polls():
            return sum(j["polls"] for j in H.stub.jobs().values())
        harness.wait_for(lambda: polls() >= 1, 10, "a first poll")
        w = 6.0
        n0, t0 = polls(), time.time()
        time.sleep(w)       # the window measured, not a wait for a state
        n1, t1 = polls(), time.time()
        got = n1 - n0
        check(2 <= got <= 2 + (t1 - t0), "%d polls in %.1f s at TASK_POLL_RATE=60" % (got, t1 - t0))
        os.kill(first, signal.SIGKILL)
        second = harness.wait_for(lambda: (lambda x: x if x not in (None, first) else None)(p.tasks_pid()),
                                  10, "a new bltcy-tasks process")
        n2 = polls()
        harness.wait_for(lambda: polls() >= n2 + 2, 10, "polls by the new poller")
        check(any("task poller" in x and "died" in x for x in log_lines(p.log_file)),
              "no line about the poller's death in the log")
        eq(H.sql("SELECT COUNT(*) AS n FROM bltcy_tasks WHERE task_id IN %s"
                 " AND state IN ('submitted', 'running')", (tids,))[0]["n"], 10, "the ten tasks unfinished")
        check(second != first, "same pid")
    finally:
        p.stop()


@S.test(fronts=False)
def test_poller_stops_with_the_pool():
    """SIGTERM to the pool: the poller goes with it, and the pool exits 0
    promptly, also with a poll hanging at the upstream."""
    user, token, chan = account()
    H.stub.script({"path": "^/kling/v1/videos/text2video$", "method": "POST", "mode": "job_submit",
                   "service": "kling"},
                  {"path": "^/kling/v1/videos/text2video/", "method": "GET", "mode": "hang", "hang": 60,
                   "event": "never", "body": "{}"})
    p = pool("term", "strict", TASK_POLL_INTERVAL=1, TASK_POLL_RATE=600)
    try:
        submit(p.port, token)
        wait_written(p.port)
        check(H.stub.wait("^/kling/v1/videos/text2video/", timeout=10), "the poll never reached the stub")
        poller = p.tasks_pid()
        check(poller is not None, "no poller")
        t0 = time.time()
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.proc.wait(15)
        except Exception:  # noqa: BLE001
            raise Fail("pool still running 15 s after SIGTERM")
        eq(p.proc.returncode, 0, "exit status")
        check(time.time() - t0 < 5, "the stop took %.1f s" % (time.time() - t0))
        check(not os.path.exists("/proc/%d" % poller) or
              open("/proc/%d/stat" % poller).read().split()[2] == "Z", "the poller outlived the pool")
    finally:
        H.stub.release("never")
        p.stop()


# ---------------------------------------------------------------------------


def start(keep):
    global H
    H = Harness(workers=2, keep=keep, extra_config={"TASK_POLL_RATE": "0"})
    return H.started()


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
