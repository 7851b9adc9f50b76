#!/usr/bin/python3
"""Integration tests of a DSN that names several database servers: the
pool's processes all on one node, moving on together when it goes down
and back when it is up again; a Galera node that is not synced skipped;
bltcy-ctl node-check as HAProxy's external-check calls it; migrate on a
server that writes a binary log.

Besides the harness's MariaDB: two plain MariaDB servers on loopback TCP
ports (node A, node B, the second with a binary log), and a one-node
Galera cluster (node G, run as mysql), each with a user that has no
SUPER privilege, as a relay host on a cluster would have.

Prints one line per test and ends with `nodes: N passed, M failed`.

Usage: test_nodes.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import os
import pwd
import re
import shutil
import signal
import subprocess
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
import pymysql  # noqa: E402
from harness import request, wait_for, SetupError  # noqa: E402

H = None
S = runner.Suite("nodes", timeout=120)
Fail, check, eq = runner.Fail, runner.check, runner.eq

USER, PASSWORD = "relay", "Nodes-Secret-7"
GALERA = "/usr/lib/galera/libgalera_smm.so"
NODES = {}   # name: {"port", "dir", "sock", "argv"}


def node_dsn(*names):
    return "mysql://%s:%s@%s/bltcy" % (USER, PASSWORD, ",".join(
        "127.0.0.1:%d" % NODES[n]["port"] for n in names))


def node_name(n):
    return "127.0.0.1:%d" % NODES[n]["port"]


def root(n):
    return pymysql.connect(unix_socket=NODES[n]["sock"], user="root", password="",
                           autocommit=True, connect_timeout=5)


def root_sql(n, *stmts):
    c = root(n)
    try:
        with c.cursor() as cur:
            for q in stmts:
                cur.execute(q)
    finally:
        c.close()


def start_node(n):
    nd = NODES[n]
    H.spawn("node" + n, nd["argv"])

    def ready():
        if H.procs["node" + n].poll() is not None:
            raise SetupError("node %s exited: %s" % (n, open(nd["err"], errors="replace").read()[-2000:]))
        root(n).close()
        return True
    wait_for(ready, 60, "node " + n)


def stop_node(n):
    H.kill("node" + n, signal.SIGTERM, wait=30)


def ctl(dsn, *args):
    """bltcy-ctl with the suite's config but SQL_DSN dsn: (exit, stdout+stderr)."""
    path = os.path.join(H.dir, "ctl-%d.env" % abs(hash(dsn)))
    with open(path, "w") as f:
        for k, v in H.config.items():
            f.write("%s=%s\n" % (k, dsn if k == "SQL_DSN" else v))
    env = H.env()
    env["BLTCY_CONFIG"] = path
    p = subprocess.run([os.path.join(harness.BUILD, "bltcy-ctl"), *args], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def health(port):
    r = request(port, "GET", "/bltcy/health", timeout=15)
    return r.status, r.body


def health_on(n):
    return (200, b'{"status":"ok","db_node":"%s"}' % node_name(n).encode())


def changes(port):
    return harness.pool_metrics(port)["bltcy_db_node_changes_total"]


def log_text(pool):
    with open(pool.log_file, "rb") as f:
        return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# tests


@S.test(fronts=False)
def test_failover_and_failback():
    """Node A down: the first statement that finds it so moves the whole
    pool to B; A back: the master's tick moves it back within about 5 s."""
    pool = H.start_pool("twonodes", workers=2, SQL_DSN=node_dsn("A", "B"))
    try:
        for i in range(6):
            eq(health(pool.port), health_on("A"), "health %d, both nodes up" % i)
        eq(changes(pool.port), 0, "node changes before")
        stop_node("A")
        eq(health(pool.port), health_on("B"), "the first health after A stopped")
        # every worker answers; each must be on B (the host's processes together)
        for i in range(6):
            eq(health(pool.port), health_on("B"), "health %d on B" % i)
        eq(changes(pool.port), 1, "node changes after A stopped")
        check(("database node %s -> %s: " % (node_name("A"), node_name("B"))) in log_text(pool),
              "no log line of the move to B")
        start_node("A")
        t0 = time.time()
        wait_for(lambda: health(pool.port) == health_on("A"), 12, "the pool back on A")
        back = time.time() - t0
        for i in range(6):
            eq(health(pool.port), health_on("A"), "health %d back on A" % i)
        eq(changes(pool.port), 2, "node changes after A came back")
        text = log_text(pool)
        check(("database node %s -> %s: an earlier node is ready again" % (
            node_name("B"), node_name("A"))) in text, "no log line of the move back")
        check(PASSWORD not in text, "the password is in the log")
        check(back < 9, "back on A after %.1f s" % back)
    finally:
        pool.stop()
        if "nodeA" not in H.procs:
            start_node("A")


@S.test(fronts=False)
def test_node_check():
    """As HAProxy calls it (proxy address and port, server address and
    port) and with the server alone."""
    g, a = NODES["G"]["port"], NODES["A"]["port"]
    eq(ctl(node_dsn("A"), "node-check", "127.0.0.1", "3306", "127.0.0.1", str(g)),
       (0, "synced\n"), "node-check of the synced Galera node")
    eq(ctl(node_dsn("A"), "node-check", "127.0.0.1", str(a)), (0, "synced\n"),
       "node-check of a server without Galera")
    root_sql("G", "SET GLOBAL wsrep_desync = ON")
    try:
        eq(ctl(node_dsn("A"), "node-check", "NOT_USED", "NOT_USED", "127.0.0.1", str(g)),
           (1, "not synced: Donor/Desynced\n"), "node-check of the desynced node")
    finally:
        root_sql("G", "SET GLOBAL wsrep_desync = OFF")
    closed = harness.free_port()
    rc, out = ctl(node_dsn("A"), "node-check", "127.0.0.1", str(closed))
    eq(rc, 1, "node-check of a closed port: exit")
    check(re.match(r"^unreachable: .+\n$", out), "node-check of a closed port: %r" % out)
    rc, out = ctl(node_dsn("A").replace(PASSWORD, "Wrong-Secret-9"), "node-check", "127.0.0.1", str(a))
    eq(rc, 1, "node-check with a wrong password: exit")
    check(out.startswith("unreachable: Access denied") and "Wrong-Secret-9" not in out,
          "node-check with a wrong password: %r" % out)


@S.test(fronts=False)
def test_not_synced_skipped():
    """A Galera node first in the DSN but desynced: the pool starts on the
    next one, and moves to the first when it is synced again."""
    root_sql("G", "SET GLOBAL wsrep_desync = ON")
    pool = None
    try:
        pool = H.start_pool("galera", workers=2, SQL_DSN=node_dsn("G", "A"))
        for i in range(4):
            eq(health(pool.port), health_on("A"), "health %d while G is desynced" % i)
        root_sql("G", "SET GLOBAL wsrep_desync = OFF")
        wait_for(lambda: health(pool.port) == health_on("G"), 12, "the pool on G once synced")
        for i in range(4):
            eq(health(pool.port), health_on("G"), "health %d on G" % i)
    finally:
        root_sql("G", "SET GLOBAL wsrep_desync = OFF")
        if pool is not None:
            pool.stop()


@S.test(fronts=False)
def test_migrate_with_binary_log():
    """Node B writes a binary log and the user has no SUPER: migrate stops
    at the first trigger and says what to do; done, it runs through."""
    root_sql("B", "DROP DATABASE IF EXISTS bltcy_binlog", "CREATE DATABASE bltcy_binlog",
             "SET GLOBAL log_bin_trust_function_creators = 0")
    dsn = node_dsn("B").replace("/bltcy", "/bltcy_binlog")
    rc, out = ctl(dsn, "migrate")
    eq(rc, 1, "migrate exit: %s" % out)
    check("You do not have the SUPER privilege and binary logging is enabled" in out,
          "the server's error: %r" % out)
    check(out.rstrip("\n").endswith(
        "bltcy-ctl: the server writes a binary log (as every Galera node does): set "
        "log_bin_trust_function_creators = 1 on every database server, in the [mysqld] "
        "section of its config (e.g. /etc/mysql/mariadb.conf.d/60-bltcy.cnf) or at once "
        "with SET GLOBAL log_bin_trust_function_creators = 1, then run bltcy-ctl migrate "
        "again"), "what to do: %r" % out)
    check(PASSWORD not in out, "the password in the output")
    root_sql("B", "SET GLOBAL log_bin_trust_function_creators = 1")
    rc, out = ctl(dsn, "migrate")
    eq((rc, out.splitlines()[-1]), (0, "schema up to date"), "migrate again")


# ---------------------------------------------------------------------------
# runner


def make_node(n, base, owner=None, extra=()):
    """A data directory copied from base, and the server's command line."""
    d = os.path.join(H.dir, "node" + n)
    shutil.copytree(base, d, symlinks=True)
    port, gport = harness.free_port(), harness.free_port()
    nd = {"dir": d, "port": port, "sock": os.path.join(d, "s.sock"), "err": os.path.join(d, "err")}
    argv = ["mariadbd", "--no-defaults", "--datadir=%s/data" % d, "--tmpdir=%s/tmp" % d,
            "--socket=%s" % nd["sock"], "--port=%d" % port, "--bind-address=127.0.0.1",
            "--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--log-error=%s" % nd["err"],
            "--user=%s" % (owner or "root")]
    if n == "G":
        argv += ["--binlog-format=ROW", "--wsrep-on=ON", "--wsrep-provider=%s" % GALERA,
                 "--wsrep-cluster-address=gcomm://", "--wsrep-new-cluster",
                 "--wsrep-node-address=127.0.0.1",
                 "--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:%d" % gport]
    argv += list(extra)
    nd["argv"] = argv
    if owner:
        pw = pwd.getpwnam(owner)
        for dp, dns, fns in os.walk(d):
            for x in [dp] + [os.path.join(dp, f) for f in fns]:
                os.lchown(x, pw.pw_uid, pw.pw_gid)
    NODES[n] = nd


def setup(h):
    global H
    H = h
    # one bootstrap, copied for each node (a copy costs far less than another)
    base = os.path.join(h.dir, "nodebase")
    os.makedirs(os.path.join(base, "tmp"))
    p = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=%s/data" % base,
                        "--tmpdir=%s/tmp" % base, "--user=root",
                        "--auth-root-authentication-method=normal"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    if p.returncode != 0:
        raise SetupError("mariadb-install-db: %s" % p.stderr.decode("utf-8", "replace")[-2000:])
    # Galera's state transfer and the server run as mysql: the way there too
    os.chmod(h.dir, 0o711)
    make_node("A", base)
    make_node("B", base, extra=["--log-bin=%s/nodeB/binlog" % h.dir, "--server-id=2"])
    make_node("G", base, owner="mysql")
    for n in ("A", "B", "G"):
        start_node(n)
        root_sql(n, "CREATE DATABASE IF NOT EXISTS bltcy CHARACTER SET utf8mb4",
                 "CREATE USER '%s'@'%%' IDENTIFIED BY '%s'" % (USER, PASSWORD),
                 "GRANT ALL PRIVILEGES ON `bltcy%%`.* TO '%s'@'%%'" % USER,
                 "SET GLOBAL log_bin_trust_function_creators = 1")
        rc, out = ctl(node_dsn(n), "migrate")
        if rc != 0:
            raise SetupError("migrate on node %s: %s" % (n, out))


def start(keep):
    return harness.start_suite(keep, workers=2, setup=setup)


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
