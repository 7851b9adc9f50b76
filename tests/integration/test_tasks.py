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
from harness import SetupError, request  # noqa: E402

import pymysql  # noqa: E402
import runner  # noqa: E402
from runner import Fail, check, eq, expect_ok, short  # noqa: E402

H = None
S = runner.Suite("tasks", timeout=150, after_each=lambda: H.stub.reset())
Q = 1000            # passthrough_quota of every channel here
MODES = ("strict", "lease")
LOST_POLLS = 3      # TASK_LOST_POLLS: own polls saying "not found" that fail a task

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
            # jimeng's failure is not_found: a task its upstream does not
            # know, failed after TASK_LOST_POLLS of the relay's own polls
            eq((row["quota"], row["refunded_quota"], row["reason"]),
               (Q, Q, "not_found" if svc == "jimeng" else "no credits"),
               "%s task row quota, refunded_quota, reason" % svc)
            job = H.stub.jobs()[tid]
            check(job["polls"] >= (LOST_POLLS if svc == "jimeng" else 1),
                  "%s: the stub saw %d polls" % (svc, job["polls"]))
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
# which task an answer is about, and with which key it is asked


def script_jobs(svc, submit=None, poll=None):
    """The stub's job rules for svc, with the extra fields given (the
    stub's "ids", "bound"; "id_key", "lost")."""
    sub, pl = SERVICES[svc]
    H.stub.script(dict({"path": "^" + re.escape(sub) + "$", "method": "POST", "mode": "job_submit",
                        "service": svc}, **(submit or {})),
                  dict({"path": "^" + re.escape(pl("").split("?")[0]), "method": "GET",
                        "mode": "job_poll", "service": svc}, **(poll or {})))


def stub_count(text="", method=None):
    """Requests the stub saw (with text in their target, of method)."""
    return len([x for x in H.stub.requests() if text in x["path"] and method in (None, x["method"])])


def answered(r, what, *path):
    """The value at path in a 200 JSON answer (Fail on any other)."""
    if r.status != 200:
        raise Fail("%s: want 200, got %s" % (what, short(r)))
    v = r.json()
    for k in path:
        v = v.get(k) if isinstance(v, dict) else None
    return v


def answer_books_its_own_task(metering):
    """A kling poll naming two tasks of the caller's, X (failed, refunded)
    in its path and R (done upstream, unfinished here) in its query, is
    answered about X, whose id the answer names: nothing of it goes to R,
    however often it is sent (R's id sorts first, so R was the row the
    owner lookup gave). R's own poll then books it succeeded: one refund
    in all, R's charge kept."""
    user, token, chan = account()
    tail = harness.rand_key(12)
    x, rr = "Z9-fail-" + tail, "A1-good-" + tail
    script_jobs("kling", submit={"ids": [x, rr]})
    p = pool("own-" + metering, metering, TASK_POLL_RATE=0)
    try:
        start = money(user, token, chan)
        rid_x, tx = submit(p.port, token)
        rid_r, tr = submit(p.port, token)
        eq((tx, tr), (x, rr), "the stub's task ids")
        wait_written(p.port)
        check(H.stub.set_job(x, "failed", "bad prompt"), "stub job X")
        check(H.stub.set_job(rr, "succeeded"), "stub job R")
        r = request(p.port, "GET", SERVICES["kling"][1](x), auth(token))
        eq(answered(r, "X's own poll", "data", "task_status"), "failed", "X's own poll")
        check_refunded_once("kling", x, token, rid_x)
        for i in range(3):
            r = request(p.port, "GET", SERVICES["kling"][1](x) + "?task_id=" + rr, auth(token))
            eq((answered(r, "poll %d" % i, "data", "task_id"), r.json()["data"]["task_status"]),
               (x, "failed"), "poll %d of X?task_id=R" % i)
        eq(task_row("kling", rr)["state"], "submitted", "R's state after the polls about X")
        eq(len(refund_logs(token)), 1, "type-6 rows")
        r = request(p.port, "GET", SERVICES["kling"][1](rr), auth(token))
        eq(answered(r, "R's own poll", "data", "task_status"), "succeed", "R's own poll")
        row = wait_state("kling", rr, "succeeded")
        eq((row["quota"], row["refunded_quota"]), (Q, 0), "R's quota, refunded_quota")
        wait_written(p.port)
        eq(money(user, token, chan), less(start, Q), "counters: R charged, X refunded")
        eq(len(refund_logs(token)), 1, "type-6 rows at the end")
    finally:
        p.stop()


per_mode(answer_books_its_own_task)


@S.test(fronts=False)
def test_kind_without_places():
    """A kind whose answers name no task and whose poll_path has no {id}
    at an end (an operator's row) books a poll only when it names one
    task alone: not `/pika/generate/X?id=R` (two of the caller's tasks),
    but `/pika/generate/X`."""
    user, token, chan = account()
    script_jobs("pika")
    old = H.sql("SELECT id_path, poll_path FROM bltcy_task_kinds WHERE service='pika'")[0]
    port = H.lighttpd_port
    try:
        H.sql("UPDATE bltcy_task_kinds SET id_path='', poll_path='' WHERE service='pika'")
        _, x = submit(port, token, "pika")
        _, rr = submit(port, token, "pika")
        wait_written(port)
        check(H.stub.set_job(x, "failed", "bad"), "stub job X")
        check(H.stub.set_job(rr, "succeeded"), "stub job R")
        # the token is new: its first request read the kinds as changed
        for i in range(3):
            r = request(port, "GET", "/pika/generate/%s?id=%s" % (x, rr), auth(token))
            eq(answered(r, "poll %d of X?id=R" % i, "status"), "failed", "poll %d of X?id=R" % i)
        eq([task_row("pika", t)["state"] for t in (x, rr)], ["submitted"] * 2, "X and R after them")
        r = request(port, "GET", "/pika/generate/" + x, auth(token))
        eq(answered(r, "X's own poll", "status"), "failed", "X's own poll")
        wait_state("pika", x, "refunded")
        eq(task_row("pika", rr)["state"], "submitted", "R")
    finally:
        H.sql("UPDATE bltcy_task_kinds SET id_path=%s, poll_path=%s WHERE service='pika'",
              (old["id_path"], old["poll_path"]))


def jimeng_steered_poll(metering):
    """Jimeng's answers name no task, so a poll is about the id at its
    kind's place (?task_id=): `?task_id=0&id=R`, answered not_found about
    0, leaves R, the caller's running task, alone; and R's own poll
    answered not_found does not fail it either: a client's poll never
    fails a task because the upstream says it does not know it."""
    user, token, chan = account()
    script_jimeng()
    p = pool("jm-" + metering, metering, TASK_POLL_RATE=0)
    try:
        start = money(user, token, chan)
        rid, tid = submit(p.port, token, "jimeng")
        wait_written(p.port)
        check(H.stub.set_job(tid, "running"), "stub job")
        for i in range(3):
            r = request(p.port, "GET", "/jimeng/submit?task_id=0&id=" + tid, auth(token))
            eq(answered(r, "steered poll %d" % i, "data", "status"), "not_found", "steered poll %d" % i)
        eq(task_row("jimeng", tid)["state"], "submitted", "the task after the steered polls")
        r = request(p.port, "GET", SERVICES["jimeng"][1](tid), auth(token))
        eq(answered(r, "its own poll", "data", "status"), "generating", "its own poll")
        wait_state("jimeng", tid, "running")
        check(H.stub.set_job(tid, "failed"), "stub job")     # jimeng says not_found
        for i in range(3):
            r = request(p.port, "GET", SERVICES["jimeng"][1](tid), auth(token))
            eq(answered(r, "its own poll %d" % i, "data", "status"), "not_found", "its own poll %d" % i)
        row = task_row("jimeng", tid)
        eq((row["state"], row["lost"]), ("running", 0), "the task after not_found from its client")
        eq(len(refund_logs(token)), 0, "type-6 rows")
        wait_written(p.port)
        eq(money(user, token, chan), less(start, Q), "counters: charged")
    finally:
        p.stop()


def script_jimeng(**submit):
    """Jimeng as Volcengine answers: the job is the query's task_id alone,
    an unknown one is 200 not_found."""
    script_jobs("jimeng", submit=submit, poll={"id_key": "task_id", "lost": True})


per_mode(jimeng_steered_poll)


@S.test(fronts=False)
def test_lost_needs_own_polls():
    """A jimeng task its upstream answers not_found is failed by the
    relay's own polls, with the task's key, after LOST_POLLS of them in
    a row and not before: refunded once, reason not_found. In the
    database: one count per poll however often its statement runs, and
    an answer that says how the task stands starts the count again."""
    keys = ["chan-a-" + harness.rand_key(24), "chan-b-" + harness.rand_key(24)]
    user, token, chan = account(key="\n".join(keys))
    script_jimeng(bound=True)
    p = pool("lost", "strict", TASK_POLL_INTERVAL=2, TASK_POLL_RATE=6000)
    try:
        start = money(user, token, chan)
        rid, tid = submit(p.port, token, "jimeng")
        check(H.stub.set_job(tid, "failed"), "stub job")
        wait_written(p.port)
        row = harness.wait_for(lambda: (lambda x: x if x.get("lost", 0) >= 1 or x["state"] != "submitted"
                                        else None)(task_row("jimeng", tid)), 15, "a first not_found counted")
        check(row["state"] == "submitted" and row.get("lost") in (1, 2),
              "after a first not_found: state %r, lost %r" % (row["state"], row.get("lost")))
        row = check_refunded_once("jimeng", tid, token, rid)
        job = H.stub.jobs()[tid]
        eq((row["reason"], job["polls"], job["refused"]), ("not_found", LOST_POLLS, []),
           "reason, polls the stub answered, polls with another key")
        eq(set(job["auth"]), {job["key"]}, "the key of its polls")
        eq(money(user, token, chan), start, "counters after the refund")
    finally:
        p.stop()
    # the count, statement by statement (the main pool does not poll)
    rid, tid = submit(H.lighttpd_port, token, "jimeng")
    wait_written(H.lighttpd_port)
    now = int(time.time())

    def lost(polls):
        H.sql("UPDATE bltcy_tasks SET polls=%s WHERE service='jimeng' AND task_id=%s", (polls, tid))
        H.sql("CALL bltcy_task_lost('jimeng', %s, 'not_found', %s, %s, %s)", (tid, now, now + 60, LOST_POLLS))
        r = task_row("jimeng", tid)
        return r["lost"], r["state"]
    eq(lost(1), (1, "submitted"), "after a first not_found")
    eq(lost(1), (1, "submitted"), "the same poll's statement again")
    eq(lost(2), (2, "submitted"), "after a second")
    H.sql("CALL bltcy_task_seen('jimeng', %s, 'running', '', %s, %s)", (tid, now, now + 60))
    eq(task_row("jimeng", tid)["lost"], 0, "after an answer that it runs")
    eq(lost(3), (1, "running"), "a not_found after it")
    eq(lost(4), (2, "running"), "a second")
    eq(lost(5), (0, "refunded"), "a third in a row")
    eq(len(refund_logs(token)), 2, "type-6 rows")


def client_poll_with_task_key(metering):
    """On a channel of two keys, where the upstream knows a task only
    under the key that made it (another key: kling 404, jimeng
    not_found), every client poll of a task goes with its own key: all
    are answered, none refunds the jimeng task that runs, the kling task
    that succeeded is booked so."""
    keys = ["chan-a-" + harness.rand_key(24), "chan-b-" + harness.rand_key(24)]
    user, token, chan = account(key="\n".join(keys))
    k_sub, k_poll = SERVICES["kling"]
    j_sub = SERVICES["jimeng"][0]
    H.stub.script({"path": "^" + re.escape(k_sub) + "$", "method": "POST", "mode": "job_submit",
                   "service": "kling", "bound": True},
                  {"path": "^" + re.escape(k_sub) + "/", "method": "GET", "mode": "job_poll",
                   "service": "kling"},
                  {"path": "^" + re.escape(j_sub) + "$", "method": "POST", "mode": "job_submit",
                   "service": "jimeng", "bound": True},
                  {"path": "^" + re.escape(j_sub) + r"\?", "method": "GET", "mode": "job_poll",
                   "service": "jimeng", "id_key": "task_id", "lost": True})
    p = pool("key-" + metering, metering, TASK_POLL_RATE=0)
    try:
        start = money(user, token, chan)
        _, tk = submit(p.port, token, "kling")
        _, tj = submit(p.port, token, "jimeng")
        wait_written(p.port)
        check(H.stub.set_job(tk, "succeeded"), "stub job kling")
        check(H.stub.set_job(tj, "running"), "stub job jimeng")
        # each task polled in a row: the channel's keys in turn would
        # change with every poll
        for i in range(4):
            r = request(p.port, "GET", k_poll(tk), auth(token))
            eq(answered(r, "kling poll %d" % i, "data", "task_status"), "succeed", "kling poll %d" % i)
        for i in range(4):
            r = request(p.port, "GET", SERVICES["jimeng"][1](tj), auth(token))
            eq(answered(r, "jimeng poll %d" % i, "data", "status"), "generating", "jimeng poll %d" % i)
        jobs = H.stub.jobs()
        for t in (tk, tj):
            eq((jobs[t]["polls"], jobs[t]["refused"], set(jobs[t]["auth"])), (4, [], {jobs[t]["key"]}),
               "%s: polls answered, refused, their keys" % t)
        eq(wait_state("kling", tk, "succeeded")["refunded_quota"], 0, "kling task refunded_quota")
        eq(task_row("jimeng", tj)["state"], "running", "jimeng task state")
        eq(len(refund_logs(token)), 0, "type-6 rows")
        wait_written(p.port)
        eq(money(user, token, chan), less(start, 2 * Q), "counters: both charged")
    finally:
        p.stop()


per_mode(client_poll_with_task_key)


def early_failure(metering):
    """A client polls its task right after the submit and is told it
    failed while the usage writer has not written the task yet (it waits
    here for the channel's row, which the test holds): the failure is
    kept and, once the row is written, refunded within seconds, once,
    though the relay does not poll (TASK_POLL_RATE=0)."""
    user, token, chan = account()
    jobs_scripted("kling")
    p = pool("early-" + metering, metering, TASK_POLL_RATE=0)
    try:
        start = money(user, token, chan)
        hold = pymysql.connect(unix_socket=H.db_sock, user="root", password="", database="bltcy",
                               autocommit=False)
        try:
            hold.cursor().execute("SELECT used_quota FROM channels WHERE id=%s FOR UPDATE", (chan["id"],))
            rid, tid = submit(p.port, token)
            check(H.stub.set_job(tid, "failed", "nsfw"), "stub job")
            for i in range(3):
                r = request(p.port, "GET", SERVICES["kling"][1](tid), auth(token))
                eq(answered(r, "poll %d" % i, "data", "task_status"), "failed", "poll %d" % i)
            eq(H.sql("SELECT COUNT(*) AS n FROM bltcy_tasks WHERE task_id=%s", (tid,))[0]["n"], 0,
               "task rows while the writer waits")
        finally:
            hold.rollback()
            hold.close()
        t0 = time.time()
        row = check_refunded_once("kling", tid, token, rid)
        check(time.time() - t0 < 5, "refunded %.1f s after the row could be written" % (time.time() - t0))
        eq(row["reason"], "nsfw", "task row reason")
        # the poller drops the early failure after its refund, in a
        # statement of its own: wait for it
        harness.wait_for(lambda: H.sql("SELECT COUNT(*) AS n FROM bltcy_task_early WHERE task_id=%s",
                                       (tid,))[0]["n"] == 0, 5, "its early failure dropped once applied")
        wait_written(p.port)
        eq(money(user, token, chan), start, "counters after the refund")
        eq(len(refund_logs(token)), 1, "type-6 rows")
    finally:
        p.stop()


per_mode(early_failure)


def quote_of(port, token):
    r = request(port, "POST", "/bltcy/quote" + SERVICES["kling"][0], auth(token) +
                [("Content-Type", "application/json")], b'{"prompt":"a cat"}')
    return r.json().get("quota") if r.status == 200 else None


@S.test(fronts=False)
def test_draining_channel():
    """A disabled channel takes no new jobs, but its task is still polled
    through it with its own key, by its client and by the relay (the
    upstream knows the task under that key alone); a request that would
    make a new job on it is refused (503 task_channel_disabled) and sent
    nowhere. Once the channel is deleted, its task gets 410
    task_channel_deleted and nothing is sent to any other channel."""
    user = H.make_user(quota=10 ** 9)
    token = H.make_token(user, remain_quota=10 ** 9)
    ka, kb = "chan-a-" + harness.rand_key(24), "chan-b-" + harness.rand_key(24)
    a = H.make_channel(user["group"], key=ka, setting={"passthrough_quota": Q})
    script_jobs("kling", submit={"bound": True})
    p = pool("drain", "strict", TASK_POLL_INTERVAL=1, TASK_POLL_RATE=6000)
    try:
        rid, tid = submit(p.port, token)
        wait_written(p.port)
        check(H.stub.set_job(tid, "running"), "stub job")
        H.make_channel(user["group"], key=kb, setting={"passthrough_quota": 2 * Q})
        # as new-api's admin disables a channel: the row and its abilities
        H.sql("UPDATE channels SET status=2 WHERE id=%s", (a["id"],))
        H.sql("UPDATE abilities SET enabled=0 WHERE channel_id=%s", (a["id"],))
        harness.wait_for(lambda: all(quote_of(p.port, token) == 2 * Q for _ in range(10)), 15,
                         "new jobs priced on the other channel only")
        r = request(p.port, "GET", SERVICES["kling"][1](tid), auth(token))
        eq(answered(r, "the client's poll", "data", "task_status"), "processing", "the client's poll")
        n = stub_count(method="POST")      # the poller's GETs go on meanwhile
        r = request(p.port, "POST", SERVICES["kling"][0], auth(token) + [("Content-Type", "application/json")],
                    json.dumps({"prompt": "more", "task_id": tid}).encode())
        runner.expect_gw_error(r, 503, "task_channel_disabled",
                               "任务 %s 所在的渠道已停用，只能查询该任务，不接受新的请求" % tid, "a submit naming it")
        eq(stub_count(method="POST"), n, "POSTs the stub saw")
        _, tid2 = submit(p.port, token)
        eq(H.stub.jobs()[tid2]["key"], "Bearer " + kb, "the key of a new job")
        check(H.stub.set_job(tid, "succeeded"), "stub job")
        wait_state("kling", tid, "succeeded")
        job = H.stub.jobs()[tid]
        check(job["polls"] >= 2, "polls of the task: %d" % job["polls"])
        eq((job["refused"], set(job["auth"])), ([], {"Bearer " + ka}), "polls with another key, keys of its polls")
        H.sql("DELETE FROM abilities WHERE channel_id=%s", (a["id"],))
        H.sql("DELETE FROM channels WHERE id=%s", (a["id"],))

        def gone():
            return all(request(p.port, "GET", SERVICES["kling"][1](tid), auth(token)).status == 410
                       for _ in range(6))
        harness.wait_for(gone, 15, "the deleted channel's task answered 410")
        n = stub_count(tid)     # the poller polls the new job meanwhile
        for _ in range(3):
            r = request(p.port, "GET", SERVICES["kling"][1](tid), auth(token))
            runner.expect_gw_error(r, 410, "task_channel_deleted",
                                   "任务 %s 所在的渠道已被删除，无法再查询或操作该任务" % tid, "its poll")
        eq(stub_count(tid), n, "requests for the task the stub saw")
        eq(task_row("kling", tid)["state"], "succeeded", "the task")
    finally:
        p.stop()


@S.test(fronts=False)
def test_ownership_across_services():
    """User A's kling task id named by user B is refused (404
    task_not_exist, nothing forwarded) whatever service's path names it
    (the old gateway finds a task by account and id) and wherever an id
    stands: /suno/fetch/<id>, a suno batch fetch body, runway's and
    jimeng's poll shapes, a path with a last word after the id; right
    after the submit too. A's own request is not refused."""
    ua, ta, ca = account()
    ub, tb, cb = account()
    jobs_scripted("kling")
    port = H.lighttpd_port
    _, kid = submit(port, ta)
    wait_written(port)
    n = stub_count()
    for method, path, body in (("GET", "/suno/fetch/" + kid, None),
                               ("POST", "/suno/fetch", {"ids": ["x-1", kid]}),
                               ("GET", "/runway/v1/tasks/" + kid, None),
                               ("GET", "/jimeng/submit?task_id=" + kid, None),
                               ("GET", "/pika/generate/" + kid + "/status", None),
                               ("GET", SERVICES["kling"][1](kid), None)):
        r = request(port, method, path, auth(tb) + [("Content-Type", "application/json")],
                    json.dumps(body).encode() if body else None)
        runner.expect_gw_error(r, 404, "task_not_exist", "任务不存在", "B's %s %s" % (method, path))
    _, kid2 = submit(port, ta)       # in this host's newest tasks first
    r = request(port, "GET", "/suno/fetch/" + kid2, auth(tb))
    runner.expect_gw_error(r, 404, "task_not_exist", "任务不存在", "B's fetch of a task just made")
    eq(stub_count(), n + 1, "requests the stub saw (A's second submit)")
    r = request(port, "GET", "/suno/fetch/" + kid, auth(ta))
    eq(r.status, 200, "A's own fetch under suno (%s)" % short(r))
    eq(stub_count(), n + 2, "requests the stub saw")


@S.test(fronts=False)
def test_ids_refuse_only_where_they_stand():
    """An upstream that answers a submit with a word or short id ("slow",
    "generations", "42") has not made it one task's: it refuses no other
    user's request that says it, in a path, the query or a body; its
    owner's polls still book it (refunded once). Ids compare exactly: a
    task "MixedCase-..." refuses no request naming "mixedcase-..."."""
    ua, ta, ca = account()
    ub, tb, cb = account()
    mixed = "MixedCase-" + harness.rand_key(10)
    script_jobs("kling", submit={"ids": ["slow", "generations", "42", mixed]})
    port = H.lighttpd_port
    rid, slow = submit(port, ta)
    made = [slow] + [submit(port, ta)[1] for _ in range(3)]
    eq(made, ["slow", "generations", "42", mixed], "the stub's task ids")
    wait_written(port)
    check(H.stub.set_job("slow", "failed", "too slow"), "stub job")
    bm = money(ub, tb, cb)
    for tid in ("slow", "generations", "42", mixed.lower()):
        for method, path, body in (("GET", SERVICES["kling"][1](tid), None),
                                   ("GET", "/suno/fetch/" + tid, None),
                                   ("GET", "/kling/v1/videos?task_id=" + tid, None),
                                   ("POST", "/kling/v1/videos/" + tid, {"id": tid, "prompt": "x"})):
            n = stub_count()
            r = request(port, method, path, auth(tb) + [("Content-Type", "application/json")],
                        json.dumps(body).encode() if body else None)
            check(b"task_not_exist" not in r.body, "B's %s %s refused: %s" % (method, path, short(r)))
            eq(stub_count(), n + 1, "B's %s %s forwarded" % (method, path))
    eq(task_row("kling", "slow")["state"], "submitted", "A's task after B's polls of it")
    r = request(port, "GET", SERVICES["kling"][1]("slow"), auth(ta))
    eq(answered(r, "A's poll", "data", "task_status"), "failed", "A's poll")
    check_refunded_once("kling", "slow", ta, rid)
    wait_written(port)
    eq(money(ub, tb, cb), less(bm, 4 * Q), "B's counters: its four submits charged")


# ---------------------------------------------------------------------------


def start(keep):
    global H
    H = harness.start_suite(keep, workers=2, config={"TASK_POLL_RATE": "0"})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
