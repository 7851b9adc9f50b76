#!/usr/bin/python3
"""Integration tests of what keeps metering and its logs sound when the
database misbehaves: a usage record the database refuses is set aside
and the records after it are still written; a usage writer that cannot
write makes /bltcy/health answer 503; warnings and errors of one call
site are folded to one line a second under a database outage.

Every case checks exact database rows, quotas, metrics and answers.
"Written" is read from the pool itself (`GET /bltcy/metrics` until
bltcy_usage_backlog is 0 with no request in flight), not a fixed sleep.

Prints one line per test and ends with `metering-guard: N passed, M failed`.

Usage: test_metering_guard.py [-k SUBSTRING]... [--keep]
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
from harness import SetupError, request  # noqa: E402

import pymysql  # noqa: E402
import runner  # noqa: E402
from runner import Fail, check, eq, expect_gw_error, expect_ok, short  # noqa: E402

H = None
S = runner.Suite("metering-guard", timeout=150)
Q = 1000            # passthrough_quota of every channel here


# ---------------------------------------------------------------------------
# helpers


def uniq(prefix="r"):
    return harness.rand_name(prefix)


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"])]


def account(**kw):
    return H.setup_account(quota=10 ** 9, remain_quota=10 ** 9, setting={"passthrough_quota": Q}, **kw)


metrics, wait_written = harness.pool_metrics, harness.wait_written


def pool(name, workers=1, **cfg):
    try:
        return H.start_pool(name, workers=workers, **cfg)
    except SetupError as e:
        raise Fail("pool %s (%r) did not start: %s" % (name, cfg, e))


def row(q, args):
    rows = H.sql(q, args)
    eq(len(rows), 1, "rows of " + q)
    return rows[0]


def health(port):
    r = request(port, "GET", "/bltcy/health", timeout=10)
    return r.status, r.body


def log_lines(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace").splitlines()


# ---------------------------------------------------------------------------
# a record the database refuses


def refused_case(port, metering_port, lease=False):
    """Token A's usage record is refused by a trigger on logs; token B of
    the same user goes on. With lease, remaining quotas hold leased blocks,
    so only the used counters are compared."""
    user, tok_b, chan = account()
    # a backslash in the name: the set-aside row shows it escaped
    mark = "refuse\\" + uniq("t")
    tok_a = H.make_token(user, remain_quota=10 ** 9, name=mark)
    H.sql("CREATE OR REPLACE TRIGGER guard_refuse BEFORE INSERT ON logs FOR EACH ROW"
          " IF NEW.token_name LIKE 'refuse%%' THEN"
          " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'guard refuses this row'; END IF")
    try:
        base = metrics(metering_port).get("bltcy_usage_rejected_total", 0)
        u0 = row("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))
        path_a = "/kling/v1/" + uniq("refused")
        rid_a = expect_ok(request(port, "POST", path_a, auth(tok_a), b"{}"), "POST with token A")
        rids_b = [expect_ok(request(port, "POST", "/kling/v1/" + uniq("after"), auth(tok_b), b"{}"),
                            "POST %d with token B" % i) for i in range(3)]
        m = wait_written(metering_port)
        eq(m.get("bltcy_usage_rejected_total", 0) - base, 1, "bltcy_usage_rejected_total, up by")
        logs_b = H.sql("SELECT other, quota FROM logs WHERE token_id=%s ORDER BY id", (tok_b["id"],))
        eq([(json.loads(x["other"])["request_id"], x["quota"]) for x in logs_b],
           [(r, Q) for r in rids_b], "logs rows of token B (request id, quota)")
        eq(H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (tok_a["id"],))[0]["n"], 0,
           "logs rows of token A")
        rej = H.sql("SELECT * FROM bltcy_usage_rejected WHERE request_id=%s", (rid_a,))
        eq(len(rej), 1, "bltcy_usage_rejected rows of the refused request")
        rej = rej[0]
        eq((rej["user_id"], rej["token_id"], rej["channel_id"], rej["quota"], rej["method"], rej["path"],
            rej["username"], rej["token_name"], rej["group"], rej["service"], rej["recovered"]),
           (user["id"], tok_a["id"], chan["id"], Q, "POST", path_a, user["username"],
            mark.replace("\\", "\\x5c"), user["group"], "kling", 0),
           "the set-aside row")
        check("guard refuses this row" in rej["error"], "error of the set-aside row: %r" % rej["error"])
        # the refused request's charge stands, once, as every other one
        ta = row("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (tok_a["id"],))
        tb = row("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (tok_b["id"],))
        u1 = row("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))
        eq((ta["used_quota"], tb["used_quota"]), (Q, 3 * Q), "token A and B used_quota")
        eq((u1["used_quota"] - u0["used_quota"], u1["request_count"] - u0["request_count"]), (4 * Q, 4),
           "user used_quota, request_count")
        if not lease:
            eq((ta["remain_quota"], tb["remain_quota"], u0["quota"] - u1["quota"]),
               (10 ** 9 - Q, 10 ** 9 - 3 * Q, 4 * Q), "token A and B remain_quota, user quota spent")
        eq(row("SELECT used_quota FROM channels WHERE id=%s", (chan["id"],))["used_quota"], 4 * Q,
           "channel used_quota")
        eq(health(port), (200, H.health_ok()), "health after the refused record")
    finally:
        H.sql("DROP TRIGGER IF EXISTS guard_refuse")


@S.test()
def test_refused_record_set_aside(front, port):
    """Strict metering (the main pool): a usage record the database refuses
    is set aside with its request id and text; the records after it are
    written; every charge stands once."""
    refused_case(port, H.lighttpd_port)


@S.test(fronts=False)
def test_refused_record_set_aside_lease():
    """The same with METERING=lease, where the writer also writes the token
    and user counters: they are written for the set-aside record too."""
    p = pool("lease-refuse", METERING="lease")
    try:
        refused_case(p.port, p.port, lease=True)
    finally:
        p.stop()


# ---------------------------------------------------------------------------
# a usage writer that cannot write


@S.test(fronts=False)
def test_writer_stuck_health():
    """A test transaction holds the channel's row, so the master's usage
    batch waits for its lock and the ring is not written. While MariaDB
    still answers every worker, /bltcy/health says 503 usage_writer_stuck
    once the oldest record has waited USAGE_STUCK_MS (10 s); once the lock
    is gone the record is written and health is 200 again."""
    p = pool("stuck", METERING="strict")
    mc = pymysql.connect(unix_socket=H.db_sock, user="root", password="", database="bltcy")
    try:
        user, tok, chan = account()
        eq(health(p.port), (200, H.health_ok()), "health before")
        with mc.cursor() as c:
            c.execute("START TRANSACTION")
            c.execute("SELECT used_quota FROM channels WHERE id=%s FOR UPDATE", (chan["id"],))
        t0 = time.time()
        rid = expect_ok(request(p.port, "POST", "/kling/v1/" + uniq("stuck"), auth(tok), b"{}"), "POST")
        eq(health(p.port), (200, H.health_ok()), "health while the record is young")
        got = harness.wait_for(lambda: (lambda h: h if h[0] == 503 else None)(health(p.port)), 20,
                               "health 503 while the usage batch waits", interval=0.2)
        eq(got, (503, b'{"status":"usage_writer_stuck"}'), "health while the writer is stuck")
        check(time.time() - t0 >= 9.5, "health said stuck after %.1f s, before 10 s" % (time.time() - t0))
        mc.rollback()
        harness.wait_for(lambda: health(p.port)[0] == 200, 20, "health 200 after the lock is gone", interval=0.1)
        wait_written(p.port)
        logs = H.sql("SELECT other FROM logs WHERE token_id=%s", (tok["id"],))
        eq([json.loads(x["other"])["request_id"] for x in logs], [rid], "logs row written once the lock is gone")
    finally:
        try:
            mc.rollback()
        except Exception:  # noqa: BLE001
            pass
        mc.close()
        p.stop()


# ---------------------------------------------------------------------------
# folded log lines


@S.test(fronts=False)
def test_log_folded_under_outage():
    """MariaDB stopped, 200 requests of a token that holds no lease (so
    each one tries to lease and logs why it could not): each is answered
    503 and has its one request line, but the errors of each call site are
    folded to one line a second, and a later line says how many were
    folded."""
    p = pool("fold", METERING="lease")
    try:
        user, tok, chan = account()
        H.stop_db()
        n0 = len(log_lines(p.log_file))
        t0 = time.time()
        for i in range(200):
            r = request(p.port, "POST", "/kling/v1/outage/%d" % i, auth(tok), b"{}")
            expect_gw_error(r, 503, "database_unavailable", "数据库暂时不可用，请稍后重试", "POST %d" % i)
        secs = int(time.time() - t0) + 2
        lines = log_lines(p.log_file)[n0:]
        reqs = [x for x in lines if re.search(r" POST /kling/v1/outage/\d+ .*status=503 ", x)]
        eq(len(reqs), 200, "request lines")
        noisy = [x for x in lines if " ERR " in x[:40]]
        # a handful of call sites (worker and master), two lines a second each
        check(len(noisy) <= 12 * secs, "%d error lines for 200 requests in %d s:\n%s" % (
            len(noisy), secs, "\n".join(noisy[:40])))
        check(len(lines) <= 200 + 12 * secs, "%d lines for 200 requests in %d s" % (len(lines), secs))

        def folded():
            # any line of a worker ends the second it folded lines in: once
            # every worker has logged again, each of the 200 requests' errors
            # is either an ERR line or counted in a fold line
            request(p.port, "POST", "/kling/v1/outage/more", auth(tok), b"{}")
            got = [x for x in log_lines(p.log_file)[n0:]
                   if re.search(r"\(and \d+ more like this in the last second\)$", x)]
            n = sum(int(re.search(r"\(and (\d+) more", x).group(1)) for x in got)
            return (got, n) if got and n + len(noisy) >= 200 else None
        got, n = harness.wait_for(folded, 15, "fold lines counting the errors of 200 requests", interval=0.3)
        check(n >= 100, "folded lines counted: %d (%r)" % (n, got[:5]))
    finally:
        try:
            H.start_db()
        except SetupError as e:
            raise Fail("MariaDB did not come back: %s" % e)
        p.stop()


# ---------------------------------------------------------------------------
# strict refunds that wait for the database outlive their worker


def refund_waits(p, user, token, chan):
    """The upstream fails while MariaDB is stopped: the worker's refund of
    that request waits for the database. Returns the rows before it."""
    m = uniq("m")
    ev = "ev-" + m
    H.stub.script({"path": m, "mode": "hang", "hang": 30, "event": ev, "status": 500,
                   "body": "upstream failed"})
    before = row_state(user, token, chan)
    out = []
    th = threading.Thread(target=lambda: out.append(
        request(p.port, "POST", "/kling/v1/" + m, auth(token), b"{}", timeout=60)))
    th.start()
    try:
        check(H.stub.wait(m, timeout=10), "request never reached the stub")
        # the charge is made durable while the upstream works (before the
        # answer), not before the request is forwarded: wait for it
        harness.wait_for(lambda: H.sql("SELECT remain_quota FROM tokens WHERE id=%s",
                                       (token["id"],))[0]["remain_quota"]
                         == before["token"]["remain_quota"] - Q, 10,
                         "the charge durable while the upstream works")
        harness.commits_answered(H)
        H.stop_db()
    finally:
        H.stub.release(ev)
        th.join(30)
    eq((out[0].status, out[0].body), (500, b"upstream failed"), "upstream's 500 relayed")
    harness.wait_for(lambda: any("is given back once the database takes it" in x for x in log_lines(p.log_file)), 10,
                     "the worker's refund waiting for the database")
    return before


def row_state(user, token, chan):
    return {
        "user": row("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],)),
        "token": row("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],)),
        "chan": row("SELECT used_quota FROM channels WHERE id=%s", (chan["id"],)),
        "logs": H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (token["id"],))[0]["n"],
    }


def refund_done_once(p, user, token, chan, before):
    """MariaDB back: the refund is done once, and two more requests are
    charged once each."""
    try:
        H.start_db()
    except SetupError as e:
        raise Fail("MariaDB did not come back: %s" % e)
    harness.wait_for(lambda: any("delayed refund done" in x for x in log_lines(p.log_file)), 20,
                     "'delayed refund done' in the pool's log")
    eq(row_state(user, token, chan), before, "rows once the refund is done")
    for i in range(2):
        r = harness.wait_for(lambda: (lambda x: x if x.status == 200 else None)(
            request(p.port, "POST", "/kling/v1/after/%d" % i, auth(token), b"{}")), 20,
            "a charged request after the refund", interval=0.2)
        expect_ok(r, "POST after the refund")
    wait_written(p.port)
    after = row_state(user, token, chan)
    eq((before["token"]["remain_quota"] - after["token"]["remain_quota"],
        after["token"]["used_quota"] - before["token"]["used_quota"],
        before["user"]["quota"] - after["user"]["quota"],
        after["user"]["used_quota"] - before["user"]["used_quota"],
        after["user"]["request_count"] - before["user"]["request_count"],
        after["chan"]["used_quota"] - before["chan"]["used_quota"],
        after["logs"] - before["logs"]),
       (2 * Q, 2 * Q, 2 * Q, 2 * Q, 2, 2 * Q, 2),
       "token remain/used, user quota/used/count, channel used, logs rows: the two requests only")
    eq(sum("delayed refund done" in x for x in log_lines(p.log_file)), 1, "'delayed refund done' lines")


def money(u, t):
    """(the token's remain_quota, the user's quota)"""
    return (H.sql("SELECT remain_quota FROM tokens WHERE id=%s", (t["id"],))[0]["remain_quota"],
            H.sql("SELECT quota FROM users WHERE id=%s", (u["id"],))[0]["quota"])


class HeldCommits(harness.CommitsHeld):
    """While it is entered MariaDB holds every commit back (CommitsHeld);
    send(i) posts PATH/i with account i's token from a thread of its own,
    its answer into out[i]["r"] (or exception into out[i]["e"]). On
    leaving, commits go on and every request is waited for."""

    def __init__(self, accts, prefix):
        super().__init__(H)
        self.accts = accts
        self.path = "/kling/v1/" + uniq(prefix)
        self.out, self.th = {}, []
        self.before = [money(u, t) for u, t, c in accts]

    def __exit__(self, *exc):
        self.release()
        for t in self.th:
            t.join(60)
        return False

    def send(self, i):
        self.out[i] = {}
        self.th.append(harness.request_in_thread(self.out[i], H.lighttpd_port, "POST",
                                                 "%s/%d" % (self.path, i), auth(self.accts[i][1]),
                                                 b"{}"))

    def forwarded(self, which="", count=1):
        """Wait until the stub has count requests to PATH/which..."""
        return H.stub.wait("^" + re.escape("%s/%s" % (self.path, which)), count=count, timeout=15)

    def seen(self):
        return len(H.stub.matching("^" + re.escape(self.path) + "/"))

    def answer(self, i):
        o = self.out.get(i, {})
        check("r" in o, "request %d: %r" % (i, o.get("e")))
        return o["r"]

    def answered(self):
        return sorted(i for i, o in self.out.items() if o)

    def charged_once_each(self):
        wait_written(H.lighttpd_port)
        for i, (u, t, c) in enumerate(self.accts):
            eq(money(u, t), (self.before[i][0] - Q, self.before[i][1] - Q),
               "account %d: token remain_quota, user quota" % i)
            eq(H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (t["id"],))[0]["n"], 1,
               "account %d: logs rows" % i)


@S.test(fronts=False)
def test_charges_go_on_while_a_commit_waits():
    """Strict metering: a charge is durable before its answer, not before
    the request is forwarded. While MariaDB holds every commit back,
    requests of five accounts sent at once are all charged and forwarded,
    and none is answered; once commits go on, each answers 200 and is
    charged exactly once, with its logs row."""
    h = HeldCommits([account() for _ in range(5)], "commit-wait")
    with h:
        for i in range(5):
            h.send(i)
        check(h.forwarded(count=5), "with commits held back, not every request was forwarded: "
              "the stub saw %d of 5" % h.seen())
        for t in h.th:
            t.join(0.5)
        eq(h.answered(), [], "requests answered before their charge was committed")
    for i in range(5):
        expect_ok(h.answer(i), "request %d once commits went on" % i)
    h.charged_once_each()


@S.test(fronts=False)
def test_charger_killed_before_commit():
    """Strict metering: the charger dies (SIGKILL) while commits are held
    back, with three requests charged in its open transaction and already
    forwarded. None of them is answered with the upstream's answer: each
    gets 503 database_unavailable and ends up charged nothing, whether
    the server undid the transaction or committed it after all (then the
    refund, under the slot rows, undoes it). The master starts a new
    charger, which charges the next request."""
    h = HeldCommits([account() for _ in range(3)], "charger-killed")
    victim = H.charger_pid()
    check(victim is not None, "no charger process under the main pool")
    with h:
        for i in range(3):
            h.send(i)
        check(h.forwarded(count=3), "the three requests were not forwarded")
        os.kill(victim, signal.SIGKILL)
        for t in h.th:
            t.join(30)
    for i in range(3):
        expect_gw_error(h.answer(i), 503, "database_unavailable", "数据库暂时不可用，请稍后重试",
                        "request %d" % i)
    harness.wait_for(lambda: H.charger_pid() not in (None, victim), 10, "a new charger")
    harness.wait_for(lambda: all(money(u, t) == h.before[i] for i, (u, t, c) in enumerate(h.accts)),
                     10, "every account as before (charged nothing)")
    wait_written(H.lighttpd_port)
    for i, (u, t, c) in enumerate(h.accts):
        eq(H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (t["id"],))[0]["n"], 0,
           "account %d: logs rows" % i)
    r = request(H.lighttpd_port, "POST", h.path + "/after", auth(h.accts[0][1]), b"{}", timeout=30)
    expect_ok(r, "a request after the new charger started")
    wait_written(H.lighttpd_port)
    eq(money(*h.accts[0][:2])[0], h.before[0][0] - Q, "account 0 after one more request")


@S.test(fronts=False)
def test_charges_applied_again_after_a_deadlock():
    """Strict metering: the charger's open transaction, holding a charge
    whose request is already at the upstream, is chosen as a deadlock's
    victim (another client holds a token row it wants, and wants one it
    holds, as another host's charger could). The charges it held are
    applied again in a new transaction: every request answers 200 and
    is charged exactly once."""
    h = HeldCommits([account() for _ in range(3)], "deadlock")
    H.sql("CREATE TABLE IF NOT EXISTS bltcy_test_weight (id INT PRIMARY KEY, v INT NOT NULL)"
          " ENGINE=InnoDB")
    H.sql("REPLACE INTO bltcy_test_weight (id, v) SELECT seq, 0 FROM seq_1_to_300")

    def lock_waits():
        return sum(1 for r in H.sql("SELECT trx_state FROM information_schema.INNODB_TRX")
                   if r["trx_state"] == "LOCK WAIT")
    x = pymysql.connect(unix_socket=H.db_sock, user="root", password="", database="bltcy",
                        autocommit=False)
    try:
        # the first request's transaction stays in its commit; the
        # charger's other connection takes the next ones
        with h:
            h.send(0)
            check(h.forwarded("0"), "request 0 not forwarded")
            xc = x.cursor()
            xc.execute("UPDATE bltcy_test_weight SET v = v + 1")  # heavier than the charger's
            xc.execute("UPDATE tokens SET accessed_time = accessed_time + 1 WHERE id = %s",
                       (h.accts[2][1]["id"],))
            h.send(1)
            check(h.forwarded("1"), "request 1 not forwarded")
            h.send(2)     # waits for the token row x holds
            # INNODB_TRX is refreshed only after 0.1 s without a read
            harness.wait_for(lambda: lock_waits() > 0, 10,
                             "the charge of request 2 waiting for a lock", interval=0.25)
            # x now wants the row the charger holds for request 1: a
            # deadlock, whose victim is the lighter transaction
            xc.execute("UPDATE tokens SET accessed_time = accessed_time + 1 WHERE id = %s",
                       (h.accts[1][1]["id"],))
            x.rollback()
    finally:
        x.close()
        H.sql("DROP TABLE IF EXISTS bltcy_test_weight")
    for i in range(3):
        expect_ok(h.answer(i), "request %d" % i)
    eq(h.seen(), 3, "requests forwarded")
    h.charged_once_each()


@S.test(fronts=False)
def test_refund_outlives_killed_worker():
    """Strict, one worker: its refund waits for the stopped MariaDB and the
    worker is killed (SIGKILL). The master keeps the worker's slot from
    being reused and does the refund once MariaDB is back, exactly once."""
    user, token, chan = account()
    p = pool("owed-kill", METERING="strict")
    try:
        expect_ok(request(p.port, "POST", "/kling/v1/" + uniq("warm"), auth(token), b"{}"), "warm-up POST")
        wait_written(p.port)
        before = refund_waits(p, user, token, chan)
        victim = p.workers_pids()[0]
        os.kill(victim, signal.SIGKILL)
        harness.wait_for(lambda: p.workers_pids() and victim not in p.workers_pids(), 10,
                         "a new worker in place of the killed one")
        refund_done_once(p, user, token, chan, before)
    finally:
        if not H.procs.get("mariadbd"):
            H.start_db()
        p.stop()


@S.test(fronts=False)
def test_refund_outlives_pool_sigterm():
    """Strict, one worker: its refund waits for the stopped MariaDB and the
    whole pool is stopped (SIGTERM, exit 0). The pool started again on the
    same socket does the refund once MariaDB is back, exactly once."""
    user, token, chan = account()
    p = pool("owed-term", METERING="strict")
    try:
        expect_ok(request(p.port, "POST", "/kling/v1/" + uniq("warm"), auth(token), b"{}"), "warm-up POST")
        wait_written(p.port)
        before = refund_waits(p, user, token, chan)
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.proc.wait(30)
        except Exception:  # noqa: BLE001
            raise Fail("pool still running 30 s after SIGTERM")
        eq(p.proc.returncode, 0, "exit status of the pool after SIGTERM")
        p.stop()
        p = pool("owed-term", METERING="strict")
        refund_done_once(p, user, token, chan, before)
    finally:
        if not H.procs.get("mariadbd"):
            H.start_db()
        p.stop()


# ---------------------------------------------------------------------------
# lease slots are given up when idle


@S.test(fronts=False)
def test_lease_slots_reclaimed():
    """METERING=lease with LEASE_SLOTS=64: 64 tokens take every slot, so
    a 65th is refused (503); once their leases went back (idle 10 s) their
    slots are given up and the 65th is served, and so is one of the first
    64 again, each charged exactly once."""
    p = pool("slots", METERING="lease", LEASE_SLOTS=64)
    try:
        user = H.make_user(quota=10 ** 12)
        H.make_channel(user["group"], setting={"passthrough_quota": Q})
        toks = [H.make_token(user, remain_quota=10 ** 9) for _ in range(65)]
        for i, t in enumerate(toks[:64]):
            expect_ok(request(p.port, "POST", "/kling/v1/slot/%d" % i, auth(t), b"{}"), "POST of token %d" % i)
        r = request(p.port, "POST", "/kling/v1/slot/64", auth(toks[64]), b"{}")
        expect_gw_error(r, 503, "database_unavailable", "数据库暂时不可用，请稍后重试", "token 65 while 64 hold a slot")
        t0 = time.time()
        r = harness.wait_for(lambda: (lambda x: x if x.status == 200 else None)(
            request(p.port, "POST", "/kling/v1/slot/64", auth(toks[64]), b"{}")), 30,
            "token 65 served once slots are given up", interval=0.5)
        check(time.time() - t0 >= 8, "token 65 served after %.1f s, before the leases went idle" % (time.time() - t0))
        expect_ok(request(p.port, "POST", "/kling/v1/slot/again", auth(toks[0]), b"{}"), "token 1 again")
        wait_written(p.port)
        used = [row("SELECT used_quota FROM tokens WHERE id=%s", (t["id"],))["used_quota"] for t in toks]
        eq(used, [2 * Q] + [Q] * 64, "used_quota of the 65 tokens")
        u = row("SELECT used_quota, request_count FROM users WHERE id=%s", (user["id"],))
        eq((u["used_quota"], u["request_count"]), (66 * Q, 66), "user used_quota, request_count")
        eq(H.sql("SELECT COUNT(*) AS n FROM logs WHERE user_id=%s", (user["id"],))[0]["n"], 66, "logs rows")
    finally:
        p.stop()


# ---------------------------------------------------------------------------


def start(keep):
    global H
    H = harness.start_suite(keep, workers=2)
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
