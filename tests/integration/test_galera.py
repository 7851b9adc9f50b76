#!/usr/bin/python3
"""Integration tests of relay hosts on a MariaDB Galera cluster: three
nodes on loopback (galera.py), two relay pools ("hosts", each behind its
own lighttpd) and the stub upstream, in three layouts and both metering
modes:

  haproxy  both hosts' SQL_DSN name HAProxy, configured by the shipped
           haproxy.cfg.sample: node 1 writes, nodes 2 and 3 are backups
  list     both hosts' SQL_DSN name the three nodes in the same order
           (one writer without HAProxy; back to node 1 when it returns)
  split    the hosts on different nodes: host A n1,n2,n3, host B n2,n3,n1

In each layout and mode: a token with quota for exactly 100 requests and
400 sent at once over both hosts; 3,000 requests at 64 at once (503s
under 0.5 %, books exact); half the upstream answers failing (every
failed one refunded); node 1 (the writer, or host A's node) killed with
SIGKILL under load (service back within 15 s, books exact); node 1
restarted (it rejoins, the hosts end on one writer, nothing set aside).
The figures (503s, seconds to recover) are printed as `# figure:` lines.

BLTCY_GALERA_LAYOUTS and BLTCY_GALERA_MODES (comma lists) run a subset;
BLTCY_GALERA_CHECK names a health check command for HAProxy in place of
the shipped bltcy-node-check.

Prints one line per test and ends with `galera: N passed, M failed`.

Usage: test_galera.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import os
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import galera  # noqa: E402
import harness  # noqa: E402
from harness import Conn, SetupError  # noqa: E402
import runner  # noqa: E402
from runner import Fail, check, eq, gw_error_body, short  # noqa: E402

H = None
S = runner.Suite("galera", timeout=300, watch=("stub", "haproxy"))
Q = 1000                 # passthrough_quota of every channel here
RECOVER_S = 15           # service back within this after a node is lost
LAYOUTS = [x for x in os.environ.get("BLTCY_GALERA_LAYOUTS", "haproxy,list,split").split(",") if x]
MODES = [x for x in os.environ.get("BLTCY_GALERA_MODES", "strict,lease").split(",") if x]
BODY = b'{"prompt":"a cat"}'


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"]), ("Content-Type", "application/json")]


def account(remain_quota=10 ** 12):
    user, token, chan = H.setup_account(quota=10 ** 13, remain_quota=remain_quota,
                                        setting={"passthrough_quota": Q})
    visible(token)
    return user, token, chan


def visible(token):
    """Until every running node has applied the token's row: the hosts
    read it on their own nodes, which apply what node 3 wrote a moment
    later (wsrep_sync_wait makes the read wait for that)."""
    for i in H.cluster.nodes:
        if not H.cluster.running(i):
            continue
        c = H.cluster.root(i)
        try:
            cur = c.cursor()
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute("SELECT COUNT(*) AS n FROM bltcy.tokens WHERE id = %s", (token["id"],))
            eq(cur.fetchone()["n"], 1, "token row on node %d" % i)
        finally:
            c.close()


# ---------------------------------------------------------------------------
# the hosts of a layout


class Hosts:
    current = None       # (layout, mode, [pool A, pool B])
    failed = {}          # (layout, mode): why its hosts did not start


def dsns(layout):
    c = H.cluster
    if layout == "haproxy":
        port = getattr(H, "haproxy_port", None) or start_haproxy()
        wait_haproxy("n1")
        one = "mysql://%s:%s@127.0.0.1:%d/bltcy" % (galera.USER, c.password, port)
        return one, one
    if layout == "list":
        return c.dsn([1, 2, 3]), c.dsn([1, 2, 3])
    return c.dsn([1, 2, 3]), c.dsn([2, 3, 1])


def start_haproxy():
    """HAProxy from the sample, its check the shipped bltcy-node-check.
    HAProxy runs the check as user haproxy with PATH alone: the check
    finds, first on that PATH, a bltcy-ctl that runs the build's with
    this run's config in place of /etc/bltcy-relay/node-check.env, which
    holds SQL_DSN alone, as the installed one does."""
    d = H.cluster.dir
    conf = os.path.join(d, "node-check.env")
    with open(conf, "w") as f:
        f.write("SQL_DSN=%s\n" % H.cluster.dsn([1], user=galera.CHECK_USER))
    os.chmod(conf, 0o644)
    shim = os.path.join(d, "bin")
    os.makedirs(shim, exist_ok=True)
    os.chmod(shim, 0o755)
    with open(os.path.join(shim, "bltcy-ctl"), "w") as f:
        # the check passes -c /etc/bltcy-relay/node-check.env first
        f.write("#!/bin/sh\n[ \"$1\" = -c ] || exit 3\nshift 2\nexec %s -c %s \"$@\"\n"
                % (os.path.join(harness.BUILD, "bltcy-ctl"), conf))
    os.chmod(os.path.join(shim, "bltcy-ctl"), 0o755)
    cmd = os.environ.get("BLTCY_GALERA_CHECK") or os.path.join(harness.ROOT, "bltcy-node-check")
    return H.start_haproxy(cmd, shim + ":/usr/bin:/bin")


def wait_haproxy(active, timeout=30):
    """Until HAProxy has every node up (node `active` serving)."""
    def ready():
        s = H.haproxy_servers()
        return all(v[0] == "UP" for v in s.values()) and len(s) == 3
    try:
        harness.wait_for(ready, timeout, "HAProxy: every node UP", interval=0.2)
    except SetupError:
        raise Fail("HAProxy servers: %r" % H.haproxy_servers())


def hosts(layout, mode):
    """The two hosts of (layout, mode), started when another pair (or
    none) runs; the cluster whole first."""
    cur = Hosts.current
    if cur is not None and cur[:2] == (layout, mode):
        return cur[2]
    if (layout, mode) in Hosts.failed:
        raise Fail(Hosts.failed[layout, mode])
    if cur is not None:
        for p in cur[2]:
            p.stop()
        Hosts.current = None
    ensure_cluster()
    pools = []
    try:
        a, b = dsns(layout)
        for name, dsn in (("A", a), ("B", b)):
            pools.append(H.start_pool("%s-%s-%s" % (layout, mode, name), workers=2, SQL_DSN=dsn,
                                      METERING=mode))
    except (SetupError, Fail) as e:
        for p in pools:
            p.stop()
        Hosts.failed[layout, mode] = "hosts of %s/%s did not start: %s" % (layout, mode, e)
        raise Fail(Hosts.failed[layout, mode])
    Hosts.current = (layout, mode, pools)
    return pools


def ensure_cluster():
    c = H.cluster
    for i in c.nodes:
        if not c.running(i):
            c.restart(i)
    for i in c.nodes:
        c.wait_synced(i, size=3)


def flushed(pools, timeout=30):
    for p in pools:
        harness.wait_written(p.port, timeout)


# ---------------------------------------------------------------------------
# load


class Result:
    __slots__ = ("host", "t0", "t1", "status", "body", "rid")

    def __init__(self, host, t0, t1, status, body=b"", rid=None):
        self.host, self.t0, self.t1, self.status, self.body, self.rid = host, t0, t1, status, body, rid


def one(c, host, path, token):
    """One request on keep-alive connection c (a new one when c is None
    or broken). Returns (connection to use next, Result)."""
    t0 = time.time()
    for attempt in (0, 1):
        try:
            if c is None:
                c = Conn(host[1], timeout=60)
            c.send_request("POST", path, auth(token) + [("Connection", "keep-alive")], BODY)
            c.read_head("POST")
            body = c.read_body()
            r = Result(host[0], t0, time.time(), c.status, body, c.header_rid())
            if (c.header("connection") or "").lower() == "close":
                c.close()
                c = None
            return c, r
        except (OSError, ConnectionError, ValueError, IndexError):
            if c is not None:
                c.close()
            c = None
            if attempt == 1:
                return None, Result(host[0], t0, time.time(), 0)
    return None, Result(host[0], t0, time.time(), 0)


def _conn_header(self, name):
    for k, v in self.headers:
        if k.lower() == name:
            return v
    return None


Conn.header = _conn_header
Conn.header_rid = lambda self: _conn_header(self, "x-request-id")


def load(pools, token, total=None, conc=64, path=None, until=None, seen=None):
    """conc client threads, half on each host, each on a keep-alive
    connection, sending requests until total are sent (or until() is
    true, when total is None). path(k) is the k-th request's path; each
    Result is also appended to the list seen as it ends. Returns the
    Results in order of sending."""
    path = path or (lambda k: "/kling/v1/ha/%d" % k)
    hosts_ = [("A", pools[0].port), ("B", pools[1].port)]
    lock = threading.Lock()
    nxt = [0]
    out = {}

    def worker(slot):
        c = None
        host = hosts_[slot % 2]
        while True:
            with lock:
                k = nxt[0]
                if (total is not None and k >= total) or (total is None and until()):
                    break
                nxt[0] += 1
            c, r = one(c, host, path(k), token)
            out[k] = r
            if seen is not None:
                seen.append(r)
        if c is not None:
            c.close()
    ts = [threading.Thread(target=worker, args=(s,)) for s in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    return [out[k] for k in sorted(out)]


def at_once(pools, token, n, path):
    """n requests started together (a barrier), half on each host, each
    on a connection of its own."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def go(k):
        host = ("A", pools[0].port) if k % 2 == 0 else ("B", pools[1].port)
        c = None
        try:
            c = Conn(host[1], timeout=60)
        except OSError:
            pass
        try:
            barrier.wait(30)
        except threading.BrokenBarrierError:
            pass
        if c is None:
            out[k] = Result(host[0], time.time(), time.time(), 0)
            return
        _, out[k] = one(c, host, path(k), token)
    ts = [threading.Thread(target=go, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


def count(results, status):
    return sum(1 for r in results if r.status == status)


def kinds(results):
    out = {}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return out


def is_denial(r):
    rid = r.rid or ""
    return (r.status == 403 and r.body == gw_error_body(rid, "insufficient_quota", "额度不足")) or \
        (r.status == 401 and r.body == gw_error_body(rid, "token_quota_exhausted", "该令牌额度已用尽"))


def books(token, user, answered, spent_from, mode, stub_paths=None, what=""):
    """The token's and user's books against `answered` requests answered
    200: used_quota, remain_quota (with what hosts hold leased, in lease
    metering), logs rows, and (stub_paths: a regular expression) the
    requests the stub received."""
    t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
    u = H.sql("SELECT quota, used_quota FROM users WHERE id=%s", (user["id"],))[0]
    leased_t = int(H.sql("SELECT COALESCE(SUM(amount), 0) AS a FROM bltcy_leases WHERE token_id=%s",
                         (token["id"],))[0]["a"])
    leased_u = int(H.sql("SELECT COALESCE(SUM(amount), 0) AS a FROM bltcy_leases WHERE user_id=%s",
                         (user["id"],))[0]["a"])
    logs = H.sql("SELECT COUNT(*) AS n, COALESCE(SUM(quota), 0) AS q FROM logs WHERE token_id=%s",
                 (token["id"],))[0]
    got = {"logs rows": logs["n"], "logs quota": int(logs["q"]), "token used_quota": t["used_quota"],
           "token remain_quota (+ leased)": t["remain_quota"] + leased_t,
           "user used_quota": u["used_quota"], "user quota (+ leased)": u["quota"] + leased_u}
    want = {"logs rows": answered, "logs quota": answered * Q, "token used_quota": answered * Q,
            "token remain_quota (+ leased)": spent_from[0] - answered * Q,
            "user used_quota": answered * Q, "user quota (+ leased)": spent_from[1] - answered * Q}
    if stub_paths is not None:
        got["stub received"] = len(H.stub.matching(stub_paths))
        want["stub received"] = answered
    eq(got, want, "%s books (%s metering) against %d answered 200" % (what, mode, answered))


def rejected():
    return H.sql("SELECT COUNT(*) AS n FROM bltcy_usage_rejected")[0]["n"]


def figure(layout, mode, **kw):
    print("# figure: layout=%s mode=%s %s" % (layout, mode, " ".join("%s=%s" % kv for kv in kw.items())),
          flush=True)


# ---------------------------------------------------------------------------
# the tests of one layout and mode


def t_quota(layout, mode):
    """A token with quota for exactly 100 requests, 400 sent at once over
    both hosts: exactly 100 answered 200 and charged, the rest refused
    for quota, the stub reached 100 times."""
    pools = hosts(layout, mode)
    H.stub.reset()
    user, token, _ = account(remain_quota=100 * Q)
    tag = harness.rand_name("q")
    res = at_once(pools, token, 400, lambda k: "/kling/v1/%s/%d" % (tag, k))
    flushed(pools)
    other = [r for r in res if r.status != 200 and not is_denial(r)]
    figure(layout, mode, test="quota", answers=kinds(res))
    check(not other, "answers neither 200 nor a quota refusal: %d, e.g. %s" % (
        len(other), ["%d %s" % (r.status, r.body[:200].decode("utf-8", "replace")) for r in other[:3]]))
    eq(count(res, 200), 100, "answered 200 of 400 at once on a token worth 100")
    books(token, user, 100, (100 * Q, 10 ** 13), mode, "/kling/v1/%s/" % tag, "quota")


def conflicts(pools, at):
    """Transactions of the money path that lost a certification conflict
    and were made again, as the hosts' logs say, since offsets at (a
    statement the database layer repeats on its own is not logged)."""
    n = 0
    for p, off in zip(pools, at):
        with open(p.log_file, "rb") as f:
            f.seek(off)
            n += sum(1 for line in f if b"lost a conflict" in line or b"Deadlock found" in line)
    return n


def t_load(layout, mode):
    """3,000 requests at 64 at once over both hosts: 503s under 0.5 %,
    every 200 charged once and logged once, nothing else charged."""
    pools = hosts(layout, mode)
    H.stub.reset()
    user, token, _ = account()
    tag = harness.rand_name("l")
    at = [os.path.getsize(p.log_file) for p in pools]
    t0 = time.time()
    res = load(pools, token, total=3000, conc=64, path=lambda k: "/kling/v1/%s/%d" % (tag, k))
    took = time.time() - t0
    flushed(pools)
    n503 = count(res, 503)
    figure(layout, mode, test="load", **{"503s": "%d/3000" % n503, "per10k": "%.0f" % (n503 * 10000 / 3000.0),
                                         "answers": kinds(res), "rps": "%.0f" % (3000 / took),
                                         "conflicts": conflicts(pools, at)})
    ok = count(res, 200)
    eq(ok + n503, 3000, "answers 200 or 503 (%r)" % kinds(res))
    check(n503 < 15, "503s: want under 0.5 %% of 3,000 (15), got %d" % n503)
    books(token, user, ok, (10 ** 12, 10 ** 13), mode, "/kling/v1/%s/" % tag, "load")


def t_refunds(layout, mode):
    """Half the upstream answers failing (500): every failed request
    refunded, the books those answered 200."""
    pools = hosts(layout, mode)
    H.stub.reset()
    tag = harness.rand_name("f")
    H.stub.script({"path": "^/kling/v1/%s/bad/" % tag, "status": 500,
                   "headers": [["Content-Type", "application/json"]], "body": '{"error":"upstream"}'},
                  replace=True)
    user, token, _ = account()
    res = load(pools, token, total=600, conc=64,
               path=lambda k: "/kling/v1/%s/%s/%d" % (tag, "bad" if k % 2 else "ok", k))
    flushed(pools)
    H.stub.script(replace=True)
    good = [r for k, r in enumerate(res) if k % 2 == 0]
    bad = [r for k, r in enumerate(res) if k % 2 == 1]
    figure(layout, mode, test="refunds", good=kinds(good), bad=kinds(bad))
    eq(count(bad, 200), 0, "a failed upstream answer passed on as 200")
    ok = count(good, 200)
    check(count(good, 503) < 3, "503s among the 300 good: %r" % kinds(good))
    eq(count(bad, 500), count(res, 500), "500s only where the upstream failed")
    check(count(bad, 500) > 290, "failed upstream answers passed on (500): %r" % kinds(bad))
    books(token, user, ok, (10 ** 12, 10 ** 13), mode, None, "refunds")
    eq(len(H.stub.matching("^/kling/v1/%s/ok/" % tag)), ok, "good requests the stub received")


def t_kill(layout, mode):
    """Node 1 (the writer; host A's node in the split layout) killed
    with SIGKILL under load: each host answers 200 again within 15 s,
    and afterwards the books are exact: charged = logs rows = answers
    200, nothing answered 503 stays charged."""
    pools = hosts(layout, mode)
    H.stub.reset()
    user, token, _ = account()
    tag = harness.rand_name("k")
    state = {"kill": None, "res": None}
    progress = []

    def until():
        kt = state["kill"]
        if kt is None:
            return False
        now = time.time()
        if now - kt > 25:
            return True
        # both hosts answered 200 for a request sent two seconds after
        # the kill or later: the loss is behind both
        return now - kt > 3 and all(any(r.host == h and r.status == 200 and r.t0 > kt + 2
                                          for r in progress[-400:]) for h in ("A", "B"))

    def run():
        state["res"] = load(pools, token, conc=32, path=lambda k: "/kling/v1/%s/%d" % (tag, k),
                            until=until, seen=progress)

    th = threading.Thread(target=run)
    th.start()
    harness.wait_for(lambda: sum(1 for r in progress if r.status == 200) >= 200, 60,
                     "200 answers before the kill")
    state["kill"] = H.cluster.kill(1)
    th.join(120)
    res = state["res"]
    kt = state["kill"]
    rec = {}
    for h in ("A", "B"):
        mine = [r for r in res if r.host == h and r.t0 >= kt]
        bad = [r for r in mine if r.status != 200]
        last_bad = max((r.t1 for r in bad), default=kt)
        firsts = [r.t1 for r in mine if r.status == 200 and r.t0 >= last_bad - 0.001] or \
                 [r.t1 for r in mine if r.status == 200 and r.t1 >= last_bad]
        rec[h] = (min(firsts) - kt) if firsts else None
    n503 = count(res, 503)
    figure(layout, mode, test="kill", **{"503s": "%d/%d" % (n503, len(res)),
                                         "recoverA": "%.1fs" % rec["A"] if rec["A"] is not None else "never",
                                         "recoverB": "%.1fs" % rec["B"] if rec["B"] is not None else "never",
                                         "answers": kinds(res)})
    H.cluster.wait_size(2)
    flushed(pools, timeout=60)
    for h in ("A", "B"):
        check(rec[h] is not None and rec[h] <= RECOVER_S,
              "host %s: first 200 after its last failure %s s after the kill, want within %d s" % (
                  h, "never" if rec[h] is None else "%.1f" % rec[h], RECOVER_S))
    ok = count(res, 200)
    eq(ok + n503, len(res), "answers 200 or 503 (%r)" % kinds(res))
    books(token, user, ok, (10 ** 12, 10 ** 13), mode, "/kling/v1/%s/" % tag, "after the kill")


def t_rejoin(layout, mode):
    """Node 1 restarted: it rejoins (synced, a cluster of 3); the hosts
    end on one writer (haproxy and list: every relay connection on node
    1); nothing set aside; requests through both hosts still exact."""
    pools = hosts(layout, mode)
    c = H.cluster
    if c.running(1):
        c.kill(1)
        c.wait_size(2)
    took = c.restart(1)
    for i in c.nodes:
        c.wait_synced(i, size=3)
    figure(layout, mode, test="rejoin", rejoin="%.1fs" % took)
    if layout == "haproxy":
        wait_haproxy("n1")
    H.stub.reset()
    user, token, _ = account()
    tag = harness.rand_name("r")
    sent = []

    def on_one_writer():
        sent.extend(load(pools, token, total=40, conc=8,
                         path=lambda k: "/kling/v1/%s/%d-%d" % (tag, len(sent), k)))
        n = {i: c.connections(i) for i in c.nodes}
        return n if n[1] > 0 and n[2] == 0 and n[3] == 0 else None
    if layout in ("haproxy", "list"):
        try:
            harness.wait_for(on_one_writer, 30, "every relay connection on node 1", interval=0.5)
        except SetupError:
            raise Fail("relay connections by node after the rejoin: want all on node 1, got %r" % (
                {i: c.connections(i) for i in c.nodes}))
    else:
        on_one_writer()
    flushed(pools)
    eq(count(sent, 200), len(sent), "answers after the rejoin (%r)" % kinds(sent))
    books(token, user, len(sent), (10 ** 12, 10 ** 13), mode, "/kling/v1/%s/" % tag, "after the rejoin")
    eq(rejected(), 0, "rows in bltcy_usage_rejected (records set aside)")


def register():
    for layout in LAYOUTS:
        for mode in MODES:
            for name, fn in (("quota", t_quota), ("load", t_load), ("refunds", t_refunds),
                             ("kill", t_kill), ("rejoin", t_rejoin)):
                def run(fn=fn, layout=layout, mode=mode):
                    fn(layout, mode)
                run.__name__ = "test_%s_%s_%s" % (layout, mode, name)
                run.__doc__ = fn.__doc__
                S.test(fronts=False)(run)


register()


def start(keep):
    global H
    H = galera.GaleraHarness(keep=keep)
    t0 = time.time()
    H.started()
    # the test's own reads and writes go through node 3, which no test kills
    H.use_node(3)
    print("# cluster up in %.1fs (install %.1fs, bootstrap %.1fs)" % (
        H.cluster.timings["up"], H.cluster.timings["install"], H.cluster.timings["bootstrap"]), flush=True)
    print("# harness up in %.1fs" % (time.time() - t0), flush=True)
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
