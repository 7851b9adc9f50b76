"""Brings up the real thing for the integration tests, in a temporary
directory: a private MariaDB, the schema (bltcy-ctl migrate), the stub
upstream, the relay pool under spawn-fcgi, and both front servers
(lighttpd and nginx) on free loopback ports. Everything runs in its own
process group and is killed on exit, also on failure.

Also: a raw-socket HTTP client (paths are sent byte for byte), an SQL
helper, and functions that create users, tokens and channels with plain
SQL in new-api's schema.
"""

import atexit
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time

import pymysql

from runner import METERING, Fail

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
BUILD = os.path.join(ROOT, os.environ.get("BLTCY_BUILD", "build"))
PY = "/usr/bin/python3"

sys.path.insert(0, TESTS)
import stub_upstream  # noqa: E402  (download_sha256 for the tests)


class SetupError(Exception):
    pass


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test process dies without
    cleaning up (e.g. killed by a CI timeout)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns a true value; raise SetupError on timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - remember why it is not ready
            last = e
        time.sleep(interval)
    raise SetupError("timed out waiting for %s%s" % (what, (": %r" % last) if last else ""))


def rand_key(n=48):
    alphabet = string.ascii_letters + string.digits
    return "".join(random.choice(alphabet) for _ in range(n))


def relay_sql(name, mark="%s"):
    """Statement `name` of fcgi/sql.c (a run of string literals), with
    its placeholders written as mark (pymysql's %s; "?" for PREPARE)."""
    src = open(os.path.join(ROOT, "fcgi", "sql.c")).read()
    m = re.search(r"\[%s\] =\s*((?:\"[^\"]*\"\s*)+)," % name, src)
    if m is None:
        raise SetupError("no %s in fcgi/sql.c" % name)
    return "".join(re.findall(r'"([^"]*)"', m.group(1))).replace("?", mark)


def rand_name(prefix):
    """prefix and ten random characters, the last a digit: as a task id it
    is never a word (task_id_weak), which the relay would let anyone name."""
    return "%s%s%s" % (prefix, "".join(random.choice(string.ascii_lowercase + string.digits)
                                       for _ in range(9)), random.choice(string.digits))


# ---------------------------------------------------------------------------
# Raw HTTP client


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), as received
        self.body = body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        b = self.body if len(self.body) <= 400 else self.body[:400] + b"..."
        return "<%d %s %r %r>" % (self.status, self.reason, self.headers, b)


class Conn:
    """One HTTP/1.1 exchange over a raw socket. The request target is sent
    byte for byte, so traversal and control-byte paths reach the server
    as written."""

    def __init__(self, port, timeout=60, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.port = port
        self.f = self.sock.makefile("rb")
        self.send_error = None
        self.sender = None

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()

    def send_request(self, method, path, headers=(), body=None, chunked=False,
                     content_length=None, chunk_size=65536, host_header=True):
        if isinstance(path, str):
            path = path.encode("latin-1")
        lines = [method.encode() + b" " + path + b" HTTP/1.1"]
        names = {k.lower() for k, _ in headers}
        if host_header and "host" not in names:
            lines.append(b"Host: 127.0.0.1:%d" % self.port)
        for k, v in headers:
            if isinstance(v, str):
                v = v.encode("utf-8")
            lines.append(k.encode() + b": " + v)
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            if chunked:
                lines.append(b"Transfer-Encoding: chunked")
            else:
                n = content_length if content_length is not None else len(body)
                lines.append(b"Content-Length: %d" % n)
        if "connection" not in names:
            lines.append(b"Connection: close")
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        if body is None:
            self.sock.sendall(head)
            return
        if isinstance(body, str):
            body = body.encode("utf-8")

        def pieces():
            if isinstance(body, (bytes, bytearray, memoryview)):
                mv = memoryview(body)
                for off in range(0, len(mv), chunk_size):
                    yield mv[off:off + chunk_size]
            else:
                yield from body

        def send_all():
            try:
                self.sock.sendall(head)
                for p in pieces():
                    if chunked:
                        if len(p):
                            self.sock.sendall(b"%x\r\n" % len(p) + bytes(p) + b"\r\n")
                    else:
                        self.sock.sendall(p)
                if chunked:
                    self.sock.sendall(b"0\r\n\r\n")
            except OSError as e:
                self.send_error = e

        if isinstance(body, (bytes, bytearray)) and len(body) <= 262144:
            send_all()
        else:
            # Large or streamed bodies go from a thread so that an early
            # answer (413, 401) can be read while the body is being sent.
            self.sender = threading.Thread(target=send_all, daemon=True)
            self.sender.start()

    def read_head(self, method="GET"):
        while True:
            line = self.f.readline(65537)
            if not line:
                raise ConnectionError("connection closed before the status line")
            parts = line.rstrip(b"\r\n").split(b" ", 2)
            status = int(parts[1])
            reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
            headers = []
            while True:
                h = self.f.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers.append((k, v.strip()))
            if 100 <= status < 200 and status != 101:
                continue
            self.status, self.reason, self.headers = status, reason, headers
            self.method = method
            self._mode = self._body_mode()
            self._left = None
            self._done = False
            return status, headers

    def _body_mode(self):
        hd = {k.lower(): v for k, v in self.headers}
        if self.method == "HEAD" or self.status in (204, 304):
            return "none"
        if "chunked" in hd.get("transfer-encoding", "").lower():
            return "chunked"
        if "content-length" in hd:
            self._cl = int(hd["content-length"])
            return "length"
        return "close"

    def read_some(self):
        """Return the next piece of the body as it arrives; b"" at the end."""
        if self._done:
            return b""
        if self._mode == "none":
            self._done = True
            return b""
        if self._mode == "length":
            if self._left is None:
                self._left = self._cl
            if self._left == 0:
                self._done = True
                return b""
            b = self.f.read1(min(self._left, 1 << 20))
            if not b:
                raise ConnectionError("closed with %d body bytes missing" % self._left)
            self._left -= len(b)
            return b
        if self._mode == "chunked":
            line = self.f.readline(65537)
            if not line:
                raise ConnectionError("closed inside chunked body")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self.f.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
            data = self.f.read(size)
            if len(data) != size:
                raise ConnectionError("closed inside a chunk")
            self.f.readline(3)
            return data
        b = self.f.read1(1 << 20)
        if not b:
            self._done = True
        return b

    def read_body(self, sink=None):
        parts = []
        while True:
            b = self.read_some()
            if not b:
                break
            if sink:
                sink(b)
            else:
                parts.append(b)
        return b"".join(parts)


def request(port, method, path, headers=(), body=None, chunked=False, timeout=60,
            sink=None, content_length=None):
    """One request on a fresh connection. Returns a Response; with sink,
    the body is passed to sink piece by piece and Response.body is b""."""
    c = Conn(port, timeout=timeout)
    try:
        c.send_request(method, path, headers, body, chunked=chunked, content_length=content_length)
        c.read_head(method)
        data = c.read_body(sink)
        return Response(c.status, c.reason, c.headers, data)
    finally:
        if c.sender:
            c.sender.join(5)
        c.close()


# ---------------------------------------------------------------------------
# The environment


def start_suite(keep, workers=2, config=None, stubs=(), setup=None):
    """A suite's start: everything Harness.start brings up, with workers in
    the main pool and config over the default configuration, more stub
    upstreams (stubs: their names, in h.stubs with the first, "stubA"),
    then setup(h) for what the suite alone needs. Returns the harness
    started; whatever came up is stopped if a step fails."""
    h = Harness(workers=workers, keep=keep, extra_config=config)

    def up():
        h.start()
        for name in stubs:
            h.stubs[name] = h.start_stub(name, name)
        if setup is not None:
            setup(h)
    return h.started(up)


JSON = [("Content-Type", "application/json")]


def auth(token, extra=()):
    """The token's Authorization header, then extra headers."""
    return [("Authorization", "Bearer sk-" + token["key"])] + list(extra)


def idem(key):
    return [("Idempotency-Key", key)]


class Harness:
    def __init__(self, workers=4, keep=False, extra_config=None):
        self.workers = workers
        self.keep = keep or bool(os.environ.get("BLTCY_KEEP"))
        self.extra_config = extra_config or {}
        self.stubs = {}
        self.procs = {}
        self.dir = None
        self._db = None
        self.ok = True

    # -- processes ---------------------------------------------------------
    def spawn(self, name, argv, env=None, stdout=None):
        log = open(os.path.join(self.dir, name + ".out"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout or log, stderr=log,
                             env=env or self.env(), start_new_session=True, cwd=self.dir,
                             preexec_fn=_die_with_parent)
        self.procs[name] = p
        return p

    def kill(self, name, sig=signal.SIGTERM, wait=10):
        p = self.procs.pop(name, None)
        if p is None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def env(self):
        e = {k: v for k, v in os.environ.items()
             if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        e["BLTCY_CONFIG"] = self.config_path
        return e

    def log_tail(self, name, n=30):
        path = os.path.join(self.dir, name)
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    # -- start/stop ----------------------------------------------------------
    def make_dir(self):
        """The run's directory and the paths in it; the build checked."""
        self.dir = tempfile.mkdtemp(prefix="bltcy-it-")
        atexit.register(self.stop)
        for d in ("www", "tmp", "nginx-tmp"):
            os.makedirs(os.path.join(self.dir, d))
        self.config_path = os.path.join(self.dir, "bltcy.env")
        self.db_sock = os.path.join(self.dir, "mysql.sock")
        self.relay_sock = os.path.join(self.dir, "relay.sock")
        self.log_file = os.path.join(self.dir, "relay.log")
        for exe in ("bltcy-relay", "bltcy-ctl"):
            if not os.access(os.path.join(BUILD, exe), os.X_OK):
                raise SetupError("%s/%s is missing: run make first" % (BUILD, exe))

    def start(self):
        self.make_dir()
        self.write_config()
        self.init_db()
        self.start_db()
        self.ctl("migrate")
        self.start_stub()
        self.start_relay()
        self.start_lighttpd()
        self.start_nginx()
        self.fronts = {"lighttpd": self.lighttpd_port, "nginx": self.nginx_port}
        self.wait_relay()

    def started(self, setup=None):
        """start() (or setup(), which starts it) for a suite's start
        function; whatever came up is stopped if that fails."""
        try:
            (setup or self.start)()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for name in list(self.procs)[::-1]:
            self.kill(name, wait=5)
        if self._db:
            try:
                self._db.close()
            except Exception:  # noqa: BLE001
                pass
            self._db = None
        if self.dir and os.path.isdir(self.dir):
            if self.keep:
                sys.stderr.write("harness: kept %s\n" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def write_config(self):
        cfg = {
            "SQL_DSN": "root:@unix(%s)/bltcy" % os.path.join(self.dir, "mysql.sock"),
            "SESSION_SECRET": rand_key(40),
            "RELAY_WORKERS": str(self.workers),
            "LOG_FILE": os.path.join(self.dir, "relay.log"),
            "LOG_LEVEL": "info",
            "RELAY_MAX_BODY": str(32 * 1024 * 1024),
            "RELAY_CONNECT_TIMEOUT": "5",
            "RELAY_HEADER_TIMEOUT": "60",
            "RELAY_TIMEOUT": "120",
            # the per-address limit of failed token checks is the door
            # suite's to test; elsewhere every test comes from 127.0.0.1,
            # and how many unknown tokens earlier tests sent (more on a
            # slower build) must not decide whether a new token passes
            "RELAY_AUTH_FAIL_BURST": "0",
            # the suites test behaviour; the installed default (1,024 a
            # worker) is the fronts suite's and the bench's to measure, and
            # thousands of threads only slow a sanitizer build's stops
            "RELAY_THREADS": "256",
            "METERING": METERING,
        }
        cfg.update(self.extra_config)
        self.config = cfg
        with open(self.config_path, "w") as f:
            for k, v in cfg.items():
                f.write("%s=%s\n" % (k, v))

    def ctl(self, *args, check=True):
        p = subprocess.run([os.path.join(BUILD, "bltcy-ctl"), *args], env=self.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if check and p.returncode != 0:
            raise SetupError("bltcy-ctl %s exited %d: %s" % (" ".join(args), p.returncode,
                                                           (p.stdout + p.stderr).decode("utf-8", "replace")))
        return p

    # MariaDB
    def init_db(self):
        # a private tmpdir: bootstraps running side by side share no /tmp files
        os.makedirs(os.path.join(self.dir, "dbtmp"), exist_ok=True)
        p = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=%s/data" % self.dir,
                            "--tmpdir=%s/dbtmp" % self.dir, "--user=root", "--auth-root-authentication-method=normal"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        if p.returncode != 0:
            raise SetupError("mariadb-install-db failed: %s" % p.stderr.decode("utf-8", "replace")[-2000:])

    def start_db(self):
        self.spawn("mariadbd", ["mariadbd", "--no-defaults", "--datadir=%s/data" % self.dir,
                                "--tmpdir=%s/dbtmp" % self.dir,
                                "--socket=%s" % self.db_sock, "--port=0", "--skip-networking",
                                "--user=root", "--innodb-buffer-pool-size=64M",
                                "--log-error=%s/mariadb.err" % self.dir])

        def ready():
            if self.procs["mariadbd"].poll() is not None:
                raise SetupError("mariadbd exited: %s" % self.log_tail("mariadb.err"))
            c = pymysql.connect(unix_socket=self.db_sock, user="root", password="", connect_timeout=2)
            c.cursor().execute("CREATE DATABASE IF NOT EXISTS bltcy CHARACTER SET utf8mb4")
            c.close()
            return True
        wait_for(ready, 60, "mariadbd")

    def stop_db(self):
        self._db = None
        self.kill("mariadbd", signal.SIGTERM, wait=30)

    def db(self):
        if self._db is None:
            self._db = pymysql.connect(unix_socket=self.db_sock, user="root", password="",
                                       database="bltcy", autocommit=True, charset="utf8mb4",
                                       cursorclass=pymysql.cursors.DictCursor)
        else:
            self._db.ping(reconnect=True)
        return self._db

    def sql(self, q, args=None):
        """Run one statement; returns rows (list of dicts) for a SELECT,
        else lastrowid."""
        with self.db().cursor() as cur:
            cur.execute(q, args)
            if cur.description:
                return cur.fetchall()
            return cur.lastrowid

    # stub
    def start_stub(self, name="stub", stub_name="stubA"):
        """Start a stub upstream; the first one is self.stub / self.stub_port.
        Returns its StubClient (with .port)."""
        pf = os.path.join(self.dir, name + ".port")
        self.spawn(name, [PY, os.path.join(TESTS, "stub_upstream.py"), "--port-file", pf, "--name", stub_name])
        port = int(wait_for(lambda: open(pf).read().strip(), 20, "%s port file" % name))
        client = StubClient(port)
        wait_for(lambda: client.connections() is not None, 10, name)
        if name == "stub":
            self.stub_port = port
            self.stub = client
            self.stubs[stub_name] = client
        return client

    # relay
    def start_relay(self):
        self.spawn("relay", ["spawn-fcgi", "-n", "-s", self.relay_sock, "-M", "0660", "--",
                             os.path.join(BUILD, "bltcy-relay")])
        self.relay_pid = self.procs["relay"].pid

        def ready():
            if self.procs["relay"].poll() is not None:
                raise SetupError("relay exited with %s: %s / %s" % (
                    self.procs["relay"].returncode, self.log_tail("relay.out"), self.log_tail("relay.log")))
            return os.path.exists(self.relay_sock) and len(self.workers_pids()) >= self.workers
        wait_for(ready, 20, "relay pool (%d workers)" % self.workers)

    def workers_pids(self):
        return children_of(self.relay_pid, workers_only=True)

    def charger_pid(self):
        """The main pool's charger (strict metering), or None."""
        return own_process(self.relay_pid, CHARGER_COMM)

    def tasks_pid(self):
        """The main pool's task poller, or None."""
        return own_process(self.relay_pid, TASKS_COMM)

    def start_pool(self, name, workers=2, **config):
        """A second relay pool (own config, socket, log file and lighttpd
        front) on the same MariaDB and stub, for tests that need another
        configuration or disturb the pool (signals)."""
        return Pool(self, name, workers, config)

    def wait_relay(self):
        def ready():
            for port in self.fronts.values():
                r = request(port, "GET", "/bltcy/health", timeout=5)
                if r.status != 200:
                    return False
            return True
        wait_for(ready, 30, "GET /bltcy/health = 200 through both fronts", interval=0.2)

    # fronts
    def render(self, template, out, **kw):
        with open(os.path.join(TESTS, "conf", template)) as f:
            text = f.read()
        for k, v in kw.items():
            text = text.replace("@%s@" % k, str(v))
        path = os.path.join(self.dir, out)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_lighttpd(self, name="lighttpd", sock=None):
        port = free_port()
        conf = self.render("lighttpd.conf.in", name + ".conf", PORT=port, DIR=self.dir,
                           SOCK=sock or self.relay_sock, NAME=name)
        self.spawn(name, ["lighttpd", "-D", "-f", conf])
        self.wait_port(name, port)
        if name == "lighttpd":
            self.lighttpd_port = port
        return port

    def start_nginx(self):
        self.nginx_port = free_port()
        conf = self.render("nginx.conf.in", "nginx.conf", PORT=self.nginx_port, DIR=self.dir,
                           SOCK=self.relay_sock, FASTCGI_PARAMS="/etc/nginx/fastcgi_params")
        self.spawn("nginx", ["nginx", "-p", self.dir, "-c", conf, "-g", "daemon off;"])
        self.wait_port("nginx", self.nginx_port)

    def wait_port(self, name, port):
        def ready():
            if self.procs[name].poll() is not None:
                raise SetupError("%s exited: %s %s" % (name, self.log_tail(name + ".out"),
                                                       self.log_tail(name + "-error.log")))
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        wait_for(ready, 20, "%s on port %d" % (name, port))

    # -- data helpers ----------------------------------------------------------
    def make_user(self, quota=10 ** 12, group=None, role=1, status=1, deleted=False):
        username = rand_name("u")
        group = group or rand_name("g")
        uid = self.sql("INSERT INTO users (username, password, display_name, role, status, quota,"
                       " used_quota, request_count, `group`, deleted_at) VALUES"
                       " (%s, %s, %s, %s, %s, %s, 0, 0, %s, %s)",
                       (username, "$2a$10$" + rand_key(53), username, role, status, quota, group,
                        "2020-01-01 00:00:00" if deleted else None))
        return {"id": uid, "username": username, "group": group, "role": role}

    def make_token(self, user, remain_quota=10 ** 12, unlimited=0, status=1, expired_time=-1,
                   model_limits_enabled=0, model_limits="", allow_ips="", deleted=False, name=None):
        key = rand_key(48)
        name = name or rand_name("t")
        tid = self.sql("INSERT INTO tokens (user_id, `key`, status, name, created_time, accessed_time,"
                       " expired_time, remain_quota, unlimited_quota, model_limits_enabled, model_limits,"
                       " allow_ips, used_quota, `group`, deleted_at) VALUES"
                       " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '', %s)",
                       (user["id"], key, status, name, int(time.time()), int(time.time()), expired_time,
                        remain_quota, unlimited, model_limits_enabled, model_limits, allow_ips,
                        "2020-01-01 00:00:00" if deleted else None))
        return {"id": tid, "key": key, "name": name, "user": user}

    def make_channel(self, group, base_url=None, key=None, models="runway,pika,kling,jimeng,suno",
                     setting=None, priority=0, weight=0, status=1, name=None, auto_ban=1):
        if base_url is None:
            base_url = "http://127.0.0.1:%d" % self.stub_port
        key = key or "chan-" + rand_key(32)
        name = name or rand_name("c")
        if isinstance(setting, dict):
            setting = json.dumps(setting)
        cid = self.sql("INSERT INTO channels (type, `key`, status, name, weight, created_time, base_url,"
                       " models, `group`, used_quota, priority, setting, auto_ban) VALUES"
                       " (55, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s)",
                       (key, status, name, weight, int(time.time()), base_url, models, group,
                        priority, setting, auto_ban))
        for g in group.split(","):
            for m in models.split(","):
                self.sql("INSERT INTO abilities (`group`, model, channel_id, enabled, priority, weight)"
                         " VALUES (%s, %s, %s, %s, %s, %s)",
                         (g, m, cid, 1 if status == 1 else 0, priority, weight))
        return {"id": cid, "key": key, "name": name, "group": group}

    def setup_account(self, quota=10 ** 12, remain_quota=10 ** 12, setting=None, base_url=None,
                      channel=True, auto_ban=1, **token_kw):
        """A fresh user in a group of its own, a token, and (unless
        channel=False) a type-55 channel for that group pointing at the stub."""
        user = self.make_user(quota=quota)
        token = self.make_token(user, remain_quota=remain_quota, **token_kw)
        chan = self.make_channel(user["group"], base_url=base_url, setting=setting,
                                 auto_ban=auto_ban) if channel else None
        return user, token, chan

    def close_backlog(self):
        """Kept charges the main pool has not written yet (its usage ring)."""
        try:
            r = request(self.lighttpd_port, "GET", "/bltcy/metrics", timeout=5)
        except OSError:
            return 0
        for line in r.body.decode("utf-8", "replace").splitlines():
            if line.startswith("bltcy_usage_backlog "):
                return int(line.split()[1])
        return 0

    def wait_settled(self, token, timeout=5):
        """Kept charges reach the database through the usage ring, which
        the master writes in batches: wait until the main pool's ring is
        written (token is not looked at: the ring is one for all). A
        request still in flight is not in it yet; after `timeout` the
        caller reads whatever is there."""
        end = time.time() + timeout
        while time.time() < end:
            if self.close_backlog() == 0:
                return True
            time.sleep(0.02)
        return False

    def snapshot(self, user, token, chan=None):
        self.wait_settled(token)
        u = self.sql("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
        t = self.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
        s = {"user_quota": u["quota"], "user_used": u["used_quota"], "user_count": u["request_count"],
             "token_remain": t["remain_quota"], "token_used": t["used_quota"],
             "logs": self.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (token["id"],))[0]["n"]}
        if chan:
            s["chan_used"] = self.sql("SELECT used_quota FROM channels WHERE id=%s", (chan["id"],))[0]["used_quota"]
        return s

    def counters(self, user, token, chan):
        """The account as the customer sees it (snapshot): in lease
        metering, what a host holds leased and has not spent still counts
        as the token's and the user's."""
        s = self.snapshot(user, token, chan)
        t = self.sql("SELECT COALESCE(SUM(amount), 0) AS a FROM bltcy_leases WHERE token_id=%s",
                     (token["id"],))[0]["a"]
        u = self.sql("SELECT COALESCE(SUM(amount), 0) AS a FROM bltcy_leases WHERE user_id=%s",
                     (user["id"],))[0]["a"]
        s["token_remain"] += int(t)
        s["user_quota"] += int(u)
        return s

    def health_ok(self):
        """The body of /bltcy/health when the database answers: it names
        the node the pool uses, here the one server's socket."""
        return b'{"status":"ok","db_node":"%s"}' % self.db_sock.encode()

    def logs(self, token):
        return self.sql("SELECT * FROM logs WHERE token_id=%s ORDER BY id", (token["id"],))



class Pool:
    def __init__(self, h, name, workers, config):
        self.h = h
        self.name = name
        self.workers = workers
        self.sock = os.path.join(h.dir, name + ".sock")
        self.log_file = os.path.join(h.dir, name + ".log")
        self.config_path = os.path.join(h.dir, name + ".env")
        cfg = dict(h.config)
        cfg.update({"RELAY_WORKERS": str(workers), "LOG_FILE": self.log_file})
        cfg.update({k: str(v) for k, v in config.items()})
        self.config = cfg
        with open(self.config_path, "w") as f:
            for k, v in cfg.items():
                f.write("%s=%s\n" % (k, v))
        env = h.env()
        env["BLTCY_CONFIG"] = self.config_path
        # a pool of the same name killed just before may still be going
        # away (its workers' threads exiting): spawn-fcgi refuses a socket
        # that still accepts, so wait until it no longer does
        wait_for(lambda: not socket_accepts(self.sock), 20, "the old %s socket to close" % name)
        self.proc = h.spawn(name, ["spawn-fcgi", "-n", "-s", self.sock, "-M", "0660", "--",
                                   os.path.join(BUILD, "bltcy-relay")], env=env)
        self.pid = self.proc.pid

        def ready():
            if self.proc.poll() is not None:
                raise SetupError("pool %s exited with %s: %s" % (name, self.proc.returncode,
                                                                h.log_tail(name + ".out")))
            return os.path.exists(self.sock) and len(self.workers_pids()) >= workers
        wait_for(ready, 20, "pool %s" % name)
        self.port = h.start_lighttpd(name + "-lighttpd", self.sock)

    def workers_pids(self):
        return children_of(self.pid, workers_only=True)

    def tasks_pid(self):
        return own_process(self.pid, TASKS_COMM)

    def stop(self):
        self.h.kill(self.name + "-lighttpd", wait=5)
        self.h.kill(self.name, wait=10)


def pool_metrics(port):
    """The /bltcy/metrics of the pool behind port: {name: value} of the
    series without labels."""
    r = request(port, "GET", "/bltcy/metrics", timeout=10)
    if r.status != 200:
        raise Fail("GET /bltcy/metrics status: want 200, got %r" % r.status)
    out = {}
    for line in r.body.decode().splitlines():
        m = re.match(r"^(bltcy_[a-z_]+) (-?\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    if "bltcy_usage_backlog" not in out:
        raise Fail("no bltcy_usage_backlog in /bltcy/metrics")
    return out


def wait_written(port, timeout=15, inflight=1):
    """Poll the metrics until no more than inflight requests (the metrics
    request itself) are in flight and the usage backlog is 0, twice in a
    row (a request that ended before the first poll pushed its usage
    before that poll read the in-flight gauge; the second poll's backlog 0
    then means it is in the database). Returns the last reading."""
    deadline = time.time() + timeout
    hits, last = 0, None
    while time.time() < deadline:
        last = pool_metrics(port)
        if last["bltcy_usage_backlog"] == 0 and last.get("bltcy_inflight_requests") == inflight:
            hits += 1
            if hits == 2:
                return last
        else:
            hits = 0
        time.sleep(0.02)
    raise Fail("usage not written within %d s: %r" % (timeout, last))


def commits_answered(h, timeout=10):
    """Wait until no COMMIT is running on the server. A charge is visible
    to other connections while its COMMIT is still under way, before the
    charger has its answer; stopping the server in between loses that
    answer, and the charge's outcome is then unknown to the relay (it is
    given back). After this, a charge seen is one the relay knows of."""
    wait_for(lambda: h.sql("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST"
                           " WHERE INFO LIKE 'COMMIT%'")[0]["n"] == 0,
             timeout, "the COMMITs under way answered")


class CommitsHeld:
    """While entered, MariaDB holds every commit back (BACKUP STAGE
    BLOCK_COMMIT), as a disk that takes its time over a flush would;
    release() lets them go before the block ends."""

    def __init__(self, h):
        self.h = h
        self.db = None

    def __enter__(self):
        self.db = pymysql.connect(unix_socket=self.h.db_sock, user="root", password="", autocommit=True)
        self.db.cursor().execute("BACKUP STAGE START")
        self.db.cursor().execute("BACKUP STAGE BLOCK_COMMIT")
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        if self.db is not None:
            self.db.cursor().execute("BACKUP STAGE END")
            self.db.close()
            self.db = None


def request_in_thread(out, port, method, path, headers=(), body=None, timeout=60):
    """request() from a thread of its own, started: its Response goes to
    out["r"], or the exception it raised to out["e"]. Returns the thread."""
    def go():
        try:
            out["r"] = request(port, method, path, headers, body, timeout=timeout)
        except Exception as e:  # noqa: BLE001
            out["e"] = e
    th = threading.Thread(target=go)
    th.start()
    return th


def socket_accepts(path):
    """Is something listening on the Unix socket path?"""
    if not os.path.exists(path):
        return False
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.settimeout(1)
        c.connect(path)
        return True
    except OSError:
        return False
    finally:
        c.close()


CHARGER_COMM = "bltcy-charger"   # strict metering's charger process
TASKS_COMM = "bltcy-tasks"       # the task poller
OWN_COMMS = (CHARGER_COMM, TASKS_COMM)   # the pool's processes that are not workers


def own_process(pid, comm):
    """The child of pid named comm (one of OWN_COMMS), or None."""
    c = children_of(pid, comm=comm)
    return c[0] if len(c) == 1 else None


def children_of(pid, workers_only=False, comm=None):
    """The child processes of pid; with workers_only, not the pool's own
    processes (charger, task poller); with comm, only those so named."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        name = st[st.index("(") + 1:st.rindex(")")]
        if int(fields[1]) == pid and not (workers_only and name in OWN_COMMS) and \
                comm in (None, name):
            out.append(int(d))
    return sorted(out)


def pid_with_local_port(pids, local_port, remote_port):
    """The pid among pids holding the TCP socket 127.0.0.1:local_port ->
    127.0.0.1:remote_port (found through /proc/net/tcp and fd links)."""
    inode = None
    want_l = "0100007F:%04X" % local_port
    want_r = "0100007F:%04X" % remote_port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == want_l and parts[2] == want_r:
                inode = parts[9]
                break
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) == target:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


class StubClient:
    """The stub's control API."""

    def __init__(self, port):
        self.port = port

    def call(self, method, what, obj=None, timeout=30):
        body = json.dumps(obj).encode() if obj is not None else None
        hdrs = [("Content-Type", "application/json")] if body is not None else []
        r = request(self.port, method, "/__stub/" + what, hdrs, body, timeout=timeout)
        return r.status, json.loads(r.body)

    def reset(self):
        return self.call("POST", "reset")[1]

    def script(self, *rules, replace=False):
        return self.call("POST", "script", {"rules": list(rules), "replace": replace})[1]

    def requests(self, since=0):
        return self.call("GET", "requests?since=%d" % since)[1]

    def wait(self, path_re, count=1, timeout=10):
        from urllib.parse import quote
        st, found = self.call("GET", "wait?path=%s&count=%d&timeout=%s" % (quote(path_re, safe=""), count, timeout),
                              timeout=timeout + 10)
        return found if st == 200 else None

    def release(self, event):
        from urllib.parse import quote
        return self.call("POST", "release?event=%s" % quote(event, safe=""))[1]

    def connections(self):
        return self.call("GET", "connections")[1]

    def jobs(self):
        """The jobs of modes job_submit / job_poll, by id."""
        return self.call("GET", "jobs")[1]

    def set_job(self, job_id, state, reason=""):
        st, _ = self.call("POST", "job", {"id": job_id, "state": state, "reason": reason})
        return st == 200

    def matching(self, path_re):
        return [r for r in self.requests() if re.search(path_re, r["path"])]


def rec_body(rec):
    return base64.b64decode(rec["body_b64"]) if rec.get("body_b64") is not None else None


def rec_header(rec, name):
    vals = [v for k, v in rec["headers"] if k.lower() == name.lower()]
    return vals


def selfcheck():
    """Bring up MariaDB, the stub and both fronts against fcgi_probe.py
    instead of the relay and show what the probe received."""
    h = Harness()
    h.dir = tempfile.mkdtemp(prefix="bltcy-self-")
    atexit.register(h.stop)
    os.makedirs(os.path.join(h.dir, "www"))
    os.makedirs(os.path.join(h.dir, "tmp"))
    os.makedirs(os.path.join(h.dir, "nginx-tmp"))
    h.config_path = os.path.join(h.dir, "bltcy.env")
    h.db_sock = os.path.join(h.dir, "mysql.sock")
    h.relay_sock = os.path.join(h.dir, "relay.sock")
    t0 = time.time()
    h.init_db()
    h.start_db()
    print("mariadb ready in %.1fs" % (time.time() - t0))
    h.start_stub()
    print("stub on", h.stub_port, h.stub.connections())
    h.spawn("relay", [PY, os.path.join(HERE, "fcgi_probe.py"), h.relay_sock])
    wait_for(lambda: os.path.exists(h.relay_sock), 10, "probe socket")
    h.start_lighttpd()
    h.start_nginx()
    for name, port in (("lighttpd", h.lighttpd_port), ("nginx", h.nginx_port)):
        for path in (b"/kling/../x", b"/kling/%2e%2e/x?b=2&a=%20x&c", b"/kling/a%00b", b"/kling/a\x01b",
                     b"/kling/./x", b"/kling//x%7e"):
            r = request(port, "POST", path, [("X-Custom", "v"), ("Connection", "keep-alive, X-Hop"),
                                             ("X-Hop", "1"), ("Upgrade", "foo/1"), ("TE", "trailers"),
                                             ("Proxy-Authorization", "Basic x"), ("Keep-Alive", "timeout=5")],
                        b"{ }")
            if r.status == 200:
                p = r.json()["params"]
                print(name, path, r.status, p.get("REQUEST_URI"), p.get("QUERY_STRING"),
                      sorted(k for k in p if k.startswith("HTTP_")))
            else:
                print(name, path, r.status, r.body[:100])
        data = os.urandom(3 << 20)
        r = request(port, "POST", "/kling/up", [], data, chunked=True)
        print(name, "chunked upload", r.status, r.json()["body_len"], r.json()["params"].get("CONTENT_LENGTH"))
        c = Conn(port)
        c.send_request("GET", "/kling/stream")
        c.read_head()
        t0 = time.time()
        first = c.read_some()
        t1 = time.time() - t0
        rest = c.read_body()
        print(name, "stream first part after %.2fs: %r, then %r after %.2fs" % (t1, first, rest, time.time() - t0))
        c.close()
    h.stop()


if __name__ == "__main__":
    selfcheck()
