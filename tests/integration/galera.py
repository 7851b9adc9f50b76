"""A real three-node MariaDB Galera cluster on loopback, for the tests of
relay hosts on a cluster: private data directories, sockets and ports
(SQL, group communication, IST and SST a node), nodes run as user
`mysql` (rsync state transfer refuses to run as root), node 1
bootstrapped and nodes 2 and 3 joined by state transfer. Every node runs
in its own process group with the parent-death signal set, and is killed
on exit.

    c = galera.Cluster()      # then c.start(); c.dsn(); c.kill(2); c.restart(2)

Also GaleraHarness: the integration harness (harness.Harness) with the
cluster in place of its private MariaDB and no pool of its own; a test
starts its relay hosts with start_pool(..., SQL_DSN=...), and HAProxy
from the shipped haproxy.cfg.sample (start_haproxy).

`python3 galera.py` brings a cluster up, kills a node, restarts it and
prints how long each step took.
"""

import atexit
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pymysql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SetupError, free_port, wait_for  # noqa: E402

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
USER = "bltcy"               # the relay's SQL user on the cluster
CHECK_USER = "bltcy_check"   # HAProxy's node check's, without grants
NODES = 3
SYNCED = 4                   # wsrep_local_state of a node that serves


def _as_mysql(uid, gid):
    """preexec_fn: a higher priority than the relay hosts and the load
    (nodes of a real cluster have machines of their own: on two shared
    cores a starved node misses its peers' keepalives and the survivors
    of a node's loss suspect each other too, and lose their majority);
    then become mysql, and ask for SIGKILL when the test process dies (a
    change of user clears that request, so it comes after)."""
    def go():
        try:
            os.setpriority(os.PRIO_PROCESS, 0, -5)
        except OSError:
            pass
        os.setgid(gid)
        os.setgroups([])
        os.setuid(uid)
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001
            pass
    return go


class Node:
    def __init__(self, cluster, i):
        self.i = i
        self.dir = os.path.join(cluster.dir, "n%d" % i)
        self.data = os.path.join(self.dir, "data")
        self.tmp = os.path.join(self.dir, "tmp")
        self.sock = os.path.join(self.dir, "mysql.sock")
        self.err = os.path.join(self.dir, "mariadb.err")
        self.port = free_port()       # SQL
        self.gport = free_port()      # group communication (gmcast)
        self.ist = free_port()
        self.sst = free_port()
        self.proc = None


class Cluster:
    def __init__(self, nodes=NODES, password=None):
        self.password = password or harness.rand_key(24)
        self.dir = None
        self.nodes = {}
        self.n = nodes
        pw = pwd.getpwnam("mysql")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.timings = {}

    # -- paths and addresses ---------------------------------------------------
    def node(self, i):
        return self.nodes[i]

    def address(self):
        return "gcomm://" + ",".join("127.0.0.1:%d" % n.gport for n in self.nodes.values())

    def dsn(self, order=None, db="bltcy", user=USER):
        """SQL_DSN naming the nodes in order (node numbers; all of them in
        their order when None); one node gives the one-host form."""
        order = order or list(self.nodes)
        hosts = ",".join("127.0.0.1:%d" % self.nodes[i].port for i in order)
        return "mysql://%s:%s@%s/%s" % (user, self.password, hosts, db)

    # -- start / stop -----------------------------------------------------------
    def start(self):
        t0 = time.time()
        self.dir = tempfile.mkdtemp(prefix="bltcy-galera-")
        atexit.register(self.stop)
        os.chmod(self.dir, 0o755)   # the nodes (mysql) and the health check (haproxy) walk through
        for i in range(1, self.n + 1):
            n = self.nodes[i] = Node(self, i)
            for d in (n.dir, n.data, n.tmp):
                os.makedirs(d, exist_ok=True)
                os.chown(d, self.uid, self.gid)
        self.install(self.nodes[1])
        self.timings["install"] = time.time() - t0
        self.launch(1, bootstrap=True)
        self.wait_synced(1, size=1)
        self.grant()
        self.timings["bootstrap"] = time.time() - t0
        for i in range(2, self.n + 1):
            self.launch(i)
        for i in range(1, self.n + 1):
            self.wait_synced(i)
        self.timings["up"] = time.time() - t0
        return self

    def install(self, n):
        p = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + n.data,
                            "--tmpdir=" + n.tmp, "--user=mysql", "--auth-root-authentication-method=normal",
                            "--skip-test-db"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=180,
                           preexec_fn=_as_mysql(self.uid, self.gid))
        if p.returncode != 0:
            raise SetupError("mariadb-install-db failed: %s" % p.stderr.decode("utf-8", "replace")[-2000:])

    def argv(self, n, bootstrap):
        opts = ";".join((
            "gmcast.listen_addr=tcp://127.0.0.1:%d" % n.gport,
            "ist.recv_addr=127.0.0.1:%d" % n.ist,
            "base_port=%d" % n.gport,
            # a small cache: a rejoin within a test's run is served by IST
            "gcache.size=64M", "gcache.page_size=16M",
            # a node gone (SIGKILL) is left out of the group after
            # Galera's default suspect timeout (5 s), as in production
            "evs.suspect_timeout=PT5S", "evs.inactive_timeout=PT15S",
            "evs.inactive_check_period=PT0.5S", "evs.keepalive_period=PT1S",
            "pc.announce_timeout=PT1S",
        ))
        a = ["mariadbd", "--no-defaults", "--user=mysql",
             "--datadir=" + n.data, "--tmpdir=" + n.tmp, "--socket=" + n.sock,
             "--pid-file=" + os.path.join(n.dir, "mariadbd.pid"), "--log-error=" + n.err,
             "--bind-address=127.0.0.1", "--port=%d" % n.port, "--skip-name-resolve",
             "--wsrep-on=ON", "--wsrep-provider=" + PROVIDER,
             "--wsrep-cluster-name=bltcy-test", "--wsrep-node-name=n%d" % n.i,
             "--wsrep-cluster-address=" + self.address(),
             "--wsrep-node-address=127.0.0.1:%d" % n.gport,
             "--wsrep-node-incoming-address=127.0.0.1:%d" % n.port,
             "--wsrep-sst-receive-address=127.0.0.1:%d" % n.sst,
             "--wsrep-sst-method=rsync", "--wsrep-provider-options=" + opts,
             "--wsrep-slave-threads=2",
             "--binlog-format=ROW", "--default-storage-engine=InnoDB",
             "--innodb-autoinc-lock-mode=2", "--log-bin-trust-function-creators=1",
             # small: three nodes, the relay hosts and the stub share two cores
             "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=32M",
             "--innodb-log-buffer-size=4M", "--innodb-flush-log-at-trx-commit=2",
             "--performance-schema=OFF", "--max-connections=600",
             "--table-open-cache=400", "--thread-cache-size=64",
             "--key-buffer-size=1M", "--aria-pagecache-buffer-size=8M"]
        if bootstrap:
            a.append("--wsrep-new-cluster")
        return a

    def launch(self, i, bootstrap=False):
        n = self.nodes[i]
        log = open(os.path.join(self.dir, "n%d.out" % i), "ab")
        n.proc = subprocess.Popen(self.argv(n, bootstrap), stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=log, start_new_session=True, cwd=n.dir,
                                  preexec_fn=_as_mysql(self.uid, self.gid))
        log.close()

    def grant(self):
        """The relay's user, for TCP from anywhere, with every grant on its
        database and no other, and the node check's, with none (created
        on node 1, they reach the others with the state transfer or by
        replication)."""
        c = self.root(1)
        try:
            cur = c.cursor()
            cur.execute("CREATE DATABASE IF NOT EXISTS bltcy CHARACTER SET utf8mb4")
            cur.execute("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'" % (USER, self.password))
            cur.execute("GRANT ALL ON bltcy.* TO '%s'@'%%'" % USER)
            # HAProxy's node check: a user with no grants at all
            cur.execute("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'" % (CHECK_USER, self.password))
        finally:
            c.close()

    def stop(self):
        for n in self.nodes.values():
            self._kill(n)
        if self.dir and os.path.isdir(self.dir):
            if os.environ.get("BLTCY_KEEP"):
                sys.stderr.write("galera: kept %s\n" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _kill(self, n):
        p, n.proc = n.proc, None
        if p is None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            pass

    # -- a node's life ------------------------------------------------------------
    def kill(self, i):
        """SIGKILL node i (its whole process group: a state transfer's
        helpers too). Returns the time of the kill."""
        t = time.time()
        self._kill(self.nodes[i])
        return t

    def restart(self, i, timeout=120):
        """Start node i again after a kill: it rejoins the cluster (IST
        from a donor's cache, or SST) and serves again. Returns seconds
        until it is synced in a cluster of all nodes."""
        n = self.nodes[i]
        if n.proc is not None and n.proc.poll() is None:
            raise SetupError("node %d is running" % i)
        t0 = time.time()
        self.launch(i)
        self.wait_synced(i, timeout=timeout)
        return time.time() - t0

    def running(self, i):
        p = self.nodes[i].proc
        return p is not None and p.poll() is None

    def root(self, i, timeout=2):
        return pymysql.connect(unix_socket=self.nodes[i].sock, user="root", password="",
                               connect_timeout=timeout, read_timeout=10, write_timeout=10,
                               autocommit=True, cursorclass=pymysql.cursors.DictCursor)

    def status(self, i):
        """Node i's wsrep state: {"state": wsrep_local_state (4 synced),
        "comment", "size": wsrep_cluster_size, "ready": wsrep_ready,
        "primary": cluster status is Primary}, or None when it does not
        answer."""
        if not self.running(i):
            return None
        try:
            c = self.root(i)
        except pymysql.err.MySQLError:
            return None
        try:
            cur = c.cursor()
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state',"
                        " 'wsrep_local_state_comment', 'wsrep_cluster_size', 'wsrep_ready',"
                        " 'wsrep_cluster_status')")
            v = {r["Variable_name"]: r["Value"] for r in cur.fetchall()}
        except pymysql.err.MySQLError:
            return None
        finally:
            c.close()
        return {"state": int(v.get("wsrep_local_state") or 0),
                "comment": v.get("wsrep_local_state_comment"),
                "size": int(v.get("wsrep_cluster_size") or 0),
                "ready": v.get("wsrep_ready") == "ON",
                "primary": v.get("wsrep_cluster_status") == "Primary"}

    def wait_synced(self, i, size=None, timeout=120):
        """Until node i is synced and ready in a primary component of size
        nodes (all the running ones when None)."""
        def ready():
            n = self.nodes[i]
            if n.proc is None or n.proc.poll() is not None:
                raise SetupError("node %d exited: %s" % (i, self.tail(i)))
            want = size if size is not None else sum(1 for j in self.nodes if self.running(j))
            s = self.status(i)
            return s is not None and s["state"] == SYNCED and s["ready"] and s["primary"] \
                and s["size"] == want
        wait_for(ready, timeout, "node %d synced" % i, interval=0.1)

    def wait_size(self, size, timeout=30):
        """Until every running node sees a primary cluster of size nodes
        (after a kill: the survivors have left the dead node out)."""
        def ready():
            for j in self.nodes:
                if self.running(j):
                    s = self.status(j)
                    if s is None or s["size"] != size or not s["primary"]:
                        return False
            return True
        wait_for(ready, timeout, "cluster of %d" % size, interval=0.1)

    def connections(self, i, user=USER):
        """How many connections of user node i holds (its processlist)."""
        c = self.root(i)
        try:
            cur = c.cursor()
            cur.execute("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
            return int(cur.fetchone()["n"])
        finally:
            c.close()

    def tail(self, i, lines=20):
        try:
            with open(self.nodes[i].err, "rb") as f:
                return " | ".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""


# ---------------------------------------------------------------------------
# The integration harness on a cluster


class GaleraHarness(harness.Harness):
    """harness.Harness whose database is a Galera cluster: start() brings
    up the cluster, migrates through node 1 and starts the stub; no relay
    pool or front of its own (a test starts its hosts with start_pool,
    SQL_DSN naming the cluster). sql() talks to node 1, waiting for
    every write the cluster has applied before it reads (wsrep_sync_wait)."""

    def __init__(self, keep=False, extra_config=None):
        super().__init__(workers=2, keep=keep, extra_config=extra_config)
        self.cluster = Cluster()
        self.admin_node = 1

    def start(self):
        self.make_dir()
        self.cluster.start()
        self.write_config()
        self.ctl("migrate")
        self.start_stub()
        self.fronts = {}

    def write_config(self):
        super().write_config()
        # the one-node form, which every build reads: for bltcy-ctl
        self.config["SQL_DSN"] = self.cluster.dsn([1])
        with open(self.config_path, "w") as f:
            for k, v in self.config.items():
                f.write("%s=%s\n" % (k, v))

    def stop(self):
        super().stop()
        self.cluster.stop()

    def db(self):
        if self._db is not None:
            try:
                self._db.ping(reconnect=False)
            except Exception:  # noqa: BLE001
                self._db = None
        if self._db is None:
            n = self.cluster.node(self.admin_node)
            self._db = pymysql.connect(unix_socket=n.sock, user="root", password="", database="bltcy",
                                       autocommit=True, charset="utf8mb4",
                                       cursorclass=pymysql.cursors.DictCursor)
            self._db.cursor().execute("SET SESSION wsrep_sync_wait = 15")
        return self._db

    def use_node(self, i):
        """sql() from now on through node i (when the one it used is down)."""
        if i != self.admin_node:
            self.admin_node = i
            self._db = None

    # HAProxy, configured by the shipped sample
    def start_haproxy(self, check_command, check_path):
        """HAProxy from haproxy.cfg.sample with the addresses and paths of
        this run: its listener on a free port, its servers the cluster's
        nodes in order, its stats socket in the cluster's folder, its
        health check check_command run with PATH check_path (what the
        user haproxy can run). Returns the port."""
        port = free_port()
        text = render_haproxy(open(os.path.join(harness.ROOT, "haproxy.cfg.sample")).read(),
                              port, [self.cluster.node(i).port for i in sorted(self.cluster.nodes)],
                              check_command, check_path, os.path.join(self.cluster.dir, "haproxy.sock"))
        conf = os.path.join(self.cluster.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(text)
        p = subprocess.run(["haproxy", "-c", "-f", conf], capture_output=True, timeout=30)
        if p.returncode != 0:
            raise SetupError("haproxy -c: %s" % (p.stdout + p.stderr).decode("utf-8", "replace"))
        self.haproxy_sock = os.path.join(self.cluster.dir, "haproxy.sock")
        self.spawn("haproxy", ["haproxy", "-db", "-f", conf])
        self.wait_port("haproxy", port)
        self.haproxy_port = port
        return port

    def haproxy_servers(self):
        """{server name: (status, current sessions)} from HAProxy's stats
        socket ("show stat")."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.haproxy_sock)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        lines = data.decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            if not line:
                continue
            row = dict(zip(head, line.split(",")))
            if row["svname"] not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = (row["status"], int(row["scur"] or 0))
        return out


def render_haproxy(text, port, node_ports, check_command, check_path, stats_sock):
    """haproxy.cfg.sample with this run's addresses: the listener's bind
    on 127.0.0.1:port, the k-th server line on node_ports[k], the stats
    socket, the external check's command and path. Every other line as
    shipped; a line the pattern misses is an error (the sample and the
    test went apart)."""
    seen = {"bind": 0, "server": 0, "command": 0, "path": 0, "stats": 0}

    def sub(m, what, new):
        seen[what] += 1
        return new

    out = []
    k = 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("bind "):
            line = re.sub(r"bind\s+\S+", lambda m: sub(m, "bind", "bind 127.0.0.1:%d" % port), line)
        elif s.startswith("server "):
            line = re.sub(r"(server\s+\S+\s+)\S+:\d+",
                          lambda m: sub(m, "server", m.group(1) + "127.0.0.1:%d" % node_ports[k]), line)
            k += 1
        elif s.startswith("external-check command "):
            line = re.sub(r"command\s+\S+", lambda m: sub(m, "command", "command " + check_command), line)
        elif s.startswith("external-check path "):
            line = re.sub(r"path\s+\S+", lambda m: sub(m, "path", 'path "%s"' % check_path), line)
        elif s.startswith("stats socket "):
            line = re.sub(r"socket\s+\S+", lambda m: sub(m, "stats", "socket " + stats_sock), line)
        out.append(line)
    if seen != {"bind": 1, "server": len(node_ports), "command": 1, "path": 1, "stats": 1}:
        raise SetupError("haproxy.cfg.sample: want one bind, %d servers, one external-check command"
                         " and path, and one stats socket, found %r" % (len(node_ports), seen))
    return "\n".join(out) + "\n"


def main():
    c = Cluster()
    t0 = time.time()
    c.start()
    print("cluster up in %.1fs (install %.1fs, bootstrap %.1fs)" % (
        time.time() - t0, c.timings["install"], c.timings["bootstrap"]))
    for i in c.nodes:
        print("node", i, c.status(i))
    c.kill(2)
    t1 = time.time()
    c.wait_size(2)
    print("node 2 killed: cluster of 2 after %.1fs" % (time.time() - t1))
    print("node 2 back in %.1fs" % c.restart(2))
    for i in c.nodes:
        print("node", i, c.status(i))
    c.stop()


if __name__ == "__main__":
    main()
