#!/usr/bin/python3
"""mariadbd CPU per statement for the relay's charge statements.

Usage: tests/bench/stmt_cost.py SOCKET [N]

SOCKET is the unix socket of a MariaDB that holds the relay's schema and
at least one token (for example a `make bench` run's, kept with
BENCH_KEEP=1, or the tests' with --keep). The mariadbd serving it must be
the newest one running on the machine: its CPU time is read from /proc.
Each statement runs N times (1500), one after another, as a server-side
prepared statement in autocommit mode, each on rows of its own; the
figure is mariadbd's CPU time (user + system, so the commit's flush
counts) per execution, next to the wall time.
"""

import os
import sys
import time

import pymysql

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import relay_sql  # noqa: E402

HOST = "stmt-cost"


def mariadbd_cpu_us(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1e6 / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    pid = int(os.popen("pgrep -n mariadbd").read())
    c = pymysql.connect(unix_socket=sys.argv[1], user="root", database="bltcy", autocommit=True)
    cur = c.cursor()
    cur.execute("SELECT id, user_id FROM tokens WHERE deleted_at IS NULL LIMIT 1")
    tid, uid = cur.fetchone()
    cur.execute("SELECT k, v FROM bltcy_meta WHERE k IN ('channels', 'auth')")
    meta = dict(cur.fetchall())
    cv, av = meta["channels"], meta["auth"]
    for s in range(8):
        cur.execute("REPLACE INTO bltcy_slots (host, slot, req, updated_at) VALUES (%s, %s, '', 0)",
                    (HOST, s))

    def single(i):
        rid = "cost-%d" % i
        return [uid, HOST, 0, 0, 1, 1, 1, 1, rid, 1, 1, tid, rid, 0, 1, 1, cv, av, 1, 1]

    def group(i, k=4):
        slots = list(range(k))
        rids = ["cost-%d-%d" % (i, j) for j in slots]

        def pad(xs):
            return (xs + [xs[0]] * 8)[:8]
        return ([uid, HOST] + pad(slots) + [0, k, k, k, k, k] + pad(slots) + pad(rids) + [1, 1, tid] +
                pad(rids) + [0, k, k, cv, av, k, k, k])

    cases = [
        ("round trip (SELECT ?)", "SELECT ?", lambda i: [i], 0),
        ("one-row UPDATE of the token", "UPDATE tokens SET accessed_time = ? WHERE id = ?",
         lambda i: [i, tid], 1),
        ("ST_CHARGE (one charge)", relay_sql("ST_CHARGE", "?"), single, 3),
        ("ST_CHARGE_GROUP, 4 charges", relay_sql("ST_CHARGE_GROUP", "?"), group, 6),
    ]
    try:
        for name, sql, args, changes in cases:
            cur.execute("PREPARE s FROM %s", (sql,))
            t0, w0 = mariadbd_cpu_us(pid), time.time()
            for i in range(n):
                a = args(i)
                cur.execute("SET " + ", ".join("@a%d = %%s" % k for k in range(len(a))), a)
                got = cur.execute("EXECUTE s USING " + ", ".join("@a%d" % k for k in range(len(a))))
                if changes and got != changes:
                    sys.exit("%s changed %d rows, not %d: not a fair measure" % (name, got, changes))
            t1, w1 = mariadbd_cpu_us(pid), time.time()
            print("%-30s %6.0f us mariadbd CPU  %6.0f us wall  per execution" %
                  (name, (t1 - t0) / n, (w1 - w0) * 1e6 / n))
    finally:
        cur.execute("DELETE FROM bltcy_slots WHERE host = %s", (HOST,))


if __name__ == "__main__":
    main()
