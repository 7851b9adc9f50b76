"""The admin tests' environment: the integration harness's private
MariaDB, stub upstream and relay pool, plus a lighttpd that serves /admin/
through mod_cgi (as lighttpd.conf.sample does) and every other path from
the relay. Also a small browser-like HTTP client that keeps cookies."""

import os
import re
import sys
import tempfile
import atexit
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "integration"))

import harness  # noqa: E402
from harness import Harness, request, free_port, BUILD  # noqa: E402,F401


class AdminEnv(Harness):
    def start(self, relay=True, stub=True):
        self.dir = tempfile.mkdtemp(prefix="bltcy-admin-")
        atexit.register(self.stop)
        for d in ("www", "tmp"):
            os.makedirs(os.path.join(self.dir, d))
        self.config_path = os.path.join(self.dir, "bltcy.env")
        self.db_sock = os.path.join(self.dir, "mysql.sock")
        self.relay_sock = os.path.join(self.dir, "relay.sock")
        self.log_file = os.path.join(self.dir, "relay.log")
        # the pool's task poller times out and refunds unfinished tasks:
        # the days-old tasks the pages are tested with stay as written
        self.extra_config.setdefault("TASK_TIMEOUT", str(30 * 86400))
        self.write_config()
        cgi = os.path.join(BUILD, "bltcy-admin.cgi")
        if not os.access(cgi, os.X_OK):
            raise harness.SetupError("%s is missing: run make first" % cgi)
        self.init_db()
        self.start_db()
        self.ctl("migrate")
        if stub or relay:
            self.start_stub()
        if relay:
            self.start_relay()
        self.port = free_port()
        conf = self.render_admin("lighttpd.conf.in", "lighttpd-admin.conf", PORT=self.port, DIR=self.dir, SOCK=self.relay_sock,
                                 CGI=os.path.abspath(cgi), CONFIG=self.config_path)
        self.spawn("lighttpd", ["lighttpd", "-D", "-f", conf])
        self.wait_port("lighttpd", self.port)

    def start_nginx_admin(self):
        """nginx + fcgiwrap in front of the same CGI (nginx.conf.sample's
        /admin/ block)."""
        for d in ("nginx-tmp",):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        sock = os.path.join(self.dir, "fcgiwrap.sock")
        self.spawn("fcgiwrap", ["fcgiwrap", "-c", "2", "-s", "unix:" + sock])
        harness.wait_for(lambda: os.path.exists(sock), 10, "fcgiwrap socket")
        self.nginx_port = free_port()
        conf = self.render_admin("nginx.conf.in", "nginx-admin.conf", PORT=self.nginx_port, DIR=self.dir,
                                 FCGIWRAP=sock, CGI=os.path.abspath(os.path.join(BUILD, "bltcy-admin.cgi")),
                                 CONFIG=self.config_path)
        self.spawn("nginx", ["nginx", "-p", self.dir, "-c", conf, "-g", "daemon off;"])
        self.wait_port("nginx", self.nginx_port)
        return self.nginx_port

    def render_admin(self, template, out, **kw):
        with open(os.path.join(HERE, template)) as f:
            text = f.read()
        for k, v in kw.items():
            text = text.replace("@%s@" % k, str(v))
        path = os.path.join(self.dir, out)
        with open(path, "w") as f:
            f.write(text)
        return path

    def cgi_log(self, n=40):
        return self.log_tail("lighttpd-admin-error.log", n)


class Browser:
    """Cookies, redirects not followed, forms posted urlencoded."""

    def __init__(self, port, lang="zh-CN,zh;q=0.9"):
        self.port = port
        self.cookies = {}
        self.lang = lang

    def cookie_header(self):
        return "; ".join("%s=%s" % kv for kv in self.cookies.items())

    def _store(self, r):
        for v in r.header_all("Set-Cookie"):
            nv = v.split(";", 1)[0]
            name, _, val = nv.partition("=")
            attrs = v.lower()
            if "max-age=0" in attrs or val == "":
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = val.strip()

    def get(self, path, headers=()):
        hdrs = [("Accept-Language", self.lang)] + list(headers)
        if self.cookies:
            hdrs.append(("Cookie", self.cookie_header()))
        r = request(self.port, "GET", path, hdrs)
        self._store(r)
        r.text = r.body.decode("utf-8", "replace")
        return r

    def post(self, path, fields, headers=(), raw=None):
        body = raw if raw is not None else urllib.parse.urlencode(fields).encode()
        hdrs = [("Accept-Language", self.lang)] + list(headers)
        if not any(k.lower() == "content-type" for k, _ in headers):
            hdrs.append(("Content-Type", "application/x-www-form-urlencoded"))
        if self.cookies:
            hdrs.append(("Cookie", self.cookie_header()))
        r = request(self.port, "POST", path, hdrs, body)
        self._store(r)
        r.text = r.body.decode("utf-8", "replace")
        return r

    @staticmethod
    def csrf_of(text):
        m = re.search(r'name="csrf" value="([^"]+)"', text)
        return m.group(1) if m else None

    def login(self, username, password):
        r = self.get("/admin/login")
        token = self.csrf_of(r.text)
        return self.post("/admin/login", {"csrf": token, "username": username, "password": password})

    def csrf(self, page="/admin/"):
        return self.csrf_of(self.get(page).text)
