#!/usr/bin/python3
"""Benchmark of the relay against nginx proxy_pass (`make bench`).

Starts, on loopback and in a temporary directory: an upstream stand-in
(nginx `return 200` with a task-submission body), nginx proxy_pass to it
with upstream keep-alive (the baseline), a private MariaDB, the relay pool
under spawn-fcgi with lighttpd and nginx in front, one channel and one
token. Then drives baseline and gateway alternately with wrk and prints
throughput, latency, worker memory, upstream connections and database
round trips, with PASS/FAIL against the targets in BENCHMARKS.md.

Environment (all optional):
  BENCH_ROUNDS=3          rounds; each runs baseline and every front
  BENCH_SECONDS=10        length of each 32-connection wrk run
  BENCH_LAT_SECONDS=5     length of each single-connection wrk run
  BENCH_CONNS=32          connections of the throughput runs
  BENCH_THREADS=2         wrk threads of the throughput runs; client processes
                          of the in-flight scenario
  BENCH_WORKERS=4         RELAY_WORKERS
  BENCH_MODES=strict      METERING values to run, e.g. "strict lease"
  BENCH_FRONTS="lighttpd nginx"
  BENCH_SOAK=100000       gateway requests before the final RSS reading
  BENCH_MEM=1             the 64 MiB upload + download memory check
  BENCH_MEM_MIB=64
  BENCH_PROFILE=0         1: perf profile of the workers under load
  BENCH_FLOOR=1           0: skip the floor (a FastCGI program that only
                          answers, or only forwards: no token, no database)
  BENCH_PROFILE_SECONDS=8
  BENCH_NGINX_WORKERS=auto  worker_processes of the three nginx instances
  BENCH_DB_POOL=256M      innodb buffer pool of the private MariaDB
  BENCH_DB_ARGS=          more mariadbd options, e.g. "--innodb-flush-method=O_DSYNC"
  BENCH_DB_DIR=           where MariaDB's data directory goes (default: in
                          the temporary directory, with everything else)
  BENCH_DISK_PROBE=5      seconds of synchronous 4 KiB writes in that
                          directory first, to show what a durable commit
                          waits for on this disk (0: skip)
  BENCH_JSON=FILE         also write every figure as JSON to FILE
  BENCH_KEEP=1            keep the temporary directory (logs, perf data)
  BENCH_SCENARIOS="zero inflight"  what to run: zero = the metering modes
                          and the floor against a stand-in that answers at
                          once; inflight = a stand-in that answers late
  BENCH_PRICES=0          1: three price rules on the body's fields (one
                          applies), so every request is priced by them
  BENCH_RELAY_ENV=        more relay config keys, "KEY=VAL KEY=VAL", written
                          to the relay's config file after the bench's own
                          (so they can override them), for every pool
  BENCH_LIMITS=0          1: every zero-delay measurement twice, back to back
                          in the same round: without limits, then with
                          new-api's request-rate options on (counts that
                          never refuse) and bltcy_limits rows on the bench
                          token and its user (in flight, open jobs, a
                          minute: none ever reached); both printed side by
                          side ("lighttpd+limits")

The in-flight scenario (see BENCHMARKS.md): for every delay and client
count, proxy_pass and the gateway through every front, the first of
BENCH_MODES as metering, the pool started afresh for each run, sized as
the default install: the config's default RELAY_THREADS, spawn-fcgi's -b
and the fronts' connections and listen queues as the samples have them
(supervisor.conf.sample, lighttpd.conf.sample, nginx.conf.sample).
  BENCH_DELAYS="0.2 1 3"  seconds the stand-in waits before it answers
  BENCH_CLIENTS="256 1024 4096"  concurrent clients (keep-alive, closed loop)
  BENCH_SECONDS, BENCH_ROUNDS  as above; unset, in-flight uses 5 s, 1 round
  BENCH_INFLIGHT_TIMEOUT= seconds before an answer is a timeout; default
                          2 x delay + 2, at least 5
  BENCH_RAMP=             seconds over which the clients start, one after
                          another (0: all at the same instant); default
                          the delay, so that requests arrive evenly
  BENCH_WARMUP=           seconds of load before the measured BENCH_SECONDS
                          (same clients; answers not counted but for the
                          first wave's p99; errors counted); default
                          the ramp + the delay, at least ramp + 2
"""

import atexit
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pymysql

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, os.environ.get("BLTCY_BUILD", "build"))
MIB = 1024 * 1024


def env_int(name, default):
    v = os.environ.get(name, "")
    try:
        return int(v) if v.strip() else default
    except ValueError:
        sys.exit("bench: %s must be a number, not %r" % (name, v))


ROUNDS = env_int("BENCH_ROUNDS", 3)
SECONDS = env_int("BENCH_SECONDS", 10)
LAT_SECONDS = env_int("BENCH_LAT_SECONDS", 5)
CONNS = env_int("BENCH_CONNS", 32)
THREADS = env_int("BENCH_THREADS", 2)
WORKERS = env_int("BENCH_WORKERS", 4)
SOAK = env_int("BENCH_SOAK", 100000)
MEM_CHECK = env_int("BENCH_MEM", 1)
MEM_MIB = env_int("BENCH_MEM_MIB", 64)
PROFILE = env_int("BENCH_PROFILE", 0)
PROFILE_SECONDS = env_int("BENCH_PROFILE_SECONDS", 8)
FLOOR = env_int("BENCH_FLOOR", 1)
MODES = os.environ.get("BENCH_MODES", "").split() or ["strict"]
FRONTS = os.environ.get("BENCH_FRONTS", "").split() or ["lighttpd", "nginx"]
NGINX_WORKERS = os.environ.get("BENCH_NGINX_WORKERS", "auto")
DB_POOL = os.environ.get("BENCH_DB_POOL", "256M")
DB_ARGS = os.environ.get("BENCH_DB_ARGS", "").split()
DB_DIR = os.environ.get("BENCH_DB_DIR", "")
DISK_PROBE = env_int("BENCH_DISK_PROBE", 5)
KEEP = env_int("BENCH_KEEP", 0)
JSON_OUT = os.environ.get("BENCH_JSON", "")
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "").split() or ["zero", "inflight"]
RELAY_ENV = os.environ.get("BENCH_RELAY_ENV", "").split()
PRICES = os.environ.get("BENCH_PRICES", "0") == "1"
LIMITS = env_int("BENCH_LIMITS", 0)
IF_ROUNDS = env_int("BENCH_ROUNDS", 1)
IF_SECONDS = env_int("BENCH_SECONDS", 5)
IF_WARMUP = (float(os.environ["BENCH_WARMUP"]) if os.environ.get("BENCH_WARMUP")
             else None)
IF_RAMP = float(os.environ["BENCH_RAMP"]) if os.environ.get("BENCH_RAMP") else None
IF_TIMEOUT = os.environ.get("BENCH_INFLIGHT_TIMEOUT", "")


def env_list(name, default, kind):
    v = os.environ.get(name, "").replace(",", " ").split()
    try:
        xs = [kind(x) for x in v] if v else default
    except ValueError:
        sys.exit("bench: %s must be a list of numbers, not %r" % (name, os.environ[name]))
    if any(x <= 0 for x in xs):
        sys.exit("bench: %s: every value must be above 0" % name)
    return xs


DELAYS = env_list("BENCH_DELAYS", [0.2, 1.0, 3.0], float)
CLIENTS = env_list("BENCH_CLIENTS", [256, 1024, 4096], int)
# File descriptors wanted by the in-flight scenario: every front holds a
# client and a FastCGI or upstream connection per request. Set to what
# the bench got before anything starts.
NOFILE = 65536
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

def sample_value(name, pattern):
    """An integer the default install sets: the first group of pattern in
    ROOT/name (a sample) or in common/config.c."""
    with open(os.path.join(ROOT, name)) as f:
        m = re.search(pattern, f.read(), re.M)
    if not m:
        sys.exit("bench: %s no longer has %r" % (name, pattern))
    return int(m.group(1))


# What the default install holds, from the files it installs: the relay's
# request threads per worker (the config default, unless BENCH_RELAY_ENV
# sets it), the relay socket's listen queue (spawn-fcgi -b), the fronts'
# connections and listen queues.
INSTALL = {
    "threads": sample_value("common/config.c", r'"RELAY_THREADS", T_INT, "(\d+)"'),
    "backlog": sample_value("supervisor.conf.sample", r"^command=.*spawn-fcgi .*-b (\d+)"),
    "lighttpd_conns": sample_value("lighttpd.conf.sample", r"^server\.max-connections\s*=\s*(\d+)"),
    "lighttpd_backlog": sample_value("lighttpd.conf.sample", r"^server\.listen-backlog\s*=\s*(\d+)"),
    "nginx_conns": sample_value("nginx.conf.sample", r"^\s*worker_connections\s+(\d+);"),
    "nginx_backlog": sample_value("nginx.conf.sample", r"^\s*listen\s+3000\s+backlog=(\d+);"),
}
for _kv in os.environ.get("BENCH_RELAY_ENV", "").split():
    if _kv.startswith("RELAY_THREADS="):
        INSTALL["threads"] = int(_kv.split("=", 1)[1])
# The relay socket's listen queue: the default install's (the kernel caps
# it at net.core.somaxconn).
BACKLOG = INSTALL["backlog"]

PATH = "/kling/v1/videos/text2video"

# Targets (BENCHMARKS.md).
RATIO_TARGET = {"strict": 0.12, "lease": 0.35}
ADDED_P50_MS = 0.5
ADDED_P99_MS = 2.0
# a worker process: 8 MiB, and 96 KiB for each of its request threads (a
# thread that has served keeps the stack pages its requests touched)
RSS_MAX_MIB = 8.0 + INSTALL["threads"] * 96 / 1024
RSS_GROWTH_MIB = 1.0
MEM_GROWTH_MIB = 2.0
UPSTREAM_CONN_SLACK = 4
DB_RT_TARGET = {"strict": 3.0, "lease": 0.5}
# in-flight: the default install against an upstream answering after
# IF_TARGET_DELAY s, IF_TARGET_CLIENTS clients, answers as many as proxy_pass
IF_TARGET_DELAY = 3.0
IF_TARGET_CLIENTS = 4096
IF_TARGET = 0.95

# BENCH_LIMITS: what is set on the bench's user and token; none is ever
# reached (the open jobs of the whole run stay below tasks).
RATE_OPTIONS = (("ModelRequestRateLimitEnabled", "true"),
                ("ModelRequestRateLimitDurationMinutes", "1"),
                ("ModelRequestRateLimitCount", "10000000"),
                ("ModelRequestRateLimitSuccessCount", "10000000"))
LIMIT_ARGS = ("--in-flight", "100000", "--tasks", "1000000000", "--rpm", "1000000000")

DB_VARS = ("Questions", "Com_stmt_execute", "Com_call_procedure", "Com_select",
           "Com_commit", "Com_stmt_prepare", "Innodb_data_fsyncs",
           "Innodb_row_lock_waits", "Innodb_row_lock_time")

for bad in ("ROUNDS", "SECONDS", "LAT_SECONDS", "CONNS", "THREADS", "WORKERS"):
    if globals()[bad] < 1:
        sys.exit("bench: BENCH_%s must be at least 1" % bad)
for f in FRONTS:
    if f not in ("lighttpd", "nginx"):
        sys.exit("bench: unknown front %r in BENCH_FRONTS" % f)
for s in SCENARIOS:
    if s not in ("zero", "inflight"):
        sys.exit("bench: unknown scenario %r in BENCH_SCENARIOS (zero, inflight)" % s)
for kv in RELAY_ENV:
    if not re.match(r"^[A-Z][A-Z0-9_]*=", kv):
        sys.exit("bench: BENCH_RELAY_ENV: %r is not KEY=VALUE" % kv)
if IF_TIMEOUT:
    try:
        IF_TIMEOUT = float(IF_TIMEOUT)
    except ValueError:
        sys.exit("bench: BENCH_INFLIGHT_TIMEOUT must be a number of seconds")


# the integration harness's helpers: a failure to set up is a SetupError
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import SetupError as BenchError, free_port, wait_for  # noqa: E402


def log(msg):
    print("# " + msg, flush=True)


def http(port, path, method="GET", headers=None, body=None, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_mem(pid):
    """(VmRSS, RssAnon) in KiB, or None if the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    return (out.get("VmRSS", 0), out.get("RssAnon", 0), out.get("RssFile", 0),
            out.get("RssShmem", 0))


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------
# Processes


class Bench:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bltcy-bench.")
        self.procs = {}
        self.logs = {}
        self.mon = None
        self.mon_queries = 0
        self.token = None
        self.results = {"modes": {}}
        atexit.register(self.stop)

    # -- generic ----------------------------------------------------------
    def spawn(self, name, argv, env=None):
        out = open(os.path.join(self.dir, name + ".out"), "ab")
        self.logs[name] = out
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             env=env, start_new_session=True, cwd=self.dir)
        self.procs[name] = p
        return p

    def kill(self, name, wait=15):
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        # whatever is left of the group (workers, nginx workers)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.wait(5)
        f = self.logs.pop(name, None)
        if f:
            f.close()

    def stop(self):
        for name in ["wrk", "client0", "client1", "perf", "lighttpd", "front-nginx", "relay",
                     "baseline", "baseline-delay", "upstream", "upstream-delay", "mariadbd"]:
            if name in self.procs:
                self.kill(name, wait=30 if name == "mariadbd" else 10)
        for name in list(self.procs):
            self.kill(name)
        if self.mon is not None:
            try:
                self.mon.close()
            except Exception:  # noqa: BLE001
                pass
            self.mon = None
        if os.path.isdir(self.dir):
            if KEEP:
                log("kept %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, name, n=20):
        path = os.path.join(self.dir, name)
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no %s)" % name

    def render(self, template, out, **kw):
        with open(os.path.join(HERE, template)) as f:
            text = f.read()
        for k, v in kw.items():
            text = text.replace("@%s@" % k, str(v))
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise BenchError("%s: unfilled %s" % (template, left))
        path = os.path.join(self.dir, out)
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- MariaDB ----------------------------------------------------------
    def start_db(self):
        self.db_sock = os.path.join(self.dir, "mysql.sock")
        datadir = os.path.join(self.dir, "data")
        if DB_DIR:
            datadir = tempfile.mkdtemp(prefix="bltcy-bench-db.", dir=DB_DIR)
            atexit.register(shutil.rmtree, datadir, True)
        self.datadir = datadir
        p = subprocess.run(["mariadb-install-db", "--no-defaults",
                            "--datadir=%s" % datadir, "--user=root",
                            "--auth-root-authentication-method=normal"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=180)
        if p.returncode != 0:
            raise BenchError("mariadb-install-db: %s" % p.stderr.decode()[-2000:])
        self.spawn("mariadbd", ["mariadbd", "--no-defaults", "--datadir=%s" % datadir,
                                "--socket=%s" % self.db_sock, "--port=0",
                                "--skip-networking", "--user=root",
                                "--innodb-buffer-pool-size=%s" % DB_POOL,
                                "--max-connections=500",
                                "--log-error=%s/mariadb.err" % self.dir] + DB_ARGS)

        def ready():
            if self.procs["mariadbd"].poll() is not None:
                raise BenchError("mariadbd exited: %s" % self.tail("mariadb.err"))
            c = pymysql.connect(unix_socket=self.db_sock, user="root", password="")
            c.close()
            return True
        wait_for(ready, 90, "mariadbd")
        self.mon = pymysql.connect(unix_socket=self.db_sock, user="root", password="",
                                   autocommit=True)
        self.mq("CREATE DATABASE IF NOT EXISTS bltcy CHARACTER SET utf8mb4")
        rows = self.mq("SHOW GLOBAL VARIABLES WHERE Variable_name IN "
                       "('innodb_flush_log_at_trx_commit','innodb_buffer_pool_size',"
                       "'version','sync_binlog','log_bin','innodb_flush_method')")
        self.db_vars = {k: v for k, v in rows}

    def mq(self, q, args=None):
        """A monitoring query; counted so it can be taken out of Questions."""
        with self.mon.cursor() as c:
            self.mon_queries += 1
            c.execute(q, args)
            return c.fetchall()

    def db_status(self):
        rows = self.mq("SHOW GLOBAL STATUS WHERE Variable_name IN (%s)" %
                       ",".join("'%s'" % v for v in DB_VARS))
        st = {k: int(v) for k, v in rows}
        for k in DB_VARS:
            st.setdefault(k, 0)
        st["_mon"] = self.mon_queries
        return st

    @staticmethod
    def db_delta(a, b):
        d = {k: b[k] - a[k] for k in DB_VARS if k in a and k in b}
        # our own SHOW STATUS queries between the two readings (the one
        # that took reading a is counted in b's Questions)
        d["Questions"] -= b["_mon"] - a["_mon"]
        return d

    def set_limits(self, on):
        """BENCH_LIMITS: new-api's rate options and bltcy_limits rows on the
        bench token and its user (on), or none of them (off)."""
        if on:
            for k, v in RATE_OPTIONS:
                self.mq("INSERT INTO bltcy.options (`key`, value) VALUES (%s, %s)"
                        " ON DUPLICATE KEY UPDATE value = VALUES(value)", (k, v))
            self.ctl("limit", "set", "--token", self.token, *LIMIT_ARGS)
            self.ctl("limit", "set", "--user", "bench", *LIMIT_ARGS)
        else:
            self.mq("DELETE FROM bltcy.options WHERE `key` LIKE 'ModelRequestRateLimit%%'")
            self.mq("DELETE FROM bltcy.bltcy_limits")

    def token_used(self):
        rows = self.mq("SELECT used_quota FROM bltcy.tokens WHERE id = %s", (self.token_id,))
        return int(rows[0][0])

    # -- nginx upstream stand-in and baseline -----------------------------
    def nginx(self, name, template, **kw):
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, name.split("-")[0] + "-tmp", sub), exist_ok=True)
        kw.setdefault("NAME", name)
        conf = self.render(template, name + ".conf", DIR=self.dir,
                           NGINX_WORKERS=NGINX_WORKERS, NOFILE=NOFILE, **kw)
        self.spawn(name, ["nginx", "-p", self.dir, "-e", os.path.join(self.dir, name + "-boot.log"),
                          "-c", conf, "-g", "daemon off;"])

    def wait_port(self, name, port):
        def ready():
            if self.procs[name].poll() is not None:
                raise BenchError("%s exited: %s" % (name, self.tail(name + ".out")))
            return port_open(port)
        wait_for(ready, 30, "%s on port %d" % (name, port))

    def start_upstream(self):
        self.up_port = free_port()
        self.status_port = free_port()
        os.makedirs(os.path.join(self.dir, "www"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "www-empty"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        self.nginx("upstream", "upstream.nginx.conf.in", PORT=self.up_port,
                   STATUS_PORT=self.status_port)
        self.wait_port("upstream", self.up_port)
        self.wait_port("upstream", self.status_port)

    def upstream_accepts(self):
        """stub_status 'accepts', minus the connection this reading opens."""
        st, body = http(self.status_port, "/")
        m = re.search(rb"server accepts handled requests\s+(\d+)", body)
        if st != 200 or not m:
            raise BenchError("stub_status: %d %r" % (st, body[:200]))
        return int(m.group(1))

    def start_upstream_delay(self):
        """The stand-in of the in-flight scenario (upstream-delay.nginx.conf.in)."""
        if not os.path.exists(ECHO_MODULE):
            raise BenchError("%s is missing (apt-get install libnginx-mod-http-echo)" %
                             ECHO_MODULE)
        self.dl_port = free_port()
        self.dl_status_port = free_port()
        self.dl_reads = 0
        self.nginx("upstream-delay", "upstream-delay.nginx.conf.in", PORT=self.dl_port,
                   STATUS_PORT=self.dl_status_port, ECHO_MODULE=ECHO_MODULE)
        self.wait_port("upstream-delay", self.dl_port)
        self.wait_port("upstream-delay", self.dl_status_port)
        st, body = http(self.dl_port, PATH + "?delay=0", "POST",
                        {"Content-Type": "application/json"}, b"{}")
        if st != 200 or b"task_id" not in body:
            raise BenchError("the delaying stand-in answered %d %r" % (st, body[:200]))

    def delay_status(self):
        """(accepts, requests being answered less this reading) of the
        delaying stand-in; every reading is one connection of its own."""
        self.dl_reads += 1
        st, body = http(self.dl_status_port, "/")
        m = re.search(rb"server accepts handled requests\s+(\d+)", body)
        w = re.search(rb"Writing: (\d+)", body)
        if st != 200 or not m or not w:
            raise BenchError("stub_status: %d %r" % (st, body[:200]))
        return int(m.group(1)), int(w.group(1)) - 1

    def start_baseline_delay(self):
        """proxy_pass to the delaying stand-in, with an idle pool as large
        as the clients: the best an HTTP proxy does with its connections."""
        if not hasattr(self, "dbase_port"):
            self.dbase_port = free_port()
        self.nginx("baseline-delay", "baseline.nginx.conf.in", PORT=self.dbase_port,
                   UPSTREAM_PORT=self.dl_port, KEEPALIVE=max(CLIENTS),
                   WORKER_CONNECTIONS=16384)
        self.wait_port("baseline-delay", self.dbase_port)

    def start_baseline(self):
        self.base_port = free_port()
        self.nginx("baseline", "baseline.nginx.conf.in", PORT=self.base_port,
                   UPSTREAM_PORT=self.up_port, KEEPALIVE=64, WORKER_CONNECTIONS=4096)
        self.wait_port("baseline", self.base_port)
        st, body = http(self.base_port, PATH, "POST", {"Content-Type": "application/json"}, b"{}")
        if st != 200 or b"task_id" not in body:
            raise BenchError("baseline answered %d %r" % (st, body[:200]))

    # -- relay ------------------------------------------------------------
    def relay_env(self):
        e = dict(os.environ)
        e["BLTCY_CONFIG"] = self.config_path
        for k in list(e):
            if k in ("METERING", "RELAY_WORKERS", "SQL_DSN", "LOG_FILE", "LOG_LEVEL"):
                del e[k]
        return e

    def write_config(self, mode):
        self.config_path = os.path.join(self.dir, "bltcy.env")
        cfg = {
            "SQL_DSN": "root:@unix(%s)/bltcy" % self.db_sock,
            "SESSION_SECRET": "bench-session-secret-0123456789abcdefghij",
            "RELAY_WORKERS": str(WORKERS),
            "METERING": mode,
            "LOG_FILE": os.path.join(self.dir, "relay.log"),
            "LOG_LEVEL": "info",
        }
        # BENCH_RELAY_ENV last: a later line of the same key wins
        extra = [kv.split("=", 1) for kv in RELAY_ENV]
        with open(self.config_path, "w") as f:
            for k, v in list(cfg.items()) + extra:
                f.write("%s=%s\n" % (k, v))

    def ctl(self, *args):
        p = subprocess.run([os.path.join(BUILD, "bltcy-ctl"), *args], env=self.relay_env(),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        if p.returncode != 0:
            raise BenchError("bltcy-ctl %s: exit %d: %s" % (args[0], p.returncode,
                                                           (p.stdout + p.stderr).decode()))
        return p.stdout.decode()

    def setup_data(self):
        self.write_config("strict")
        self.ctl("migrate")
        self.ctl("add-user", "bench", "--quota", str(10 ** 15))
        self.ctl("add-channel", "--name", "bench-upstream", "--base-url",
                 "http://127.0.0.1:%d" % self.up_port, "--key", "sk-upstream-bench-key",
                 "--models", "kling", "--setting", '{"passthrough_quota":1}')
        if PRICES:
            # rules on the fields the benchmark's body has: each request
            # reads them and one of them applies
            self.ctl("price", "add", "--service", "kling", "--field", "duration", "--value", "10",
                     "--multiplier", "2")
            self.ctl("price", "add", "--service", "kling", "--field", "mode", "--value", "std",
                     "--surcharge", "1")
            self.ctl("price", "add", "--service", "kling", "--model", "kling-v1", "--field",
                     "cfg_scale", "--value", "0.9", "--multiplier", "1.5")
        out = self.ctl("add-token", "--user", "bench", "--name", "bench", "--quota", str(10 ** 15))
        m = re.search(r"sk-[0-9A-Za-z]{48}", out)
        if not m:
            raise BenchError("add-token printed %r" % out)
        self.token = m.group(0)
        rows = self.mq("SELECT id FROM bltcy.tokens WHERE `key` = %s", (self.token[3:],))
        self.token_id = rows[0][0]

    def spawn_pool(self, argv, env, children_needed, what, backlog=None):
        """argv under spawn-fcgi on the relay socket, ready once it listens
        with children_needed children. Returns the process, or why it did not start."""
        self.relay_sock = os.path.join(self.dir, "relay.sock")
        if os.path.exists(self.relay_sock):
            os.unlink(self.relay_sock)
        p = self.spawn("relay", ["spawn-fcgi", "-n", "-s", self.relay_sock, "-M", "0660"] +
                       (["-b", str(backlog)] if backlog else []) + ["--"] + argv, env=env)

        def ready():
            if p.poll() is not None:
                return "exited"
            return os.path.exists(self.relay_sock) and len(children(p.pid)) >= children_needed
        try:
            r = wait_for(ready, 30, what)
        except BenchError as e:
            return str(e)
        if r == "exited":
            why = self.tail("relay.out", 5).strip() or "exit %s" % p.returncode
            self.kill("relay")
            return why
        return p

    def start_relay(self, mode, backlog=None):
        """Start the pool with METERING=mode. Returns None, or why it did not start."""
        self.write_config(mode)
        p = self.spawn_pool([os.path.join(BUILD, "bltcy-relay")], self.relay_env(), WORKERS,
                            "the relay pool", backlog)
        if isinstance(p, str):
            return p
        self.master = p.pid
        return None

    def stop_relay(self):
        self.kill("relay", wait=20)

    def start_floor(self, forward):
        """The floor program in the relay's place (tests/bench/floor.c)."""
        argv = [os.path.join(BUILD, "bench-floor"), str(WORKERS)]
        if forward:
            argv.append("http://127.0.0.1:%d" % self.up_port)
        p = self.spawn_pool(argv, None, WORKERS - 1, "the floor pool")
        if isinstance(p, str):
            raise BenchError("the floor did not start: %s" % p)

    def workers(self):
        return children(self.master)

    def worker_mem(self):
        """{pid: (VmRSS KiB, RssAnon KiB)} of the current workers."""
        out = {}
        for pid in self.workers():
            m = proc_mem(pid)
            if m:
                out[pid] = m
        return out

    # -- fronts -----------------------------------------------------------
    def start_fronts(self):
        self.fronts = {}
        if "lighttpd" in FRONTS:
            port = free_port()
            conf = self.render("front.lighttpd.conf.in", "front-lighttpd.conf", PORT=port,
                               DIR=self.dir, SOCK=self.relay_sock, NOFILE=NOFILE,
                               MAX_CONNECTIONS=INSTALL["lighttpd_conns"],
                               LISTEN_BACKLOG=INSTALL["lighttpd_backlog"])
            self.spawn("lighttpd", ["lighttpd", "-D", "-f", conf])
            self.wait_port("lighttpd", port)
            self.fronts["lighttpd"] = port
        if "nginx" in FRONTS:
            port = free_port()
            self.nginx("front-nginx", "front.nginx.conf.in", PORT=port, SOCK=self.relay_sock,
                       FASTCGI_PARAMS="/etc/nginx/fastcgi_params",
                       WORKER_CONNECTIONS=INSTALL["nginx_conns"],
                       LISTEN_BACKLOG=INSTALL["nginx_backlog"])
            self.wait_port("front-nginx", port)
            self.fronts["nginx"] = port

    def wait_health(self):
        for name, port in self.fronts.items():
            def ok(port=port):
                st, _ = http(port, "/bltcy/health")
                return st == 200
            wait_for(ok, 30, "%s -> relay health" % name, interval=0.1)

    def smoke(self):
        """One charged request through every front; fails loudly if it is not a 200."""
        for name, port in self.fronts.items():
            before = self.token_used()
            st, body = http(port, PATH, "POST", {"Content-Type": "application/json",
                                                 "Authorization": "Bearer " + self.token}, b"{}")
            if st != 200 or b"task_id" not in body:
                raise BenchError("gateway via %s answered %d %r\nrelay log:\n%s" %
                                 (name, st, body[:300], self.tail("relay.log")))
            used = wait_for(lambda: self.token_used() > before or None, 15,
                            "the smoke request's charge", interval=0.1)
            if not used:
                raise BenchError("no charge seen")

    def relayed_ok(self, port):
        """The relay's own count of 2xx answers for the bench's service
        (bltcy_requests_total), or None if /bltcy/metrics does not say."""
        st, body = http(port, "/bltcy/metrics")
        m = re.search(rb'^bltcy_requests_total\{service="kling",class="2xx"\} (\d+)',
                      body, re.M)
        return int(m.group(1)) if st == 200 and m else None

    def quiesce(self, port, timeout=10):
        """After a wrk run: wait until the relay has finished what the front
        server still had queued (its 2xx count stops moving), so requests
        and database counters are read at the same point. Returns the count."""
        last = self.relayed_ok(port)
        deadline = time.time() + timeout
        while time.time() < deadline:
            time.sleep(0.2)
            cur = self.relayed_ok(port)
            if cur == last:
                return cur
            last = cur
        return last

    # -- wrk --------------------------------------------------------------
    def wrk(self, port, conns, seconds, threads=None, gateway=True):
        threads = min(threads or THREADS, conns)
        env = dict(os.environ)
        env["BENCH_TOKEN"] = self.token or ""
        argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency",
                "--timeout", "10s", "-s", os.path.join(HERE, "post.lua"),
                "http://127.0.0.1:%d%s" % (port, PATH)]
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=seconds + 60)
        out = p.stdout.decode("utf-8", "replace")
        m = re.search(r"^BENCHJSON (\{.*\})$", out, re.M)
        if p.returncode != 0 or not m:
            raise BenchError("wrk failed (exit %d): %s %s" % (p.returncode, out[-1500:],
                                                              p.stderr.decode()[-500:]))
        r = json.loads(m.group(1))
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        r["errors"] = r["non2xx"] + r["err_connect"] + r["err_read"] + r["err_write"] + \
            r["err_timeout"]
        return r


# ---------------------------------------------------------------------------
# One metering mode


def fmt_ms(us):
    return "-" if us is None else "%.2f" % (us / 1000.0)


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


def run_mode(b, mode):
    # BENCH_LIMITS: each front measured again with limits set, as if it
    # were one more front ("lighttpd+limits")
    variants = [(f, p, lim) for f, p in b.fronts.items()
                for lim in ((False, True) if LIMITS else (False,))]
    res = {"mode": mode, "rounds": [], "fronts": [f + ("+limits" if lim else "") for f, _, lim in variants]}
    log("mode %s: starting the relay pool (%d workers)" % (mode, WORKERS))
    why = b.start_relay(mode)
    if why:
        log("mode %s: the relay did not start, skipped: %s" % (mode, why))
        res["skipped"] = why
        return res
    try:
        b.wait_health()
        # every upstream connection of this pool counts, the smoke test's too
        acc0 = b.upstream_accepts()
        b.smoke()
        gw_accepts = b.upstream_accepts() - acc0 - 1
    except BenchError as e:
        b.stop_relay()
        log("mode %s: the gateway does not work, skipped: %s" % (mode, e))
        res["skipped"] = str(e)
        return res
    gw_total = len(b.fronts)  # smoke requests
    pids0 = sorted(b.workers())

    # Warm-up to 10k gateway requests: caches, connections, allocator.
    log("mode %s: warm-up to 10k gateway requests" % mode)
    deadline = time.time() + 90
    warm = 0
    while warm < 10000 and time.time() < deadline:
        for port in b.fronts.values():
            a = b.upstream_accepts()
            r = b.wrk(port, CONNS, 2)
            gw_accepts += b.upstream_accepts() - a - 1
            warm += r["requests"]
    # Then every request thread at least once: as many clients as the pool
    # holds. A thread's first request touches its stack and takes a curl
    # handle with its own upstream connection, so the readings below are
    # of a pool whose threads have all served, not of how many threads the
    # 32 connections happened to reach; the connections these open are
    # not counted against the upstream-connection target.
    wide = min(WORKERS * INSTALL["threads"], max(CONNS, (NOFILE - 1024) // 4))
    log("mode %s: every request thread: %d connections for 3 s" % (mode, wide))
    for port in b.fronts.values():
        warm += b.wrk(port, wide, 3)["requests"]
        # what the front still queued is served before anything is timed
        b.quiesce(port, timeout=120)
    b.wrk(b.base_port, CONNS, 2, gateway=False)
    gw_total += warm
    mem_10k = b.worker_mem()
    res["warmup_requests"] = warm

    for rnd in range(1, ROUNDS + 1):
        row = {"round": rnd, "mem_before": b.worker_mem()}
        # baseline first, then each front, alternately
        row["base"] = b.wrk(b.base_port, CONNS, SECONDS, gateway=False)
        row["base1"] = b.wrk(b.base_port, 1, LAT_SECONDS, threads=1, gateway=False)
        # with limits second in odd rounds, first in even ones: neither
        # always runs on a machine the other has just warmed
        for front, port, lim in (variants if rnd % 2 or not LIMITS else
                                 [(f, p, not l) for f, p, l in variants]):
            name = front + ("+limits" if lim else "")
            if LIMITS:
                # set or cleared, then 1 s of load: what the edit makes the
                # workers re-read is not in the figures
                b.set_limits(lim)
                b.wrk(port, CONNS, 1)
            a = b.upstream_accepts()
            s0, m0 = b.db_status(), b.relayed_ok(port)
            g = b.wrk(port, CONNS, SECONDS)
            m1 = b.quiesce(port)
            s1 = b.db_status()
            g1 = b.wrk(port, 1, LAT_SECONDS, threads=1)
            m2 = b.quiesce(port)
            s2 = b.db_status()
            gw_accepts += b.upstream_accepts() - a - 1
            for x, sa, sb, ma, mb in ((g, s0, s1, m0, m1), (g1, s1, s2, m1, m2)):
                x["db"] = Bench.db_delta(sa, sb)
                # charged requests: the relay's count of relayed 2xx POSTs
                # (wrk does not count those in flight when it stops)
                x["charged"] = mb - ma if ma is not None and mb is not None else x["requests"]
                x["rt_per_req"] = x["db"]["Questions"] / x["charged"] if x["charged"] else None
            g["ratio"] = g["rps"] / row["base"]["rps"] if row["base"]["rps"] else None
            row[name] = g
            row[name + "1"] = g1
            gw_total += g["requests"] + g1["requests"]
        if LIMITS:
            b.set_limits(False)
        row["mem_after"] = b.worker_mem()
        res["rounds"].append(row)
        print_round(mode, row, res["fronts"])

    # Top up to BENCH_SOAK gateway requests for the memory-growth reading.
    deadline = time.time() + 300
    front_ports = list(b.fronts.values())
    i = 0
    if gw_total < SOAK:
        log("mode %s: %d gateway requests so far, topping up to %d" % (mode, gw_total, SOAK))
    while gw_total < SOAK and time.time() < deadline:
        a = b.upstream_accepts()
        r = b.wrk(front_ports[i % len(front_ports)], CONNS, 5)
        gw_accepts += b.upstream_accepts() - a - 1
        gw_total += r["requests"]
        i += 1
    mem_end = b.worker_mem()
    res["gw_requests_total"] = gw_total
    res["mem_10k"] = mem_10k
    res["mem_end"] = mem_end
    res["upstream_conns"] = gw_accepts
    res["worker_pids_start"] = pids0
    res["worker_pids_end"] = sorted(b.workers())
    res["worker_restarts"] = len(set(pids0) - set(res["worker_pids_end"]))

    res["relay_errors"] = relay_log_errors(b)
    if MEM_CHECK:
        res["memcheck"] = mem_check(b)
    if PROFILE:
        res["profile"] = profile(b, mode)
    b.stop_relay()
    return res


def mem_check(b):
    """RSS of the workers around a MEM_MIB upload and download through each front."""
    path = os.path.join(b.dir, "www", "blob.bin")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            chunk = os.urandom(MIB)
            for _ in range(MEM_MIB):
                f.write(chunk)
    before = b.worker_mem()
    transfers = []
    for name, port in b.fronts.items():
        t0 = time.time()
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
                            "-H", "Authorization: Bearer " + b.token,
                            "-H", "Content-Type: application/octet-stream",
                            "--data-binary", "@" + path, "--max-time", "120",
                            "http://127.0.0.1:%d/kling/v1/upload" % port],
                           capture_output=True, timeout=150)
        up = p.stdout.decode().split()
        t1 = time.time()
        p2 = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                             "-H", "Authorization: Bearer " + b.token, "--max-time", "120",
                             "http://127.0.0.1:%d/kling/bench-download/blob.bin" % port],
                            capture_output=True, timeout=150)
        down = p2.stdout.decode().split()
        t2 = time.time()
        transfers.append({"front": name,
                          "upload": {"status": up[0] if up else "?",
                                     "bytes": int(float(up[1])) if len(up) > 1 else 0,
                                     "seconds": t1 - t0},
                          "download": {"status": down[0] if down else "?",
                                       "bytes": int(float(down[1])) if len(down) > 1 else 0,
                                       "seconds": t2 - t1}})
    after = b.worker_mem()
    growth = {pid: (after[pid][0] - before[pid][0]) for pid in after if pid in before}
    ok = all(t["upload"]["status"] == "200" and t["download"]["status"] == "200" and
             t["download"]["bytes"] == MEM_MIB * MIB for t in transfers)
    return {"before": before, "after": after, "growth_kib": growth, "transfers": transfers,
            "ok": ok}


# ---------------------------------------------------------------------------
# Profile

CATS = [
    ("libfcgi", "FastCGI (libfcgi)"),
    ("libcurl", "libcurl"),
    ("libnghttp2", "libcurl"),
    ("libssl", "libcurl"),
    ("libmariadb", "MariaDB Connector/C"),
    ("libjson-c", "json-c"),
    ("bltcy-relay", "our code"),
]


def classify(frames):
    """frames: list of (sym, dso), leaf first. The first frame in a library
    we call (or in our binary) names the category; libc and the kernel are
    charged to whoever called them."""
    for sym, dso in frames:
        base = os.path.basename(dso)
        for key, cat in CATS:
            if key in base:
                return cat
    return "libc/kernel only (unattributed)"


def parse_perf_script(text):
    samples = []
    cur = None
    for line in text.splitlines():
        if not line.strip():
            if cur is not None:
                samples.append(cur)
                cur = None
            continue
        if not line.startswith((" ", "\t")):
            if cur is not None:
                samples.append(cur)
            cur = {"head": line, "frames": []}
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
        if m and cur is not None:
            cur["frames"].append((m.group(1), m.group(2)))
    if cur is not None:
        samples.append(cur)
    return samples


def profile(b, mode):
    """perf under gateway load (the nginx front if present): CPU by process
    system-wide, then the workers' own CPU by library with DWARF call chains."""
    out = {}
    port = b.fronts.get("nginx") or next(iter(b.fronts.values()))
    if shutil.which("perf") is None:
        log("profile: perf is not installed (apt-get install linux-perf)")
        return {"error": "perf not installed"}
    secs = PROFILE_SECONDS

    def under_load(argv):
        env = dict(os.environ)
        env["BENCH_TOKEN"] = b.token
        w = subprocess.Popen(["wrk", "-t%d" % THREADS, "-c%d" % CONNS, "-d%ds" % (secs + 3),
                              "-s", os.path.join(HERE, "post.lua"),
                              "http://127.0.0.1:%d%s" % (port, PATH)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            time.sleep(1)  # let wrk connect before sampling starts
            p = subprocess.run(argv, capture_output=True, timeout=secs + 60)
        finally:
            try:
                w.wait(secs + 30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait()
        return p

    # 1. CPU share by process, whole machine.
    sysdata = os.path.join(b.dir, "perf-sys-%s.data" % mode)
    p = under_load(["perf", "record", "-a", "-e", "cpu-clock", "-F", "999", "-o", sysdata,
                    "--", "sleep", str(secs)])
    if p.returncode != 0:
        return {"error": "perf record -a: " + p.stderr.decode()[-500:]}
    rep = subprocess.run(["perf", "report", "-i", sysdata, "--stdio", "-q", "--sort", "pid",
                          "--percent-limit", "0.5"], capture_output=True, timeout=300)
    roles = process_roles(b)
    by_role = {}
    for line in rep.stdout.decode("utf-8", "replace").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\d+):(\S+)", line)
        if m:
            pct, pid, comm = float(m.group(1)), int(m.group(2)), m.group(3)
            role = roles.get(pid, "idle" if pid == 0 else "other (%s)" % comm)
            by_role[role] = by_role.get(role, 0.0) + pct
    out["system_by_process"] = by_role
    for key, comm in (("mariadbd_top", "mariadbd"), ("worker_flat_top", "bltcy-relay")):
        rep = subprocess.run(["perf", "report", "-i", sysdata, "--stdio", "-q", "--comms", comm, "--percentage", "relative",
                              "--sort", "dso,sym", "--percent-limit", "1"],
                             capture_output=True, timeout=300)
        top = []
        for line in rep.stdout.decode("utf-8", "replace").splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*\S)", line)
            if m:
                top.append((float(m.group(1)), m.group(3).strip(), m.group(2)))
        out[key] = top[:15]

    # 2. The workers' own CPU, by library, from call chains.
    wdata = os.path.join(b.dir, "perf-workers-%s.data" % mode)
    pids = ",".join(str(x) for x in b.workers())
    p = under_load(["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph",
                    "dwarf,16384", "-p", pids, "-o", wdata, "--", "sleep", str(secs)])
    if p.returncode != 0:
        out["error"] = "perf record -p: " + p.stderr.decode()[-500:]
        return out
    sc = subprocess.run(["perf", "script", "-i", wdata, "--no-inline", "-F", "comm,tid,ip,sym,dso"],
                        capture_output=True, timeout=600)
    samples = parse_perf_script(sc.stdout.decode("utf-8", "replace"))
    n = len(samples) or 1
    cats, kernel, leaf_syms, our_syms, leaf_dso = {}, 0, {}, {}, {}
    for s in samples:
        fr = s["frames"]
        if not fr:
            continue
        c = classify(fr)
        cats[c] = cats.get(c, 0) + 1
        if "kernel" in fr[0][1]:
            kernel += 1
        user = [f for f in fr if "kernel" not in f[1]]
        leaf = user[0] if user else fr[0]
        d = os.path.basename(leaf[1])
        leaf_dso[d] = leaf_dso.get(d, 0) + 1
        key = "%s (%s)" % (re.sub(r"\+0x[0-9a-f]+$", "", leaf[0]), d)
        leaf_syms[key] = leaf_syms.get(key, 0) + 1
        for sym, dso in fr:
            if "bltcy-relay" in dso:
                k = re.sub(r"\+0x[0-9a-f]+$", "", sym)
                our_syms[k] = our_syms.get(k, 0) + 1
                break

    def pct(d):
        return {k: 100.0 * v / n for k, v in sorted(d.items(), key=lambda kv: -kv[1])}
    out["worker_samples"] = len(samples)
    out["worker_by_category"] = pct(cats)
    out["worker_kernel_pct"] = 100.0 * kernel / n
    out["worker_user_leaf_dso"] = dict(list(pct(leaf_dso).items())[:10])
    out["worker_top_leaf"] = dict(list(pct(leaf_syms).items())[:15])
    out["worker_our_frames"] = dict(list(pct(our_syms).items())[:12])
    out["wall"] = relay_log_split(b)
    return out


def process_roles(b):
    roles = {}

    def tree(pid, role):
        roles[pid] = role
        for c in children(pid):
            tree(c, role)
    names = {"upstream": "upstream stand-in (nginx)", "baseline": "baseline nginx (idle)",
             "front-nginx": "front nginx", "lighttpd": "front lighttpd",
             "mariadbd": "mariadbd", "relay": "relay workers"}
    for k, v in names.items():
        if k in b.procs:
            tree(b.procs[k].pid, v)
    # threads of mariadbd are listed by tid in perf
    try:
        for t in os.listdir("/proc/%d/task" % b.procs["mariadbd"].pid):
            roles[int(t)] = "mariadbd"
    except (OSError, KeyError):
        pass
    return roles


def relay_log_errors(b):
    """Non-200 answers and ERR lines in the relay log: {status: count}, examples."""
    counts, examples = {}, []
    try:
        with open(os.path.join(b.dir, "relay.log"), "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").rstrip()
                m = re.search(r" status=(\d+) ", line)
                bad = (m and m.group(1) != "200") or " ERR" in line
                if bad and "/bltcy/" not in line:
                    key = m.group(1) if m else "ERR"
                    counts[key] = counts.get(key, 0) + 1
                    if len(examples) < 3:
                        examples.append(line[:300])
    except OSError:
        pass
    return {"counts": counts, "examples": examples}


def relay_log_split(b, last=20000):
    """Mean total and upstream time per request from the relay's log lines
    (ms resolution: means over many lines only)."""
    try:
        with open(os.path.join(b.dir, "relay.log"), "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4 * MIB))
            lines = f.read().decode("utf-8", "replace").splitlines()[-last:]
    except OSError:
        return None
    ups, tot = [], []
    for line in lines:
        m = re.search(r"status=200 upstream_ms=(\d+) .* ms=(\d+)", line)
        if m:
            ups.append(int(m.group(1)))
            tot.append(int(m.group(2)))
    if not tot:
        return None
    return {"lines": len(tot), "mean_ms": statistics.mean(tot),
            "mean_upstream_ms": statistics.mean(ups)}


# ---------------------------------------------------------------------------
# In-flight scenario: a stand-in that answers late, thousands of clients


def raise_nofile():
    """Room for thousands of connections in the fronts, the stand-in and
    the clients, which inherit this limit; root may raise the hard one."""
    inf = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == inf or soft >= NOFILE:
        return NOFILE if soft == inf else soft
    up = (NOFILE, hard if hard == inf else max(hard, NOFILE))
    # without the right to raise the hard limit, as far as it goes
    within = (NOFILE if hard == inf else min(NOFILE, hard), hard)
    for lim in (up, within):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_sysctl(name):
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "?"


def tree_pids(pid):
    out = [pid]
    for c in children(pid):
        out.extend(tree_pids(c))
    return out


def tree_rss(pid):
    """VmRSS of pid and all its descendants, KiB."""
    total = 0
    for p in tree_pids(pid):
        m = proc_mem(p)
        if m:
            total += m[0]
    return total


def if_timeout(delay):
    return IF_TIMEOUT or max(5.0, 2 * delay + 2)


def fmt_lat(us, to_us, f="%.1f", added_to=None):
    """Milliseconds; a latency at the timeout is a lower bound (">")."""
    if us is None:
        return "-"
    if added_to is not None and added_to >= to_us:
        return ">" + f % (us / 1000.0)
    if added_to is None and us >= to_us:
        return ">" + f % (us / 1000.0)
    return f % (us / 1000.0)


class Sampler(threading.Thread):
    """Every 0.2 s during a run: RSS of a process tree, requests in flight
    at the stand-in, and (for the relay) MariaDB's Threads_connected."""

    def __init__(self, b, pid, db):
        super().__init__(daemon=True)
        self.b, self.pid, self.db = b, pid, db
        self.halt = threading.Event()
        self.rss = self.inflight = self.threads = 0
        self.samples = 0
        self.error = None

    def run(self):
        while True:
            try:
                self.rss = max(self.rss, tree_rss(self.pid))
                self.inflight = max(self.inflight, self.b.delay_status()[1])
                if self.db is not None:
                    with self.db.cursor() as c:
                        c.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
                        self.threads = max(self.threads, int(c.fetchone()[1]))
                self.samples += 1
            except Exception as e:  # noqa: BLE001
                self.error = str(e)
            if self.halt.wait(0.2):
                return


def disk_probe(where, seconds):
    """Latency of synchronous 4 KiB writes in directory where, as InnoDB
    makes them to its redo log (O_DIRECT, then durable), for seconds."""
    import mmap
    path = os.path.join(where, "bench-disk-probe")
    buf = mmap.mmap(-1, 4096)   # page-aligned, as O_DIRECT wants
    buf.write(b"x" * 4096)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT | os.O_DSYNC, 0o600)
    lat = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            os.pwrite(fd, buf, (len(lat) % 256) * 4096)
            lat.append((time.monotonic() - t) * 1000.0)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return {"writes": len(lat), "p50_ms": lat[len(lat) // 2],
            "p999_ms": lat[min(len(lat) - 1, len(lat) * 999 // 1000)], "max_ms": lat[-1],
            "over_50ms": sum(1 for x in lat if x > 50)}


def if_ramp(delay):
    return IF_RAMP if IF_RAMP is not None else delay


def if_warmup(delay):
    return IF_WARMUP if IF_WARMUP is not None else if_ramp(delay) + max(2.0, delay)


def drive(b, port, delay, clients, token, seconds=None, timeout=None, warmup=0.0,
          ramp=0.0):
    """Run THREADS client processes sharing the clients; the merged result."""
    n = min(THREADS, clients)
    to = timeout or if_timeout(delay)
    seconds = seconds or IF_SECONDS
    names = []
    for i in range(n):
        name = "client%d" % i
        try:
            os.unlink(os.path.join(b.dir, name + ".out"))
        except OSError:
            pass
        argv = [sys.executable, os.path.join(HERE, "inflight_client.py"), "--port", str(port),
                "--path", "%s?delay=%g" % (PATH, delay),
                "--conns", str(clients // n + (1 if i < clients % n else 0)),
                "--seconds", str(seconds), "--timeout", str(to), "--warmup", str(warmup),
                "--ramp", str(ramp)]
        if token:
            argv += ["--token", token]
        b.spawn(name, argv)
        names.append(name)
    outs = []
    deadline = time.time() + warmup + seconds + to + 60
    for name in names:
        p = b.procs[name]
        try:
            p.wait(max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        rc = p.poll()
        b.kill(name)
        text = b.tail(name + ".out", 1)
        try:
            outs.append(json.loads(text))
        except ValueError:
            raise BenchError("in-flight client %s (exit %s): %s" %
                             (name, rc, b.tail(name + ".out", 10)[-1500:]))
    lat = sorted(x for o in outs for x in o["lat_us"])
    first = sorted(x for o in outs for x in o["first_us"])
    good = len(lat)
    timeouts = sum(o["timeouts"] for o in outs)
    t0 = min(o["t0"] for o in outs)
    t_last = max(o["t_last_good"] for o in outs)
    # Answers still in flight when sending stops are waited for, so the
    # rate is over the time until the last good answer (a whole number of
    # delays for proxy_pass), at least `seconds`: a fixed window would
    # cut a 3 s delay's answers in half, and the wait for the requests
    # that only time out would count against a slow gateway twice.
    elapsed = max(float(seconds), t_last - t0)
    to_us = int(to * 1e6)

    def pc(q):
        # Timed-out requests count as slower than every answer, so a slow
        # gateway's percentile is "more than the timeout" (to_us) rather
        # than that of the few lucky answers. Other errors are left out.
        n = good + timeouts
        if n == 0:
            return None
        k = max(0, min(n - 1, -(-q * n // 100) - 1))
        return lat[k] if k < good else to_us
    status, sock = {}, {}
    for o in outs:
        for k, v in o["status"].items():
            status[k] = status.get(k, 0) + v
        for k, v in o["sock"].items():
            sock[k] = sock.get(k, 0) + v
    return {"good": good, "elapsed": elapsed, "rps": good / elapsed,
            "p50_us": pc(50), "p99_us": pc(99), "max_good_us": lat[-1] if lat else None,
            "warmup": warmup, "first_wave": len(first),
            "first_p99_us": first[max(0, -(-99 * len(first) // 100) - 1)] if first else None,
            "non2xx": sum(status.values()), "status": status, "timeouts": timeouts,
            "sock_errors": sum(sock.values()), "sock": sock, "timeout_us": to_us}


def inflight_run(b, target, delay, clients, mode):
    """One cell for one target: proxy_pass, or the relay through a front.
    Both start afresh: the relay's pool (nothing left queued from the run
    before, no upstream connection kept) and the proxy_pass nginx (no
    idle upstream connection kept from the run before)."""
    r = {"target": target, "delay": delay, "clients": clients}
    reads0 = b.dl_reads
    acc0 = b.delay_status()[0]
    if target == "proxy_pass":
        b.kill("baseline-delay")
        b.start_baseline_delay()
        pid, db, port, token = b.procs["baseline-delay"].pid, None, b.dbase_port, ""
    else:
        b.stop_relay()
        why = b.start_relay(mode, backlog=BACKLOG)
        if why:
            r["skipped"] = why
            return r
        port, token = b.fronts[target], b.token
        b.wait_health()
        st, body = http(port, "%s?delay=0" % PATH, "POST",
                        {"Content-Type": "application/json",
                         "Authorization": "Bearer " + token}, b"{}")
        if st != 200 or b"task_id" not in body:
            r["skipped"] = "gateway via %s answered %d %r" % (target, st, body[:200])
            return r
        pid, db = b.master, b.sdb
    # Warm-up, so that idle is the pool after every process has answered
    # (libraries paged in, connections open, allocator grown) and the peak
    # over it is what requests in flight cost: 1 s of 4 clients per relay
    # worker with answers at once.
    w = drive(b, port, 0, 4 * WORKERS, token, seconds=1, timeout=10)
    if not w["good"]:
        r["skipped"] = "no good answer in the warm-up: %r" % ({k: w[k] for k in (
            "status", "timeouts", "sock")},)
        return r
    r["rss_idle_kib"] = tree_rss(pid)
    s = Sampler(b, pid, db)
    s.start()
    try:
        r.update(drive(b, port, delay, clients, token, warmup=if_warmup(delay),
                       ramp=if_ramp(delay)))
    finally:
        s.halt.set()
        s.join()
    acc1 = b.delay_status()[0]
    # every stub_status reading is a connection of its own
    r["upstream_conns"] = acc1 - acc0 - (b.dl_reads - reads0 - 1)
    r["rss_peak_kib"] = max(s.rss, r["rss_idle_kib"])
    r["inflight_peak"] = s.inflight
    r["rss_per_inflight_kib"] = ((r["rss_peak_kib"] - r["rss_idle_kib"]) / s.inflight
                                 if s.inflight else None)
    r["db_conns_peak"] = s.threads - b.db_idle_threads if db is not None else None
    r["samples"] = s.samples
    if s.error:
        r["sampler_error"] = s.error
    r["errors"] = r["non2xx"] + r["timeouts"] + r["sock_errors"]
    return r


def print_inflight_run(rnd, r):
    if r.get("skipped"):
        print("round %d [inflight %gs x%d] %-10s not measured: %s" %
              (rnd, r["delay"], r["clients"], r["target"], r["skipped"]), flush=True)
        return
    to = r["timeout_us"]
    print("round %d [inflight %gs x%d] %-10s %.1f good/s (%d in %.1f s) p50 %s p99 %s ms "
          "(first wave of %d: p99 %s ms) | "
          "RSS %.1f -> %.1f MiB, %d in flight | DB conns %s | upstream conns %d | "
          "non-2xx %d %s timeouts %d socket %d %s" %
          (rnd, r["delay"], r["clients"], r["target"], r["rps"], r["good"], r["elapsed"],
           fmt_lat(r["p50_us"], to), fmt_lat(r["p99_us"], to), r["first_wave"],
           fmt_lat(r["first_p99_us"], to), r["rss_idle_kib"] / 1024.0,
           r["rss_peak_kib"] / 1024.0, r["inflight_peak"],
           "-" if r["db_conns_peak"] is None else r["db_conns_peak"], r["upstream_conns"],
           r["non2xx"], json.dumps(r["status"]) if r["status"] else "", r["timeouts"],
           r["sock_errors"], json.dumps(r["sock"]) if r["sock"] else ""), flush=True)


def run_inflight(b):
    """Every delay x client count, proxy_pass then each front, BENCH_ROUNDS
    times. The first of BENCH_MODES is the metering."""
    mode = MODES[0]
    res = {"mode": mode, "targets": ["proxy_pass"] + list(b.fronts), "cells": [],
           "seconds": IF_SECONDS, "rounds": IF_ROUNDS, "backlog": BACKLOG}
    b.start_upstream_delay()
    b.mq("UPDATE bltcy.channels SET base_url = %s WHERE name = 'bench-upstream'",
         ("http://127.0.0.1:%d" % b.dl_port,))
    b.sdb = pymysql.connect(unix_socket=b.db_sock, user="root", password="", autocommit=True)
    try:
        # no pool runs now: what is connected is the bench itself
        with b.sdb.cursor() as c:
            c.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            b.db_idle_threads = int(c.fetchone()[1])
        for delay in DELAYS:
            for clients in CLIENTS:
                cell = {"delay": delay, "clients": clients, "rounds": []}
                log("inflight: %g s delay, %d clients" % (delay, clients))
                for rnd in range(1, IF_ROUNDS + 1):
                    row = {}
                    for target in res["targets"]:
                        row[target] = inflight_run(b, target, delay, clients, mode)
                        print_inflight_run(rnd, row[target])
                    base = row["proxy_pass"]
                    for target in res["targets"][1:]:
                        g = row[target]
                        if g.get("skipped") or base.get("skipped"):
                            continue
                        g["ratio"] = g["rps"] / base["rps"] if base["rps"] else None
                        g["added_p50_us"] = (g["p50_us"] - base["p50_us"]
                                             if g["p50_us"] is not None and
                                             base["p50_us"] is not None else None)
                        g["added_p99_us"] = (g["p99_us"] - base["p99_us"]
                                             if g["p99_us"] is not None and
                                             base["p99_us"] is not None else None)
                    cell["rounds"].append(row)
                b.stop_relay()
                res["cells"].append(cell)
    finally:
        b.stop_relay()
        b.mq("UPDATE bltcy.channels SET base_url = %s WHERE name = 'bench-upstream'",
             ("http://127.0.0.1:%d" % b.up_port,))
        b.sdb.close()
    return res


def summarise_inflight(res):
    """The in-flight table (medians over rounds; errors are totals)."""
    lines = ["in-flight [%s], %d workers, clients started over %s s, %s s of warm-up then "
             "%d s measured per run + the answers still in flight, %d round%s, FastCGI "
             "backlog %d; timeout %s" %
             (res["mode"], WORKERS, "/".join("%g" % if_ramp(d) for d in DELAYS),
              "/".join("%g" % if_warmup(d) for d in DELAYS),
              res["seconds"], res["rounds"],
              "" if res["rounds"] == 1 else "s (medians; errors are totals)", res["backlog"],
              ", ".join("%gs at %gs delay" % (if_timeout(d), d) for d in DELAYS))]
    W = "%-6s %7s %-10s %9s %6s %9s %9s %9s %9s %9s %8s %8s %9s %6s %5s %5s %7s %8s %6s"
    head = W % ("delay", "clients", "target", "good/s", "ratio", "p50 ms", "p99 ms",
                "+p50 ms", "+p99 ms", "1st p99", "RSS idle", "RSS peak", "KiB/in-fl", "in-fl",
                "DB", "up", "non-2xx", "timeouts", "sock")
    lines.append(head)
    lines.append("-" * len(head))

    def med(rows, k):
        return median([r.get(k) for r in rows if not r.get("skipped")])

    def tot(rows, k):
        xs = [r[k] for r in rows if not r.get("skipped")]
        return sum(xs) if xs else None

    def ms(us):
        return None if us is None else us / 1000.0

    for cell in res["cells"]:
        first = True
        for target in res["targets"]:
            rows = [row[target] for row in cell["rounds"]]
            if all(r.get("skipped") for r in rows):
                lines.append("%-6s %7s %-10s not measured: %s" %
                             ("%gs" % cell["delay"] if first else "",
                              cell["clients"] if first else "", target, rows[0]["skipped"]))
                first = False
                continue
            m = {k: med(rows, k) for k in ("rps", "ratio", "p50_us", "p99_us", "added_p50_us",
                                           "added_p99_us", "first_p99_us",
                                           "rss_idle_kib", "rss_peak_kib",
                                           "rss_per_inflight_kib", "inflight_peak",
                                           "db_conns_peak", "upstream_conns")}
            m.update({k: tot(rows, k) for k in ("non2xx", "timeouts", "sock_errors")})
            to = m["timeout_us"] = next(r["timeout_us"] for r in rows if not r.get("skipped"))
            cell.setdefault("medians", {})[target] = m
            lines.append(W % ("%gs" % cell["delay"] if first else "",
                              cell["clients"] if first else "", target,
                              fmt(m["rps"], "%.1f"), fmt(m["ratio"], "%.3f"),
                              fmt_lat(m["p50_us"], to), fmt_lat(m["p99_us"], to),
                              fmt_lat(m["added_p50_us"], to, "%+.1f", m["p50_us"] or 0),
                              fmt_lat(m["added_p99_us"], to, "%+.1f", m["p99_us"] or 0),
                              fmt_lat(m["first_p99_us"], to),
                              fmt(kib_mib(m["rss_idle_kib"]), "%.1f"),
                              fmt(kib_mib(m["rss_peak_kib"]), "%.1f"),
                              fmt(m["rss_per_inflight_kib"], "%.1f"),
                              fmt(m["inflight_peak"], "%d"), fmt(m["db_conns_peak"], "%d"),
                              fmt(m["upstream_conns"], "%d"), fmt(m["non2xx"], "%d"),
                              fmt(m["timeouts"], "%d"), fmt(m["sock_errors"], "%d")))
            first = False
    lines.append("good/s: 2xx answers to the requests sent after the warm-up per second, "
                 "from the end of the warm-up to the last one (at least the seconds of "
                 "sending); ratio: gateway / proxy_pass; p50/p99: of those 2xx answers and "
                 "the timeouts (\">\": at the timeout, so more), +: over "
                 "proxy_pass in the same round; 1st p99: of the first wave, every client's "
                 "first request, to a pool just started; RSS: MiB of the "
                 "relay pool (master + workers) or of the proxy_pass nginx; KiB/in-fl: (peak - "
                 "idle) / in-fl; in-fl: most requests in flight at the stand-in; DB: MariaDB "
                 "connections at the peak (Threads_connected less the bench's own); up: "
                 "upstream TCP connections opened")
    return lines


def inflight_checks(res):
    """The default install against a late upstream: the target cell's
    answers as a share of proxy_pass's, per front."""
    checks = []
    for cell in res["cells"]:
        if cell["delay"] != IF_TARGET_DELAY or cell["clients"] != IF_TARGET_CLIENTS:
            continue
        m = cell.get("medians") or {}
        for t in res["targets"][1:]:
            r = (m.get(t) or {}).get("ratio")
            checks.append(("inflight %gs x%d %s answered / proxy_pass >= %.2f" %
                           (IF_TARGET_DELAY, IF_TARGET_CLIENTS, t, IF_TARGET), r, "%.3f",
                           None if r is None else r >= IF_TARGET))
    return checks


def limits_summary(res):
    """BENCH_LIMITS: each front's ratio to proxy_pass without and with
    limits, every round's and the medians, and the added latency."""
    out = []
    for f in res["fronts"]:
        if f.endswith("+limits") or f + "+limits" not in res["fronts"]:
            continue
        off = [r[f]["ratio"] for r in res["rounds"]]
        on = [r[f + "+limits"]["ratio"] for r in res["rounds"]]
        m0, m1 = res["medians"][f], res["medians"][f + "+limits"]
        out.append("%s without limits %.3f of proxy_pass (rounds %s), with %.3f (rounds %s): "
                   "%+.1f %%; added p50/p99 at 1 conn %+.3f/%+.3f ms without, %+.3f/%+.3f ms "
                   "with; DB round trips/req %.2f without, %.2f with" %
                   (f, m0["ratio"], " ".join("%.3f" % x for x in off), m1["ratio"],
                    " ".join("%.3f" % x for x in on), 100.0 * (m1["ratio"] / m0["ratio"] - 1),
                    m0["d50"], m0["d99"], m1["d50"], m1["d99"], m0["rt"], m1["rt"]))
    return out


def inflight_summary(res):
    out = []
    for cell in res["cells"]:
        m = cell.get("medians") or {}
        base = m.get("proxy_pass")
        if not base:
            continue
        parts = ["proxy_pass %.1f good/s" % base["rps"]]
        for t in res["targets"][1:]:
            g = m.get(t)
            if not g:
                parts.append("%s not measured" % t)
                continue
            to = g["timeout_us"]
            parts.append("%s %.1f good/s = %s of proxy_pass, %s/%s ms p50/p99 (first "
                         "wave p99 %s ms against %s), %s KiB per request in flight, %d errors" %
                         (t, g["rps"], fmt(g["ratio"], "%.3f"),
                          fmt_lat(g["added_p50_us"], to, "%+.1f", g["p50_us"] or 0),
                          fmt_lat(g["added_p99_us"], to, "%+.1f", g["p99_us"] or 0),
                          fmt_lat(g["first_p99_us"], to), fmt_lat(base["first_p99_us"], to),
                          fmt(g["rss_per_inflight_kib"], "%.0f"),
                          g["non2xx"] + g["timeouts"] + g["sock_errors"]))
        out.append("inflight %gs x%d: %s" % (cell["delay"], cell["clients"], "; ".join(parts)))
    return out


# ---------------------------------------------------------------------------
# Output


def run_floor(b):
    """The floor: what the front servers and FastCGI reach with a program
    that only answers, or only forwards with libcurl. Medians of the
    ratios to proxy_pass, per variant and front."""
    res = {}
    for variant in ("answer", "forward"):
        log("floor %s: %d processes" % (variant, WORKERS))
        b.start_floor(variant == "forward")
        try:
            for port in b.fronts.values():
                b.wrk(port, CONNS, 2)
            ratios = {f: [] for f in b.fronts}
            for rnd in range(1, ROUNDS + 1):
                base = b.wrk(b.base_port, CONNS, SECONDS, gateway=False)
                parts = []
                for name, port in b.fronts.items():
                    g = b.wrk(port, CONNS, SECONDS)
                    if g["errors"]:
                        raise BenchError("floor %s via %s: %d errors" %
                                         (variant, name, g["errors"]))
                    ratios[name].append(g["rps"] / base["rps"])
                    parts.append("%s %.0f req/s (%.3f)" % (name, g["rps"], ratios[name][-1]))
                print("round %d [floor %s] baseline %.0f req/s | %s" %
                      (rnd, variant, base["rps"], " | ".join(parts)), flush=True)
            res[variant] = {f: median(v) for f, v in ratios.items()}
        finally:
            b.stop_relay()
    return res


def print_round(mode, row, fronts):
    base, base1 = row["base"], row["base1"]
    parts = ["round %d [%s] baseline %.0f req/s p50 %s p99 %s ms | c1 p50 %s p99 %s" %
             (row["round"], mode, base["rps"], fmt_ms(base["p50_us"]), fmt_ms(base["p99_us"]),
              fmt_ms(base1["p50_us"]), fmt_ms(base1["p99_us"]))]
    for name in fronts:
        g, g1 = row[name], row[name + "1"]
        parts.append("  %-8s %.0f req/s (%.3f) p50 %s p99 %s ms | c1 p50 %s p99 %s | "
                     "DB rt/req %.2f | errors %d+%d" %
                     (name, g["rps"], g["ratio"] or 0, fmt_ms(g["p50_us"]), fmt_ms(g["p99_us"]),
                      fmt_ms(g1["p50_us"]), fmt_ms(g1["p99_us"]), g["rt_per_req"] or 0,
                      g["errors"], g1["errors"]))
    print("\n".join(parts), flush=True)


def kib_mib(k):
    return None if k is None else k / 1024.0


def summarise(b, res):
    """Medians and target checks for one mode; returns (table lines, checks)."""
    mode = res["mode"]
    rounds = res["rounds"]
    fronts = res["fronts"]
    lines, checks = [], []
    W = "%-30s" + " %10s" * ROUNDS + " %10s"
    head = W % tuple(["[%s] %d workers" % (mode, WORKERS)] +
                     ["round %d" % (i + 1) for i in range(ROUNDS)] + ["median"])
    lines.append(head)
    lines.append("-" * len(head))

    def row(label, vals, f="%.0f"):
        lines.append(W % tuple([label] + [fmt(v, f) for v in vals] + [fmt(median(vals), f)]))
        return median(vals)

    def ms(us):
        return None if us is None else us / 1000.0

    base_rps = row("baseline req/s (c%d)" % CONNS, [r["base"]["rps"] for r in rounds])
    med = {}
    for f in fronts:
        med[f] = {}
        med[f]["rps"] = row("%s req/s" % f, [r[f]["rps"] for r in rounds])
        med[f]["ratio"] = row("%s / baseline" % f, [r[f]["ratio"] for r in rounds], "%.3f")
    row("baseline p50 ms (c%d)" % CONNS, [ms(r["base"]["p50_us"]) for r in rounds], "%.2f")
    row("baseline p99 ms (c%d)" % CONNS, [ms(r["base"]["p99_us"]) for r in rounds], "%.2f")
    for f in fronts:
        row("%s p50 ms (c%d)" % (f, CONNS), [ms(r[f]["p50_us"]) for r in rounds], "%.2f")
        row("%s p99 ms (c%d)" % (f, CONNS), [ms(r[f]["p99_us"]) for r in rounds], "%.2f")
    row("baseline p50 ms (c1)", [ms(r["base1"]["p50_us"]) for r in rounds], "%.3f")
    row("baseline p99 ms (c1)", [ms(r["base1"]["p99_us"]) for r in rounds], "%.3f")
    for f in fronts:
        row("%s p50 ms (c1)" % f, [ms(r[f + "1"]["p50_us"]) for r in rounds], "%.3f")
        row("%s p99 ms (c1)" % f, [ms(r[f + "1"]["p99_us"]) for r in rounds], "%.3f")
        med[f]["d50"] = row("%s added p50 ms (c1)" % f,
                            [ms(r[f + "1"]["p50_us"] - r["base1"]["p50_us"]) for r in rounds],
                            "%+.3f")
        med[f]["d99"] = row("%s added p99 ms (c1)" % f,
                            [ms(r[f + "1"]["p99_us"] - r["base1"]["p99_us"]) for r in rounds],
                            "%+.3f")
    for f in fronts:
        med[f]["rt"] = row("%s DB round trips/charged" % f, [r[f]["rt_per_req"] for r in rounds],
                           "%.2f")
        row("%s  stmt_execute/req" % f,
            [r[f]["db"]["Com_stmt_execute"] / r[f]["charged"] for r in rounds], "%.2f")
        row("%s  call_procedure/req" % f,
            [r[f]["db"]["Com_call_procedure"] / r[f]["charged"] for r in rounds], "%.2f")
        row("%s  select/req" % f,
            [r[f]["db"]["Com_select"] / r[f]["charged"] for r in rounds], "%.2f")
        row("%s  InnoDB fsyncs/req" % f,
            [r[f]["db"]["Innodb_data_fsyncs"] / r[f]["charged"] for r in rounds], "%.3f")
        row("%s  row lock waits/req" % f,
            [r[f]["db"]["Innodb_row_lock_waits"] / r[f]["charged"] for r in rounds], "%.3f")
    errors = sum(r[f]["errors"] + r[f + "1"]["errors"] for r in rounds for f in fronts)
    base_errors = sum(r["base"]["errors"] + r["base1"]["errors"] for r in rounds)
    row("worker max RSS MiB before", [kib_mib(max(v[0] for v in r["mem_before"].values()))
                                      for r in rounds], "%.2f")
    row("worker max RSS MiB after", [kib_mib(max(v[0] for v in r["mem_after"].values()))
                                     for r in rounds], "%.2f")
    lines.append("")

    m10, mend = res["mem_10k"], res["mem_end"]
    growth = [mend[p][0] - m10[p][0] for p in mend if p in m10]
    rss_end = max(v[0] for v in mend.values()) if mend else None
    anon_end = max(v[1] for v in mend.values()) if mend else None
    lines.append("worker RSS after ~10k requests: %s KiB; after %d: %s KiB (max RssAnon %s, "
                 "RssFile %s, RssShmem %s KiB)"
                 % (" ".join(str(m10[p][0]) for p in sorted(m10)), res["gw_requests_total"],
                    " ".join(str(mend[p][0]) for p in sorted(mend)), anon_end,
                    max(v[2] for v in mend.values()), max(v[3] for v in mend.values())))
    lines.append("upstream TCP connections opened by the relay over %d requests: %d "
                 "(%d workers); worker restarts: %d" %
                 (res["gw_requests_total"], res["upstream_conns"], WORKERS,
                  res["worker_restarts"]))
    lines.append("errors (non-2xx or socket) gateway: %d, baseline: %d" % (errors, base_errors))
    re_ = res.get("relay_errors") or {}
    if re_.get("counts"):
        lines.append("relay log, answers other than 200 by status: %s" %
                     ", ".join("%s: %d" % kv for kv in sorted(re_["counts"].items())))
        for ex in re_["examples"]:
            lines.append("  e.g. %s" % ex)
    mc = res.get("memcheck")
    if mc:
        g = max(mc["growth_kib"].values()) if mc["growth_kib"] else None
        lines.append("memory check: %d MiB upload + download via %s: %s; worker RSS before %s "
                     "after %s KiB; largest growth %s KiB" %
                     (MEM_MIB, "+".join(fronts), "ok" if mc["ok"] else "FAILED %r" %
                      mc["transfers"],
                      " ".join(str(mc["before"][p][0]) for p in sorted(mc["before"])),
                      " ".join(str(mc["after"][p][0]) for p in sorted(mc["after"])), g))

    # checks
    tgt = RATIO_TARGET.get(mode)
    for f in fronts:
        if tgt is not None:
            checks.append(("%s %s throughput / proxy_pass >= %.2f" % (mode, f, tgt),
                           med[f]["ratio"], "%.3f", med[f]["ratio"] >= tgt))
        checks.append(("%s %s added p50 (c1) <= %.1f ms" % (mode, f, ADDED_P50_MS),
                       med[f]["d50"], "%+.3f ms", med[f]["d50"] <= ADDED_P50_MS))
        checks.append(("%s %s added p99 (c1) <= %.1f ms" % (mode, f, ADDED_P99_MS),
                       med[f]["d99"], "%+.3f ms", med[f]["d99"] <= ADDED_P99_MS))
        rt = DB_RT_TARGET.get(mode)
        if rt is not None:
            checks.append(("%s %s DB round trips/charged request %s %g" %
                           (mode, f, "<=" if mode == "strict" else "<", rt),
                           med[f]["rt"], "%.2f",
                           med[f]["rt"] <= rt if mode == "strict" else med[f]["rt"] < rt))
    checks.append(("%s worker RSS <= %g MiB (max of %d)" % (mode, RSS_MAX_MIB, WORKERS),
                   kib_mib(rss_end), "%.2f MiB", kib_mib(rss_end) <= RSS_MAX_MIB))
    gmax = max(growth) if growth else None
    checks.append(("%s worker RSS growth 10k->%dk requests <= %g MiB" %
                   (mode, res["gw_requests_total"] // 1000, RSS_GROWTH_MIB),
                   kib_mib(gmax), "%+.2f MiB",
                   gmax is not None and kib_mib(gmax) <= RSS_GROWTH_MIB and
                   res["gw_requests_total"] >= SOAK))
    # a process keeps as many connections as it had transfers at once:
    # at most the clients, with a few for the processes that took them
    checks.append(("%s upstream TCP connections <= clients + workers + %d" % (mode, UPSTREAM_CONN_SLACK),
                   res["upstream_conns"], "%d",
                   res["upstream_conns"] <= CONNS + WORKERS + UPSTREAM_CONN_SLACK))
    if mc:
        g = max(mc["growth_kib"].values()) if mc["growth_kib"] else None
        checks.append(("%s worker RSS growth over %d MiB up+down <= %g MiB" %
                       (mode, MEM_MIB, MEM_GROWTH_MIB), kib_mib(g), "%+.2f MiB",
                       mc["ok"] and g is not None and kib_mib(g) <= MEM_GROWTH_MIB))
    checks.append(("%s no errors from the gateway" % mode, errors, "%d", errors == 0))
    res["medians"] = med
    res["baseline_rps_median"] = base_rps
    return lines, checks


def print_profile(mode, p):
    if not p or "error" in p and "worker_by_category" not in p:
        print("profile [%s]: %s" % (mode, (p or {}).get("error")))
        return
    print("\nprofile [%s], gateway under %d-connection load via %s, %d s each:" %
          (mode, CONNS, "nginx" if "nginx" in FRONTS else FRONTS[0], PROFILE_SECONDS))
    print("  CPU by process (whole machine, % of 2 cores x time):")
    for k, v in sorted(p.get("system_by_process", {}).items(), key=lambda kv: -kv[1]):
        print("    %6.1f%%  %s" % (v, k))
    for key, what in (("mariadbd_top", "mariadbd"), ("worker_flat_top", "relay workers")):
        if p.get(key):
            print("  %s, hottest functions (%% of that process's samples):" % what)
            for pc, sym, dso in p[key]:
                print("    %6.1f%%  %s (%s)" % (pc, sym, dso))
    print("  worker CPU by library (call-chain attribution, %d samples):" % p["worker_samples"])
    for k, v in p["worker_by_category"].items():
        print("    %6.1f%%  %s" % (v, k))
    print("    (%.1f%% of worker samples are in the kernel, i.e. syscalls)" %
          p["worker_kernel_pct"])
    print("  worker samples by user-space leaf library:")
    for k, v in p["worker_user_leaf_dso"].items():
        print("    %6.1f%%  %s" % (v, k))
    print("  hottest leaf functions:")
    for k, v in p["worker_top_leaf"].items():
        print("    %6.1f%%  %s" % (v, k))
    print("  inclusive share of our functions (innermost of ours on the stack):")
    for k, v in p["worker_our_frames"].items():
        print("    %6.1f%%  %s" % (v, k))
    w = p.get("wall")
    if w:
        print("  wall time per request from the relay log (%d lines): %.2f ms total, %.2f ms "
              "in the upstream transfer, %.2f ms elsewhere (DB, FastCGI, our code)" %
              (w["lines"], w["mean_ms"], w["mean_upstream_ms"],
               w["mean_ms"] - w["mean_upstream_ms"]))


def main():
    global BUILD
    for tool in ("wrk", "nginx", "lighttpd", "spawn-fcgi", "mariadbd", "mariadb-install-db",
                 "curl"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is not installed (apt-get install wrk nginx lighttpd "
                     "spawn-fcgi mariadb-server curl)" % tool)
    zero, inflight = "zero" in SCENARIOS, "inflight" in SCENARIOS
    exes = ("bltcy-relay", "bltcy-ctl") + (("bench-floor",) if zero and FLOOR else ())
    for exe in exes:
        if not os.access(os.path.join(BUILD, exe), os.X_OK):
            sys.exit("bench: %s/%s is not built (make bench builds it)" % (BUILD, exe))
    if inflight and not os.path.exists(ECHO_MODULE):
        sys.exit("bench: %s is missing (apt-get install libnginx-mod-http-echo)" % ECHO_MODULE)
    global NOFILE
    nofile = NOFILE = raise_nofile()
    if inflight and nofile < 4 * max(CLIENTS) + 1024:
        sys.exit("bench: only %d file descriptors (ulimit -n) for %d clients" %
                 (nofile, max(CLIENTS)))

    b = Bench()
    # One build for the whole run, even if `make` replaces build/ meanwhile.
    bindir = os.path.join(b.dir, "bin")
    os.makedirs(bindir)
    for exe in exes:
        shutil.copy2(os.path.join(BUILD, exe), bindir)
    BUILD = bindir

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    t_start = time.time()
    load = os.getloadavg()
    print("bench: %s, %d cpus, %s, load %.2f %.2f %.2f" %
          (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), os.cpu_count(),
           mem_total(), *load))
    if zero:
        print("bench: rounds %d x %d s at %d connections (wrk -t%d) + %d s at 1 connection; "
              "workers %d; modes %s; fronts %s" %
              (ROUNDS, SECONDS, CONNS, THREADS, LAT_SECONDS, WORKERS, " ".join(MODES),
               " ".join(FRONTS)), flush=True)
    if inflight:
        print("bench: in-flight: delays %s s, clients %s, %d s + drain per run, %d round%s, "
              "workers %d, metering %s, fronts %s; ulimit -n %d, net.core.somaxconn %s, "
              "tcp_max_syn_backlog %s" %
              (" ".join("%g" % d for d in DELAYS), " ".join(str(c) for c in CLIENTS),
               IF_SECONDS, IF_ROUNDS, "" if IF_ROUNDS == 1 else "s", WORKERS, MODES[0],
               " ".join(FRONTS), nofile,
               read_sysctl("net.core.somaxconn"), read_sysctl("net.ipv4.tcp_max_syn_backlog")),
              flush=True)
        try:
            if int(read_sysctl("net.core.somaxconn")) < max(CLIENTS):
                print("bench: warning: net.core.somaxconn is below %d: connections beyond it "
                      "may be refused or retried by the kernel" % max(CLIENTS))
        except ValueError:
            pass
    if inflight:
        print("bench: in-flight pool as installed: %d workers x RELAY_THREADS %d = %d at once, "
              "spawn-fcgi -b %d; lighttpd server.max-connections %d, listen-backlog %d; nginx "
              "worker_connections %d, backlog %d" %
              (WORKERS, INSTALL["threads"], WORKERS * INSTALL["threads"], BACKLOG,
               INSTALL["lighttpd_conns"], INSTALL["lighttpd_backlog"], INSTALL["nginx_conns"],
               INSTALL["nginx_backlog"]))
    if LIMITS and zero:
        print("bench: limits: every front measured again with %s and bltcy-ctl limit set %s on "
              "the token and its user" % (", ".join("%s=%s" % kv for kv in RATE_OPTIONS),
                                          " ".join(LIMIT_ARGS)))
    if RELAY_ENV:
        print("bench: relay config added: %s" % " ".join(RELAY_ENV))
    log("setting up in %s" % b.dir)
    b.start_db()
    print("bench: MariaDB %s, innodb_flush_log_at_trx_commit=%s, innodb_flush_method %s, "
          "buffer pool %s MiB, log_bin %s"
          % (b.db_vars.get("version"), b.db_vars.get("innodb_flush_log_at_trx_commit"),
             b.db_vars.get("innodb_flush_method"),
             int(b.db_vars.get("innodb_buffer_pool_size", 0)) // MIB, b.db_vars.get("log_bin")))
    if DISK_PROBE > 0:
        d = disk_probe(b.datadir, DISK_PROBE)
        b.results["disk"] = d
        print("bench: disk of the MariaDB data directory, %d s of 4 KiB O_DIRECT|O_DSYNC "
              "writes: %d writes, p50 %.2f ms, p99.9 %.1f ms, max %.1f ms, %d over 50 ms "
              "(a strict charge waits for one such write)" %
              (DISK_PROBE, d["writes"], d["p50_ms"], d["p999_ms"], d["max_ms"], d["over_50ms"]))
    b.start_upstream()
    b.start_baseline()
    b.setup_data()
    # Fronts first need a socket path; the relay creates it per mode.
    b.relay_sock = os.path.join(b.dir, "relay.sock")
    b.start_fronts()

    all_checks = []
    tables = []
    for mode in MODES if zero else ():
        res = run_mode(b, mode)
        b.results["modes"][mode] = res
        if res.get("skipped"):
            tables.append(["[%s] not measured: %s" % (mode, res["skipped"])])
            all_checks.append(("%s metering implemented" % mode, None, "%s", None))
            continue
        lines, checks = summarise(b, res)
        tables.append(lines)
        all_checks.extend(checks)
        if mode == "lease" and "strict" in b.results["modes"] and res.get("medians"):
            rts = [res["medians"][f]["rt"] for f in res["fronts"]]
            if rts and min(rts) >= 1:
                tables[-1].append("note: lease made %.2f DB round trips per request: the "
                                  "relay does not lease yet (METERING=lease behaves as strict)"
                                  % min(rts))

    if zero and FLOOR:
        b.results["floor"] = run_floor(b)
    if inflight:
        b.results["inflight"] = run_inflight(b)
        tables.append(summarise_inflight(b.results["inflight"]))
        all_checks.extend(inflight_checks(b.results["inflight"]))

    print()
    for t in tables:
        print("\n".join(t))
        print()
    for mode in b.results["modes"]:
        res = b.results["modes"][mode]
        if res.get("profile"):
            print_profile(mode, res["profile"])
    print("\n==== summary (medians of %d rounds; targets from BENCHMARKS.md) ====" %
          (ROUNDS if zero else IF_ROUNDS))
    for mode in b.results["modes"]:
        res = b.results["modes"][mode]
        if res.get("medians"):
            print("%-7s baseline %.0f req/s; %s" % (
                mode, res["baseline_rps_median"], "; ".join(
                    "%s %.0f req/s = %.3f of proxy_pass, +%.3f/+%.3f ms p50/p99 (c1), "
                    "%.2f DB rt/req" % (f, m["rps"], m["ratio"], m["d50"], m["d99"], m["rt"])
                    for f, m in res["medians"].items())))
    if LIMITS:
        for mode in b.results["modes"]:
            res = b.results["modes"][mode]
            for line in limits_summary(res):
                print("%-7s %s" % (mode, line))
    for variant, what in (("answer", "answers at once"), ("forward", "only forwards")):
        fl = b.results.get("floor", {}).get(variant)
        if fl:
            print("floor   a FastCGI program that %s (no token, no database): %s" % (
                what, "; ".join("%s %.3f of proxy_pass" % kv for kv in fl.items())))
    fl = b.results.get("floor", {}).get("forward", {})
    for mode in b.results["modes"]:
        med = b.results["modes"][mode].get("medians") or {}
        parts = ["%s %.2f" % (f, m["ratio"] / fl[f]) for f, m in med.items()
                 if fl.get(f) and m.get("ratio")]
        if parts:
            print("%-7s of the forwarding floor: %s" % (mode, "; ".join(parts)))
    if inflight:
        for line in inflight_summary(b.results["inflight"]):
            print(line)
    failed = 0
    for name, val, f, ok in all_checks:
        status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        failed += ok is False
        print("%-4s  %-58s %s" % (status, name, "" if val is None else f % val))
    load_end = os.getloadavg()
    print("bench: %d checks, %d failed; %.0f s; load average at start %.2f, at end %.2f" %
          (len(all_checks), failed, time.time() - t_start, load[0], load_end[0]))
    if load[0] > 1.0:
        print("bench: warning: the machine was busy before the bench started (load %.2f): "
              "other work competes for the %d cores, figures are low" % (load[0], os.cpu_count()))
    if JSON_OUT:
        b.results["checks"] = [{"name": n, "value": v, "ok": ok} for n, v, _, ok in all_checks]
        b.results["db_vars"] = b.db_vars
        with open(JSON_OUT, "w") as f:
            json.dump(b.results, f, indent=1, default=str)
    return 0


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        return "%.1f GiB RAM" % (kb / 1024 / 1024)
    except OSError:
        return "? RAM"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench: setup failed: %s" % e, file=sys.stderr)
        sys.exit(2)
