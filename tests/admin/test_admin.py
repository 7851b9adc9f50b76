#!/usr/bin/python3
"""The admin pages over HTTP, through lighttpd (mod_cgi), against a private
MariaDB: login, sessions, CSRF, throttling, every form's success and
validation errors, and the rows they write. Ends with
`admin: N passed, M failed`.

    tests/admin/test_admin.py [-k NAME]... [--keep]
"""

import base64
import json
import hashlib
import hmac
import os
import re
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import runner  # noqa: E402
from runner import check, eq  # noqa: E402
from adminenv import AdminEnv, Browser, BUILD, request  # noqa: E402

S = runner.Suite("admin", timeout=120)
E = None            # the AdminEnv
ROOT_PW = "root-Pa55word"
XSS = "<script>alert(1)</script>"
QUOTED = "tok \"double\" 'single' <b>"


def start(keep):
    global E
    E = AdminEnv(keep=keep)
    E.start(relay=True, stub=True)
    E.ctl("add-admin", "root", ROOT_PW)
    return E


def root():
    b = Browser(E.port)
    r = b.login("root", ROOT_PW)
    eq(r.status, 303, "login status")
    return b


def one(q, args=()):
    rows = E.sql(q, args)
    return rows[0] if rows else None


def count(q, args=()):
    return list(E.sql(q, args)[0].values())[0]


def main_of(text):
    i = text.find("<main>")
    return text[i:] if i >= 0 else text


def no_raw(text, s, where):
    check(s not in text, "%s: raw %r in the page" % (where, s))


CHANNEL = {"name": "旧网关-统一", "type": "55", "base_url": "https://api.bltcy.ai",
           "key": "sk-old-gateway-key-0001", "status": "1", "priority": "0", "weight": "0",
           "group": "default", "models": "runway\npika\nkling\njimeng\nsuno",
           "setting": '{"PassthroughQuota": 1000}', "remark": "", "auto_ban": "1"}


def post_channel(b, path="/admin/channels/new", **kw):
    f = dict(CHANNEL)
    f.update(kw)
    f["csrf"] = b.csrf(path if "edit" not in path else "/admin/channels")
    return b.post(path, f)


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def user_stamp(uid, secret=None):
    """The stamp a session of user uid carries, as the CGI computes it:
    HMAC(HMAC(secret, "admin-stamp"), "<password hash>|<role>|<status>|<gen>")."""
    secret = secret or E.config["SESSION_SECRET"]
    u = one("SELECT password, role, status, (SELECT COALESCE(MAX(gen), 0) FROM bltcy_admin_epoch"
            " WHERE user_id=users.id) gen FROM users WHERE id=%s", (uid,))
    key = hmac.new(secret.encode(), b"admin-stamp", hashlib.sha256).digest()
    msg = ("%s|%d|%d|%d" % (u["password"], u["role"], u["status"], u["gen"])).encode()
    return b64u(hmac.new(key, msg, hashlib.sha256).digest())[:22]


def forge_cookie(uid, expiry, nonce="A" * 24, secret=None, stamp=None):
    """A session cookie signed with the test config's secret, as the CGI
    signs it: key = HMAC(secret, "admin-session")."""
    secret = secret or E.config["SESSION_SECRET"]
    stamp = stamp or user_stamp(uid)
    key = hmac.new(secret.encode(), b"admin-session", hashlib.sha256).digest()
    payload = b64u(("%d|%d|%s|%s" % (uid, expiry, nonce, stamp)).encode())
    sig = b64u(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return payload + "." + sig


def root_id():
    return one("SELECT id FROM users WHERE username='root'")["id"]


# ---------------------------------------------------------------------------
# headers, login, sessions

@S.test(fronts=False)
def test_security_headers():
    b = Browser(E.port)
    for path in ("/admin/login", "/admin/", "/admin/nope"):
        r = b.get(path)
        eq(r.header("X-Frame-Options"), "DENY", path + " X-Frame-Options")
        eq(r.header("X-Content-Type-Options"), "nosniff", path + " nosniff")
        csp = r.header("Content-Security-Policy") or ""
        check("default-src 'none'" in csp and "unsafe-inline" not in csp and "script-src" not in csp,
              "%s CSP: %r" % (path, csp))
    r = b.get("/admin/login")
    check("<script" not in r.text.lower() and " style=" not in r.text and "<style" not in r.text,
          "login page has inline script or style")
    r = b.get("/admin/static/admin.css")
    eq(r.status, 200, "css status")
    check(r.header("Content-Type", "").startswith("text/css"), "css type %r" % r.header("Content-Type"))
    eq(b.get("/admin/nope").status, 404, "unknown page")
    eq(b.get("/admin/logout").status, 405, "GET logout")


@S.test(fronts=False)
def test_login_required():
    b = Browser(E.port)
    for path in ("/admin/", "/admin/channels", "/admin/tokens", "/admin/users", "/admin/logs",
                 "/admin/channels/new", "/admin/channels/edit?id=1", "/admin/prices", "/admin/tasks"):
        r = b.get(path)
        eq(r.status, 303, path + " without a session")
        eq(r.header("Location"), "/admin/login", path + " Location")


@S.test(fronts=False)
def test_login_ok_cookie_flags():
    b = Browser(E.port)
    r = b.login("root", ROOT_PW)
    eq(r.status, 303, "login")
    eq(r.header("Location"), "/admin/", "redirect")
    sc = [c for c in r.header_all("Set-Cookie") if c.startswith("bltcy_session=")]
    eq(len(sc), 1, "one session cookie")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age="):
        check(attr in sc[0], "cookie lacks %s: %s" % (attr, sc[0]))
    check("Secure" not in sc[0], "Secure over plain HTTP")
    r = b.get("/admin/")
    eq(r.status, 200, "dashboard")
    check(">root<" in r.text, "username shown")
    eq(one("SELECT COUNT(*) n FROM bltcy_login_throttle")["n"], 0, "throttle rows after success")


@S.test(fronts=False)
def test_secure_cookie_over_https():
    """HTTPS=on (as a TLS front sets it): the cookies get Secure. The CGI is
    run directly with CGI variables, as any front server would."""
    env = dict(os.environ, BLTCY_CONFIG=E.config_path, REQUEST_METHOD="GET", PATH_INFO="/login",
               SCRIPT_NAME="/admin", HTTPS="on", REMOTE_ADDR="127.0.0.9", QUERY_STRING="")
    p = subprocess.run([os.path.join(BUILD, "bltcy-admin.cgi")], env=env, capture_output=True, timeout=30)
    head = p.stdout.split(b"\r\n\r\n", 1)[0].decode()
    m = re.search(r"Set-Cookie: (bltcy_pre=[^\r\n]*)", head)
    check(m and "Secure" in m.group(1), "pre-login cookie without Secure: %r" % head)
    nonce = m.group(1).split(";")[0].split("=", 1)[1]
    csrf = re.search(r'name="csrf" value="([^"]+)"', p.stdout.decode()).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "username": "root", "password": ROOT_PW}).encode()
    env.update(REQUEST_METHOD="POST", CONTENT_TYPE="application/x-www-form-urlencoded",
               CONTENT_LENGTH=str(len(body)), HTTP_COOKIE="bltcy_pre=" + nonce)
    p = subprocess.run([os.path.join(BUILD, "bltcy-admin.cgi")], env=env, input=body,
                       capture_output=True, timeout=30)
    head = p.stdout.split(b"\r\n\r\n", 1)[0].decode()
    check(head.startswith("Status: 303"), "login over https: %r" % head[:200])
    m = re.search(r"Set-Cookie: (bltcy_session=[^\r\n]*)", head)
    check(m and "; Secure" in m.group(1) and "HttpOnly" in m.group(1), "session cookie: %r" % head)


@S.test(fronts=False)
def test_login_wrong_password():
    E.sql("DELETE FROM bltcy_login_throttle")
    b = Browser(E.port)
    r = b.login("root", "wrong-password")
    eq(r.status, 401, "status")
    check("用户名或密码错误" in r.text, "message")
    check("bltcy_session" not in b.cookies, "session cookie after a failure")
    eq(b.get("/admin/").status, 303, "still logged out")
    E.sql("DELETE FROM bltcy_login_throttle")


@S.test(fronts=False)
def test_login_sql_injection():
    for user, pw in (("root' OR '1'='1", "x' OR '1'='1"), ("root'-- ", "anything"),
                     ("' OR 1=1 #", "' OR 1=1 #"), ("root\\", "' OR ''='"),
                     ("root", "' OR '1'='1")):
        E.sql("DELETE FROM bltcy_login_throttle")
        b = Browser(E.port)
        r = b.login(user, pw)
        eq(r.status, 401, "login %r/%r" % (user, pw))
        check("bltcy_session" not in b.cookies, "session cookie for %r" % user)
        eq(b.get("/admin/").status, 303, "dashboard after %r" % user)
    eq(count("SELECT COUNT(*) FROM users"), count("SELECT COUNT(*) FROM users"), "users intact")
    check(one("SELECT id FROM users WHERE username='root'") is not None, "root still there")
    E.sql("DELETE FROM bltcy_login_throttle")


@S.test(fronts=False)
def test_login_common_user_refused():
    E.sql("DELETE FROM bltcy_login_throttle")
    E.ctl("add-user", "plainuser", "--password", "plain-pass-1", "--role", "1")
    r = Browser(E.port).login("plainuser", "plain-pass-1")
    eq(r.status, 401, "role 1 user")
    E.sql("DELETE FROM bltcy_login_throttle")


@S.test(fronts=False)
def test_login_needs_csrf():
    b = Browser(E.port)
    r = b.post("/admin/login", {"username": "root", "password": ROOT_PW})
    eq(r.status, 403, "login without pre-login cookie and token")
    b.get("/admin/login")
    r = b.post("/admin/login", {"csrf": "x" * 43, "username": "root", "password": ROOT_PW})
    eq(r.status, 403, "login with a wrong token")
    check("bltcy_session" not in b.cookies, "session cookie")


@S.test(fronts=False)
def test_csrf_refused():
    b = root()
    n = count("SELECT COUNT(*) FROM channels")
    f = dict(CHANNEL, name="csrf-test")
    r = b.post("/admin/channels/new", f)
    eq(r.status, 403, "no token")
    check("CSRF" in r.text, "message")
    r = b.post("/admin/channels/new", dict(f, csrf="A" * 43))
    eq(r.status, 403, "forged token")
    other = root()     # another session's token is not this one's
    r = b.post("/admin/channels/new", dict(f, csrf=other.csrf()))
    eq(r.status, 403, "token of another session")
    r = b.post("/admin/logout", {})
    eq(r.status, 403, "logout without token")
    eq(count("SELECT COUNT(*) FROM channels"), n, "no channel written")


@S.test(fronts=False)
def test_session_tampered_or_expired():
    uid = root_id()
    now = int(time.time())
    good = forge_cookie(uid, now + 600)
    b = Browser(E.port)
    b.cookies["bltcy_session"] = good
    eq(b.get("/admin/").status, 200, "a correctly signed cookie (the test signs like the CGI)")
    payload, sig = good.split(".")
    cases = {
        "expired": forge_cookie(uid, now - 5),
        "other secret": forge_cookie(uid, now + 600, secret="not-the-secret"),
        "signature changed": payload + "." + ("B" if sig[0] != "B" else "C") + sig[1:],
        "payload changed": b64u(("%d|%d|%s|%s" % (uid + 1, now + 600, "A" * 24, user_stamp(uid))).encode())
        + "." + sig,
        "stamp of another state": forge_cookie(uid, now + 600, stamp="S" * 22),
        "no signature": payload,
        "garbage": "x.y",
    }
    for what, c in cases.items():
        b = Browser(E.port)
        b.cookies["bltcy_session"] = c
        r = b.get("/admin/channels")
        eq(r.status, 303, what)
        eq(r.header("Location"), "/admin/login", what + " Location")
    # a user disabled or demoted after login loses the session at once
    E.ctl("add-user", "tempadmin", "--password", "temp-pass-1", "--role", "10")
    tid = one("SELECT id FROM users WHERE username='tempadmin'")["id"]
    b = Browser(E.port)
    eq(b.login("tempadmin", "temp-pass-1").status, 303, "tempadmin login")
    eq(b.get("/admin/").status, 200, "tempadmin dashboard")
    E.sql("UPDATE users SET status=2 WHERE id=%s", (tid,))
    eq(b.get("/admin/").status, 303, "disabled user")
    E.sql("UPDATE users SET status=1, role=1 WHERE id=%s", (tid,))
    eq(b.get("/admin/").status, 303, "demoted user")


LOCKED = "登录失败次数过多，请 15 分钟后再试"
ADDR_LOCKED = "此地址登录失败次数过多，请 15 分钟后再试"


def cgi_run(addr, method, path="/login", cookie=None, body=None):
    """The admin CGI run directly, as a front server runs it, for a client
    at addr (REMOTE_ADDR): (status, header lines, page text)."""
    env = dict(os.environ, BLTCY_CONFIG=E.config_path, REQUEST_METHOD=method, PATH_INFO=path,
               SCRIPT_NAME="/admin", REMOTE_ADDR=addr, QUERY_STRING="",
               HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    if cookie:
        env["HTTP_COOKIE"] = cookie
    if body is not None:
        env.update(CONTENT_TYPE="application/x-www-form-urlencoded", CONTENT_LENGTH=str(len(body)))
    p = subprocess.run([os.path.join(BUILD, "bltcy-admin.cgi")], env=env, input=body or b"",
                       capture_output=True, timeout=30)
    head, _, text = p.stdout.partition(b"\r\n\r\n")
    head = head.decode()
    m = re.search(r"^Status: (\d+)", head, re.M)
    return (int(m.group(1)) if m else 200), head, text.decode("utf-8", "replace")


def login_from(addr, username, password):
    """A login from addr: the form (its pre-login cookie and CSRF token),
    then the post. (status, header lines, page text)."""
    _, head, text = cgi_run(addr, "GET")
    nonce = re.search(r"Set-Cookie: bltcy_pre=([^;\r\n]*)", head).group(1)
    body = urllib.parse.urlencode({"csrf": Browser.csrf_of(text), "username": username,
                                   "password": password}).encode()
    return cgi_run(addr, "POST", cookie="bltcy_pre=" + nonce, body=body)


def retry_after(head):
    m = re.search(r"^Retry-After: (\d+)", head, re.M)
    return int(m.group(1)) if m else None


def throttle_rows():
    return {x["k"]: x for x in E.sql("SELECT * FROM bltcy_login_throttle")}


@S.test(fronts=False)
def test_login_throttling():
    """Five wrong passwords for a name from one address lock that name from
    that address for 15 minutes (429, Retry-After, even with the right
    password); the same name from another address logs in, and the
    address itself stays open for other names."""
    E.sql("DELETE FROM bltcy_login_throttle")
    b = Browser(E.port)
    for i in range(5):
        r = b.login("root", "bad-%d" % i)
        eq(r.status, 401, "failure %d" % (i + 1))
    r = b.login("root", ROOT_PW)
    eq(r.status, 429, "right password while locked")
    check(LOCKED in r.text and ADDR_LOCKED not in r.text, "message: %r" % main_of(r.text)[:300])
    check(890 <= int(r.header("Retry-After")) <= 900, "Retry-After %r" % r.header("Retry-After"))
    check("bltcy_session" not in b.cookies, "no session while locked")
    # the name from an address that has not failed: not locked out
    st, head, text = login_from("127.0.0.9", "root", ROOT_PW)
    eq(st, 303, "root from another address: %s" % main_of(text)[:200])
    check("bltcy_session=" in head, "a session from another address")
    rows = throttle_rows()
    eq(sorted(rows), ["ip:127.0.0.1", "pair:127.0.0.1|root"], "throttle keys")
    eq((rows["ip:127.0.0.1"]["failures"], rows["pair:127.0.0.1|root"]["failures"]), (5, 5),
       "attempts counted (the refused one is not)")
    check(rows["pair:127.0.0.1|root"]["locked_until"] > time.time() + 800, "lock length")
    eq(rows["ip:127.0.0.1"]["locked_until"], 0, "the address is not locked")
    # another name from the address that failed
    E.ctl("add-user", "lockadmin", "--password", "lock-pass-1", "--role", "10")
    eq(Browser(E.port).login("lockadmin", "lock-pass-1").status, 303, "another name from 127.0.0.1")
    eq(throttle_rows()["ip:127.0.0.1"]["failures"], 5, "a right password is no failure")
    E.sql("DELETE FROM bltcy_login_throttle WHERE k='pair:127.0.0.1|root'")
    eq(b.login("root", ROOT_PW).status, 303, "after the lock is gone")
    check("pair:127.0.0.1|root" not in throttle_rows(), "a login frees its name")
    E.sql("DELETE FROM bltcy_login_throttle")


@S.test(fronts=False)
def test_login_address_cap():
    """One address guessing many names: its first 20 wrong attempts (four
    names, five each) are checked (401), then the address is locked for
    every name, also the right password of a name it never tried (429,
    "此地址..."); other addresses are not."""
    E.sql("DELETE FROM bltcy_login_throttle")
    addr = "10.20.30.40"
    for i in range(20):
        st, _, text = login_from(addr, "guess%d" % (i // 5), "wrong-%d" % i)
        eq(st, 401, "attempt %d" % (i + 1))
        check("用户名或密码错误" in text, "attempt %d: message" % (i + 1))
    st, head, text = login_from(addr, "root", ROOT_PW)
    eq(st, 429, "the right password from the capped address")
    check(ADDR_LOCKED in text, "message: %r" % main_of(text)[:300])
    check(890 <= retry_after(head) <= 900, "Retry-After %r" % retry_after(head))
    check("bltcy_session=" not in head, "no session from the capped address")
    rows = throttle_rows()
    eq(rows["ip:" + addr]["failures"], 20, "the address's count")
    check(rows["ip:" + addr]["locked_until"] > time.time() + 800, "the address's lock")
    eq(sorted((k, v["failures"]) for k, v in rows.items() if k.startswith("pair:")),
       [("pair:%s|guess%d" % (addr, n), 5) for n in range(4)] + [("pair:%s|root" % addr, 0)],
       "a count per name (the refused attempt counts for none)")
    check(all(rows["pair:%s|guess%d" % (addr, n)]["locked_until"] > time.time() + 800
              for n in range(4)), "each guessed name locked from the address")
    eq(Browser(E.port).login("root", ROOT_PW).status, 303, "root from 127.0.0.1")
    eq(login_from("10.20.30.41", "root", ROOT_PW)[0], 303, "root from a neighbour address")
    E.sql("DELETE FROM bltcy_login_throttle")


@S.test(fronts=False)
def test_logout():
    b = root()
    cookie = b.cookies["bltcy_session"]
    r = b.post("/admin/logout", {"csrf": b.csrf()})
    eq(r.status, 303, "logout")
    eq(r.header("Location"), "/admin/login", "to login")
    check(any(c.startswith("bltcy_session=;") and "Max-Age=0" in c for c in r.header_all("Set-Cookie")),
          "cookie cleared: %r" % r.header_all("Set-Cookie"))
    eq(b.get("/admin/").status, 303, "logged out")
    replay = Browser(E.port)
    replay.cookies["bltcy_session"] = cookie
    eq(replay.get("/admin/").status, 303, "the old cookie replayed")
    check(count("SELECT COUNT(*) FROM bltcy_admin_revoked") >= 1, "revoked row")


@S.test(fronts=False)
def test_login_lock_parallel():
    """30 wrong passwords for one name sent at once: every attempt is
    counted before its password is checked, so exactly 5 are checked (401)
    and 25 locked (429), and the address counts only the 5; then the
    right password is refused from that address while the lock lasts, and
    taken from another."""
    import threading
    E.sql("DELETE FROM bltcy_login_throttle")
    browsers = []
    for i in range(30):
        b = Browser(E.port)
        r = b.get("/admin/login")
        browsers.append((b, b.csrf_of(r.text)))
    results = [None] * 30
    go = threading.Barrier(30)

    def attempt(i):
        b, token = browsers[i]
        go.wait()
        r = b.post("/admin/login", {"csrf": token, "username": "root", "password": "wrong-%d" % i})
        results[i] = (r.status, "用户名或密码错误" in r.text, LOCKED in r.text)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    eq(sorted(x[0] for x in results), [401] * 5 + [429] * 25, "statuses")
    eq(sum(1 for x in results if x[0] == 401 and x[1]), 5, "wrong-password answers")
    eq(sum(1 for x in results if x[0] == 429 and x[2]), 25, "locked answers")
    rows = {x["k"]: x["failures"] for x in E.sql("SELECT k, failures FROM bltcy_login_throttle")}
    eq(rows, {"ip:127.0.0.1": 5, "pair:127.0.0.1|root": 5}, "attempts counted")
    b = Browser(E.port)
    r = b.login("root", ROOT_PW)
    eq(r.status, 429, "right password while locked")
    check("bltcy_session" not in b.cookies, "no session while locked")
    eq(login_from("127.0.0.9", "root", ROOT_PW)[0], 303, "from another address")
    E.sql("DELETE FROM bltcy_login_throttle")
    eq(b.login("root", ROOT_PW).status, 303, "after the lock is gone")
    E.sql("DELETE FROM bltcy_login_throttle")


def two_sessions(name, pw):
    a, b = Browser(E.port), Browser(E.port)
    eq(a.login(name, pw).status, 303, "first session")
    eq(b.login(name, pw).status, 303, "second session")
    eq(a.get("/admin/").status, 200, "first session works")
    eq(b.get("/admin/").status, 200, "second session works")
    return a, b


def user_fields(uid, **kw):
    u = one("SELECT display_name, role, quota, `group`, status FROM users WHERE id=%s", (uid,))
    f = {"id": str(uid), "password": "", "display_name": u["display_name"], "role": str(u["role"]),
         "quota": str(u["quota"]), "group": u["group"], "status": str(u["status"])}
    f.update(kw)
    return f


@S.test(fronts=False)
def test_sessions_end_on_password_role_status():
    E.sql("DELETE FROM bltcy_login_throttle")
    E.ctl("add-user", "sessadmin", "--password", "sess-pass-1", "--role", "10")
    uid = one("SELECT id FROM users WHERE username='sessadmin'")["id"]
    # the password changed in one session: the other is logged out, this
    # one goes on
    a, b = two_sessions("sessadmin", "sess-pass-1")
    r = a.post("/admin/users/edit", dict(user_fields(uid, password="sess-pass-2"), csrf=a.csrf()))
    eq(r.status, 303, "password changed")
    eq(b.get("/admin/").status, 303, "other session after the password change")
    eq(b.get("/admin/").header("Location"), "/admin/login", "other session sent to login")
    eq(a.get("/admin/").status, 200, "the session that changed it")
    # the same by new-api's admin or plain SQL: the stored hash changed
    E.sql("UPDATE users SET password=CONCAT(password, '') WHERE id=%s", (uid,))
    eq(a.get("/admin/").status, 200, "an unchanged hash keeps the session")
    # disabled by root, then enabled again: the old sessions stay ended
    a, b = two_sessions("sessadmin", "sess-pass-2")
    rb = root()
    eq(rb.post("/admin/users/edit", dict(user_fields(uid, status="2"), csrf=rb.csrf())).status, 303, "disable")
    eq(rb.post("/admin/users/edit", dict(user_fields(uid, status="1"), csrf=rb.csrf())).status, 303, "enable")
    eq(a.get("/admin/").status, 303, "first session after disable")
    eq(b.get("/admin/").status, 303, "second session after disable")
    # role lowered below 10 and raised again
    a, b = two_sessions("sessadmin", "sess-pass-2")
    eq(rb.post("/admin/users/edit", dict(user_fields(uid, role="1"), csrf=rb.csrf())).status, 303, "demote")
    eq(rb.post("/admin/users/edit", dict(user_fields(uid, role="10"), csrf=rb.csrf())).status, 303, "promote")
    eq(a.get("/admin/").status, 303, "first session after the role change")
    eq(b.get("/admin/").status, 303, "second session after the role change")
    eq(rb.get("/admin/").status, 200, "root's session untouched")
    eq(Browser(E.port).login("sessadmin", "sess-pass-2").status, 303, "a new login works")


LIM_ALLOW_IPS = 4096


def ip_list(nbytes, last):
    """Newline-separated entries of 10.*, none of them the client's, with
    `last` as the final line, exactly nbytes long."""
    lines, size, i = [], len(last), 0
    while nbytes - size > 40:
        one = "10.%d.%d.%d/32" % (i // 65536 % 256, i // 256 % 256, i % 256)
        lines.append(one)
        size += len(one) + 1
        i += 1
    rest = nbytes - size - 1        # one entry of this length, and its newline
    while rest > 18:
        lines.append("10.200.1.1")
        rest -= 11
    lines.append(pad_entry(rest))
    text = "\n".join(lines + [last])
    assert len(text) == nbytes, (len(text), nbytes)
    return text


def pad_entry(n):
    """An IPv4 entry of exactly n bytes (7 <= n <= 18) that is not 127.*."""
    for a in ("1.0.0.1", "10.0.0.1", "10.20.0.1", "10.200.0.1", "10.200.10.1", "10.200.100.1",
              "10.200.100.10", "10.200.100.100"):
        for suffix in ("", "/8", "/32"):
            if len(a + suffix) == n:
                return a + suffix
    raise ValueError(n)


@S.test(fronts=False)
def test_token_allow_ips_at_the_limit():
    """An allowed-IP list of LIM_ALLOW_IPS bytes, whose last line is the only
    entry that matches the client, is saved whole and the relay admits the
    client by that last line; one byte more is refused and nothing saved."""
    user = E.make_user()
    chan = E.make_channel(user["group"])
    b = root()
    ips = ip_list(LIM_ALLOW_IPS, "127.0.0.1/32")
    check(ips.splitlines()[-1] == "127.0.0.1/32" and ips.count("127.") == 1, "the list's shape")
    tname = "ips-at-limit"
    f = {"csrf": b.csrf("/admin/tokens/new"), "user": user["username"], "name": tname, "quota": "100000",
         "allow_ips": ips}
    r = b.post("/admin/tokens/new", f)
    eq(r.status, 200, "saved")
    m = re.search(r'id="new-key">sk-([0-9A-Za-z]{48})<', r.text)
    check(m, "key shown")
    t = one("SELECT id, allow_ips FROM tokens WHERE name=%s", (tname,))
    eq(len(t["allow_ips"]), LIM_ALLOW_IPS, "stored length")
    eq(t["allow_ips"], ips, "stored whole")
    r = request(E.port, "POST", "/kling/v1/allow-ips-limit", [("Authorization", "Bearer sk-" + m.group(1))], b"{}")
    eq(r.status, 200, "relay admits the client by the last line: %r" % r.body[:200])
    # the same list ending with another address is refused by the relay
    f2 = dict(f, csrf=b.csrf("/admin/tokens/new"), name="ips-at-limit-other",
              allow_ips=ips[:-len("127.0.0.1/32")] + "127.9.9.9/32")
    r = b.post("/admin/tokens/new", f2)
    eq(r.status, 200, "second token saved")
    k2 = re.search(r'id="new-key">sk-([0-9A-Za-z]{48})<', r.text).group(1)
    r = request(E.port, "POST", "/kling/v1/allow-ips-limit", [("Authorization", "Bearer sk-" + k2)], b"{}")
    eq(r.status, 403, "127.9.9.9/32 never matches 127.0.0.1")
    # one byte over: refused with the limit named, nothing written
    n = count("SELECT COUNT(*) FROM tokens")
    over = ip_list(LIM_ALLOW_IPS + 1, "127.0.0.1/32")
    r = b.post("/admin/tokens/new", dict(f, csrf=b.csrf("/admin/tokens/new"), name="ips-over", allow_ips=over))
    eq(r.status, 422, "one byte over")
    check("太长：IP 白名单 (最多 4096 字节)" in main_of(r.text), "message: %r" % main_of(r.text)[:400])
    eq(count("SELECT COUNT(*) FROM tokens"), n, "nothing saved")
    # CRLF line ends (what a browser sends) count as the stored newline
    r = b.post("/admin/tokens/new", dict(f, csrf=b.csrf("/admin/tokens/new"), name="ips-crlf",
                                          allow_ips=ips.replace("\n", "\r\n")))
    eq(r.status, 200, "CRLF list at the limit")
    eq(one("SELECT allow_ips FROM tokens WHERE name='ips-crlf'")["allow_ips"], ips, "stored with LF")
    # the edit form shows the whole list again
    page = b.get("/admin/tokens/edit?id=%d" % t["id"]).text
    check(ips in page and "127.0.0.1/32</textarea>" in page, "edit form shows the whole list")
    # the list shows every token's list whole, also after a long one
    page = b.get("/admin/tokens").text
    check(page.count(ips) == 2, "the list shows the long lists whole")
    E.sql("UPDATE tokens SET deleted_at=NOW() WHERE name LIKE 'ips-%%'")
    E.sql("DELETE FROM abilities WHERE channel_id=%s", (chan["id"],))
    E.sql("DELETE FROM channels WHERE id=%s", (chan["id"],))     # its key is plain


LONG_NAME = "名" * 191


@S.test(fronts=False)
def test_field_limits_chars():
    """Text columns count characters: 191 CJK characters (573 bytes) fit a
    varchar(191) name and are kept whole; 192 are refused, nothing saved."""
    b = root()
    r = post_channel(b, name=LONG_NAME, models="kling")
    eq(r.status, 303, "191 characters")
    eq(count("SELECT COUNT(*) FROM channels WHERE name=%s", (LONG_NAME,)), 1, "stored whole")
    cid = one("SELECT id FROM channels WHERE name=%s", (LONG_NAME,))["id"]
    check(LONG_NAME in b.get("/admin/channels/edit?id=%d" % cid).text, "edit form shows the whole name")
    eq(post_channel(b, name="after-long-name", models="kling").status, 303, "a channel after it")
    page = b.get("/admin/channels").text
    check("<td>%s</td>" % LONG_NAME in page and "<td>after-long-name</td>" in page,
          "the list shows both names whole")
    n = count("SELECT COUNT(*) FROM channels")
    r = post_channel(b, name=LONG_NAME + "名", models="kling")
    eq(r.status, 422, "192 characters")
    check("太长：渠道名称 (最多 191 个字符)" in main_of(r.text), "message %r" % main_of(r.text)[:300])
    eq(count("SELECT COUNT(*) FROM channels"), n, "nothing saved")
    r = post_channel(b, name="group-limit", group="g" * 65, models="kling")
    eq(r.status, 422, "65-byte group")
    check("太长：分组" in main_of(r.text), "group message %r" % main_of(r.text)[:300])
    eb = Browser(E.port, lang="en-US,en;q=0.9")
    eq(eb.login("root", ROOT_PW).status, 303, "login (en)")
    r = post_channel(eb, name=LONG_NAME + "x", models="kling")
    eq(r.status, 422, "en: too long")
    check("Too long: Channel name (at most 191 characters)" in main_of(r.text), "en message")
    # the command line: the same limits, nothing cut
    p = E.ctl("add-channel", "--name", LONG_NAME + "x", "--base-url", "https://api.bltcy.ai", "--key", "sk-x",
              check=False)
    check(p.returncode != 0 and "191" in p.stderr.decode(), "ctl refuses a long name: %r" % (p.stderr,))
    p = E.ctl("add-token", "--user", "root", "--ips", ip_list(LIM_ALLOW_IPS + 1, "127.0.0.1/32"), check=False)
    check(p.returncode != 0 and "4096" in p.stderr.decode(), "ctl refuses a long list: %r" % (p.stderr,))


@S.test(fronts=False)
def test_bad_bodies():
    b = root()
    t = b.csrf()
    r = b.post("/admin/channels/new", None, raw=b"csrf=" + t.encode() + b"&name=" + b"x" * (70 * 1024))
    eq(r.status, 413, "body over 64 KiB")
    r = b.post("/admin/channels/new", None, raw=b"csrf=%zz", headers=[])
    eq(r.status, 400, "bad escape")
    r = b.post("/admin/channels/new", None, raw=b'{"csrf":"x"}',
               headers=[("Content-Type", "application/json")])
    check(r.status in (403, 415), "json body: %d" % r.status)


# ---------------------------------------------------------------------------
# channels

@S.test(fronts=False)
def test_channel_add():
    b = root()
    r = post_channel(b, name="seed-channel", base_url="https://api.bltcy.ai/",
                     models="Kling\n\nRUNWAY\n", group="default,vip", key="sk-plain-secret-XYZ-1234\n")
    eq(r.status, 303, "save")
    eq(r.header("Location"), "/admin/channels?ok=4", "notice of the removed slash")
    page = b.get(r.header("Location")).text
    check("已自动去掉 Base URL 末尾的 /" in page, "slash notice shown")
    check("seed-channel" in page, "in the list")
    c = one("SELECT * FROM channels WHERE name='seed-channel'")
    eq(c["type"], 55, "type")
    eq(c["base_url"], "https://api.bltcy.ai", "base_url")
    eq(c["models"], "kling,runway", "models")
    eq(c["group"], "default,vip", "group")
    eq(c["status"], 1, "status")
    check(c["key"].startswith("enc:v1:") and "plain-secret" not in c["key"], "key sealed: %r" % c["key"])
    ab = E.sql("SELECT `group`, model, enabled FROM abilities WHERE channel_id=%s ORDER BY 1, 2", (c["id"],))
    eq([(a["group"], a["model"], a["enabled"]) for a in ab],
       [("default", "kling", 1), ("default", "runway", 1), ("vip", "kling", 1), ("vip", "runway", 1)],
       "abilities")
    edit = b.get("/admin/channels/edit?id=%d" % c["id"]).text
    check("plain-secret" not in edit and c["key"] not in edit, "key shown on the edit page")
    check("已加密保存" in edit, "sealed note")


def key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@S.test(fronts=False)
def test_channel_keys_shown():
    """The channels page shows each key of a channel: its open jobs
    (bltcy_places, open + granted) against the channel's MaxTasks, and
    whether it is disabled and why (channel_info as new-api keeps it, by
    line index: a blank line counts, as new-api counts lines; a channel
    of one key: its status and other_info's status_reason), the reason
    escaped."""
    b = root()
    ka, kb, kc = "kA-0123456789abcd", "kB-0123456789efgh", "kC-0123456789ijkl"
    info = {"is_multi_key": True, "multi_key_size": 4,
            "multi_key_status_list": {"1": 3, "3": 2},
            "multi_key_disabled_reason": {"1": "上游返回 401：<b>bad</b>", "3": "by hand"},
            "multi_key_disabled_time": {"1": 1796600000, "3": 1796600001}}
    cid = E.sql("INSERT INTO channels (type, `key`, status, name, base_url, models, `group`, setting, channel_info)"
                " VALUES (55, %s, 1, 'keys-shown', 'https://api.bltcy.ai', 'kling', 'default',"
                " '{\"PassthroughQuota\": 1000, \"MaxTasks\": 10}', %s)",
                ("\n%s\n%s\n\n%s\n" % (ka, kb, kc), __import__("json").dumps(info)))
    one_id = E.sql("INSERT INTO channels (type, `key`, status, name, base_url, models, `group`, other_info)"
                   " VALUES (55, 'kD-0123456789mnop', 3, 'one-key', 'https://api.bltcy.ai', 'kling', 'default',"
                   " '{\"status_reason\": \"上游返回 403，含关键词「permission denied」\", \"status_time\": 0}')")
    E.sql("INSERT INTO bltcy_places (scope, id, key_hash, open, granted) VALUES ('k', %s, %s, 2, 1),"
          " ('k', %s, %s, 4, 0), ('u', %s, %s, 9, 9)",
          (cid, key_hash(ka), cid, key_hash(kc), cid, key_hash(kb)))
    try:
        page = b.get("/admin/channels").text
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1796600000))
        row = re.search(r'<td class="keys">(.*?)</td>', page[page.find(">%d</td>" % cid):]).group(1)
        eq(row, '<div class="key">#1 <span class="mono">kA-••••abcd</span> <span class="num">3 / 10</span>'
                ' <span class="badge on">启用</span></div>'
                '<div class="key">#2 <span class="mono">kB-••••efgh</span> <span class="num">0 / 10</span>'
                ' <span class="badge bad">自动禁用</span> <small class="why">上游返回 401：&lt;b&gt;bad&lt;/b&gt; · '
                + when + '</small></div>'
                '<div class="key">#4 <span class="mono">kC-••••ijkl</span> <span class="num">4 / 10</span>'
                ' <span class="badge off">禁用</span> <small class="why">by hand · '
                + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1796600001)) + '</small></div>',
           "keys of the channel")
        row = re.search(r'<td class="keys">(.*?)</td>', page[page.find(">%d</td>" % one_id):]).group(1)
        eq(row, '<div class="key">#1 <span class="mono">kD-••••mnop</span> <span class="num">0 / 不限</span>'
                ' <span class="badge bad">自动禁用</span> <small class="why">上游返回 403，含关键词「permission denied」'
                '</small></div>', "the key of a one-key channel")
    finally:
        E.sql("DELETE FROM bltcy_places WHERE id=%s", (cid,))
        E.sql("DELETE FROM channels WHERE id IN (%s, %s)", (cid, one_id))


BAD_CHANNELS = [
    ({"base_url": "https://api.bltcy.ai/kling"}, "不能包含路径"),
    ({"base_url": "https://api.bltcy.ai/runway/v1"}, "不能包含路径"),
    ({"base_url": "https://api.bltcy.ai?x=1"}, "不能包含查询参数"),
    ({"base_url": "https://api.bltcy.ai#frag"}, "不能包含片段"),
    ({"base_url": "https://user:pw@api.bltcy.ai"}, "不能包含用户信息"),
    ({"base_url": "api.bltcy.ai"}, "必须以 http:// 或 https:// 开头"),
    ({"base_url": "ftp://api.bltcy.ai"}, "必须以 http:// 或 https:// 开头"),
    ({"base_url": "https://api.bltcy.ai//"}, "不能包含路径"),
    ({"models": "runwayml"}, "请使用 runway"),
    ({"models": "kling-v1-6"}, "请使用基础名称 kling"),
    ({"models": "kling\nrunway-gen3"}, "请使用基础名称 runway"),
    ({"models": "midjourney"}, "未知的模型"),
    ({"models": ""}, "不能为空：模型映射"),
    ({"setting": "{PassthroughQuota: 1000}"}, "设置必须是 JSON 对象"),
    ({"setting": '{"PassthroughQuota": "1000"}'}, "PassthroughQuota"),
    ({"setting": '{"PassthroughQuota": 1.5}'}, "PassthroughQuota"),
    ({"setting": "[1000]"}, "设置必须是 JSON 对象"),
    ({"name": ""}, "不能为空：渠道名称"),
    ({"key": ""}, "不能为空：密钥"),
    ({"key": " \n \n"}, "不能为空：密钥"),
    ({"priority": "high"}, "格式无效：优先级"),
    ({"weight": "-1"}, "格式无效：权重"),
    ({"status": "7"}, "格式无效：状态"),
    ({"group": "a b!"}, "分组只能包含"),
    ({"type": "1"}, "格式无效：渠道类型"),
    ({"name": "bad\x01name"}, "格式无效：渠道名称"),
]


@S.test(fronts=False)
def test_channel_validation_errors():
    b = root()
    n = count("SELECT COUNT(*) FROM channels")
    for fields, msg in BAD_CHANNELS:
        r = post_channel(b, **dict({"name": "must-not-exist"}, **fields))
        eq(r.status, 422, "status for %r" % fields)
        body = main_of(r.text)
        check(msg in body, "message %r for %r in %r" % (msg, fields, body[:600]))
        if "base_url" in fields and "http" in fields["base_url"]:
            check("✅ 正确：https://api.bltcy.ai" in body and "❌ 错误：https://api.bltcy.ai/kling" in body,
                  "the seed's examples for %r" % fields)
    eq(count("SELECT COUNT(*) FROM channels"), n, "nothing written")
    eq(count("SELECT COUNT(*) FROM channels WHERE name='must-not-exist'"), 0, "no row")


@S.test(fronts=False)
def test_channel_edit_keeps_key():
    b = root()
    r = post_channel(b, name="edit-me", key="sk-edit-key-1111", models="kling")
    eq(r.status, 303, "create")
    c = one("SELECT id, `key` FROM channels WHERE name='edit-me'")
    f = dict(CHANNEL, id=str(c["id"]), name="edited", key="", models="pika\nsuno", priority="5", weight="3")
    f["csrf"] = b.csrf("/admin/channels/edit?id=%d" % c["id"])
    r = b.post("/admin/channels/edit", f)
    eq(r.status, 303, "edit")
    c2 = one("SELECT * FROM channels WHERE id=%s", (c["id"],))
    eq(c2["key"], c["key"], "key kept")
    eq((c2["name"], c2["models"], c2["priority"], c2["weight"]), ("edited", "pika,suno", 5, 3), "edited")
    ab = E.sql("SELECT model, priority, weight FROM abilities WHERE channel_id=%s ORDER BY model", (c["id"],))
    eq([(a["model"], a["priority"], a["weight"]) for a in ab], [("pika", 5, 3), ("suno", 5, 3)], "abilities")
    # a key disabled by line: entering the keys again clears it, the rest stays
    E.sql("UPDATE channels SET channel_info=%s WHERE id=%s",
          ('{"is_multi_key": true, "multi_key_status_list": {"0": 3},'
           ' "multi_key_disabled_reason": {"0": "401"}, "multi_key_disabled_time": {"0": 1}}', c["id"]))
    r = b.post("/admin/channels/edit", f)
    eq(r.status, 303, "edit, key kept")
    eq(json.loads(one("SELECT channel_info FROM channels WHERE id=%s", (c["id"],))["channel_info"])
       ["multi_key_status_list"], {"0": 3}, "key kept: its lines' state kept")
    f.update(key="sk-new-key-2222")
    r = b.post("/admin/channels/edit", f)
    eq(r.status, 303, "new key")
    k = one("SELECT `key` FROM channels WHERE id=%s", (c["id"],))["key"]
    check(k.startswith("enc:v1:") and k != c["key"], "new sealed key")
    eq(json.loads(one("SELECT channel_info FROM channels WHERE id=%s", (c["id"],))["channel_info"]),
       {"is_multi_key": True}, "keys entered again: no line disabled")
    eq(b.get("/admin/channels/edit?id=999999").status, 404, "missing channel")


@S.test(fronts=False)
def test_channel_toggle_delete():
    b = root()
    eq(post_channel(b, name="toggle-me", models="jimeng").status, 303, "create")
    cid = one("SELECT id FROM channels WHERE name='toggle-me'")["id"]
    r = b.post("/admin/channels/toggle", {"csrf": b.csrf(), "id": cid, "status": 2})
    eq(r.status, 303, "disable")
    eq(one("SELECT status FROM channels WHERE id=%s", (cid,))["status"], 2, "status 2")
    eq(one("SELECT enabled FROM abilities WHERE channel_id=%s", (cid,))["enabled"], 0, "ability disabled")
    check("状态已更新" in b.get(r.header("Location")).text, "flash")
    b.post("/admin/channels/toggle", {"csrf": b.csrf(), "id": cid, "status": 1})
    eq(one("SELECT status FROM channels WHERE id=%s", (cid,))["status"], 1, "status 1")
    eq(one("SELECT enabled FROM abilities WHERE channel_id=%s", (cid,))["enabled"], 1, "ability enabled")
    r = b.post("/admin/channels/delete", {"csrf": b.csrf(), "id": cid})
    eq(r.status, 303, "delete")
    eq(count("SELECT COUNT(*) FROM channels WHERE id=%s", (cid,)), 0, "row gone")
    eq(count("SELECT COUNT(*) FROM abilities WHERE channel_id=%s", (cid,)), 0, "abilities gone")


@S.test(fronts=False)
def test_channel_test_button():
    b = root()
    E.stub.reset()
    eq(post_channel(b, name="stub-channel", base_url="http://127.0.0.1:%d" % E.stub_port,
                    key="sk-stub-key-3333\nsk-second-key").status, 303, "create")
    cid = one("SELECT id FROM channels WHERE name='stub-channel'")["id"]
    r = b.post("/admin/channels/test", {"csrf": b.csrf(), "id": cid})
    eq(r.status, 200, "test")
    m = re.search(r'class="msg (ok|err)"[^>]*>([^<]*)<', r.text)
    check(m and "HTTP 状态" in m.group(2) and " ms" in m.group(2), "result %r" % (m and m.group(2)))
    reqs = E.stub.requests()
    check(reqs, "stub saw no request")
    auth = [v for k, v in reqs[-1]["headers"] if k.lower() == "authorization"]
    eq(auth, ["Bearer sk-stub-key-3333"], "first key sent")
    check(one("SELECT test_time FROM channels WHERE id=%s", (cid,))["test_time"] > 0, "test_time")
    # an address nobody listens on
    port = runner_free_port()
    eq(post_channel(b, name="dead-channel", base_url="http://127.0.0.1:%d" % port).status, 303, "create")
    cid = one("SELECT id FROM channels WHERE name='dead-channel'")["id"]
    r = b.post("/admin/channels/test", {"csrf": b.csrf(), "id": cid})
    check("连接失败" in r.text, "connection failure shown")


def edit_channel(b, cid, **kw):
    c = one("SELECT * FROM channels WHERE id=%s", (cid,))
    f = dict(CHANNEL, id=str(cid), name=c["name"], base_url=c["base_url"], key="", models=c["models"],
             group=c["group"], setting=c["setting"] or "")
    f.update(kw)
    f["csrf"] = b.csrf("/admin/channels/edit?id=%d" % cid)
    return b.post("/admin/channels/edit", f)


@S.test(fronts=False)
def test_channel_key_follows_host():
    """Editing with an empty key keeps the stored key only while the key
    would go where it went: a new scheme, host, port or proxy needs the key
    entered again, and until then nothing is saved and no key is sent."""
    b = root()
    E.stub.reset()
    base = "http://127.0.0.1:%d" % E.stub_port
    eq(post_channel(b, name="key-follows", base_url=base, key="sk-stub-follow-1", models="kling").status,
       303, "create")
    c = one("SELECT id, `key`, base_url, setting FROM channels WHERE name='key-follows'")
    cid = c["id"]
    for what, kw in (("host", {"base_url": "http://127.0.0.2:%d" % E.stub_port}),
                     ("port", {"base_url": "http://127.0.0.1:%d" % (E.stub_port + 1)}),
                     ("scheme", {"base_url": "https://127.0.0.1:%d" % E.stub_port}),
                     ("name host", {"base_url": "http://localhost:%d" % E.stub_port}),
                     ("proxy", {"setting": '{"PassthroughQuota": 1000, "proxy": "http://127.0.0.1:9"}'})):
        r = edit_channel(b, cid, **kw)
        eq(r.status, 422, what)
        check("请重新填写密钥" in main_of(r.text), "%s: message %r" % (what, main_of(r.text)[:300]))
        now = one("SELECT `key`, base_url, setting FROM channels WHERE id=%s", (cid,))
        eq((now["key"], now["base_url"], now["setting"]), (c["key"], c["base_url"], c["setting"]),
           what + ": nothing saved")
    # the same endpoint written differently, and other fields: the key is kept
    r = edit_channel(b, cid, base_url=base.upper().replace("HTTP://", "http://") + "/", priority="3")
    eq(r.status, 303, "same endpoint, trailing slash, other fields")
    now = one("SELECT `key`, base_url, priority FROM channels WHERE id=%s", (cid,))
    eq((now["key"], now["priority"]), (c["key"], 3), "key kept, priority saved")
    # with the key entered again the move is saved
    r = edit_channel(b, cid, base_url="http://localhost:%d" % E.stub_port, key="sk-stub-follow-2")
    eq(r.status, 303, "new host with the key")
    eq(one("SELECT base_url FROM channels WHERE id=%s", (cid,))["base_url"], "http://localhost:%d" % E.stub_port,
       "new host saved")
    # the test button sends the key only to the one place it was entered for
    r = b.post("/admin/channels/test", {"csrf": b.csrf(), "id": cid})
    eq(r.status, 200, "test")
    auth = [v for rq in E.stub.requests() for k, v in rq["headers"] if k.lower() == "authorization"]
    eq(auth, ["Bearer sk-stub-follow-2"], "keys the upstream saw")
    eb = Browser(E.port, lang="en-US,en;q=0.9")
    eq(eb.login("root", ROOT_PW).status, 303, "login (en)")
    r = edit_channel(eb, cid, base_url="http://127.0.0.3:%d" % E.stub_port)
    eq(r.status, 422, "en")
    check("changed: enter the key again" in main_of(r.text), "en message")


FORBIDDEN_URLS = ["http://169.254.169.254", "http://169.254.1.2:8080", "http://[fe80::1]", "http://0.0.0.0",
                  "http://[::]", "http://0:8080", "http://2852039166", "http://[::ffff:169.254.169.254]"]


@S.test(fronts=False)
def test_channel_forbidden_addresses():
    """Link-local, metadata and unspecified addresses, and names that
    resolve to them, are refused at entry (form and CLI), also as a proxy;
    a stored one (written by other software) is refused by the test button
    before any key is sent; loopback and LAN hosts are allowed and labelled."""
    b = root()
    n = count("SELECT COUNT(*) FROM channels")
    for url in FORBIDDEN_URLS:
        r = post_channel(b, name="forbidden", base_url=url, models="kling")
        eq(r.status, 422, url)
        check("不允许" in main_of(r.text) and "169.254.0.0/16" in main_of(r.text),
              "%s: message %r" % (url, main_of(r.text)[:300]))
        p = E.ctl("add-channel", "--name", "forbidden", "--base-url", url, "--key", "sk-x", check=False)
        check(p.returncode != 0 and "不允许" in p.stderr.decode(), "ctl %s: %r" % (url, p.stderr))
    for setting, msg in (('{"proxy": "http://169.254.169.254:3128"}', "不允许"),
                         ('{"proxy": "socks5h://[fe80::2]:1080"}', "不允许"),
                         ('{"proxy": "ftp://proxy.lan:21"}', "代理 (proxy) 必须是"),
                         ('{"proxy": "http://proxy.lan:3128/path"}', "代理 (proxy) 必须是"),
                         ('{"proxy": "http://proxy.lan:99999"}', "代理 (proxy) 必须是"),
                         ('{"proxy": "proxy.lan:3128"}', "代理 (proxy) 必须是")):
        r = post_channel(b, name="forbidden", setting=setting, models="kling")
        eq(r.status, 422, setting)
        check(msg in main_of(r.text), "%s: message %r" % (setting, main_of(r.text)[:300]))
    p = E.ctl("add-channel", "--name", "forbidden", "--base-url", "https://api.bltcy.ai", "--key", "sk-x",
              "--setting", '{"proxy": "http://169.254.169.254"}', check=False)
    check(p.returncode != 0 and "不允许" in p.stderr.decode(), "ctl proxy: %r" % p.stderr)
    eq(count("SELECT COUNT(*) FROM channels"), n, "nothing written")
    # allowed, and marked in the list
    for name, url, setting in (("lan-gw", "http://10.1.2.3:8080", '{"proxy": "socks5://user:pw@127.0.0.1:1080"}'),
                               ("host-gw", "http://localhost:3001", ""),
                               ("pub-gw", "https://8.8.8.8", '{"proxy": "https://192.168.1.9"}')):
        eq(post_channel(b, name=name, base_url=url, setting=setting, models="kling").status, 303, name)
    page = b.get("/admin/channels").text

    def row(name):
        m = re.search(r"<tr><td class=\"num\">\d+</td><td>%s</td>.*?</tr>" % name, page)
        return m.group(0) if m else ""
    check(">内网<" in row("lan-gw"), "LAN label: %r" % row("lan-gw"))
    check(">本机<" in row("host-gw"), "loopback label: %r" % row("host-gw"))
    check(">内网<" not in row("pub-gw") and ">本机<" not in row("pub-gw"), "public: no label")
    eb = Browser(E.port, lang="en-US,en;q=0.9")
    eq(eb.login("root", ROOT_PW).status, 303, "login (en)")
    check(">LAN<" in eb.get("/admin/channels").text, "LAN label in English")
    # a forbidden address written by other software: no request, no key
    E.stub.reset()
    cid = E.sql("INSERT INTO channels (type, `key`, status, name, base_url, models, `group`)"
                " VALUES (55, 'sk-never-sent', 1, 'meta', 'http://169.254.169.254', 'kling', 'default')")
    page = b.get("/admin/channels").text
    r = b.post("/admin/channels/test", {"csrf": b.csrf(), "id": cid})
    eq(r.status, 200, "test of a stored forbidden address")
    check("不允许" in r.text and "HTTP 状态" not in r.text, "refused before connecting")
    E.sql("DELETE FROM channels WHERE id=%s", (cid,))


def runner_free_port():
    from harness import free_port
    return free_port()


@S.test(fronts=False)
def test_plain_key_from_newapi():
    """A channel written by new-api (plain key) is listed, masked, and tested
    with its key."""
    E.stub.reset()
    cid = E.sql("INSERT INTO channels (type, `key`, status, name, base_url, models, `group`, priority)"
                " VALUES (55, 'sk-newapi-plain-key-9876', 1, 'from-newapi', %s, 'kling', 'default', 0)",
                ("http://127.0.0.1:%d" % E.stub_port,))
    b = root()
    page = b.get("/admin/channels/edit?id=%d" % cid).text
    no_raw(page, "sk-newapi-plain-key-9876", "edit page")
    check("sk-••••9876" in page, "masked key")
    b.post("/admin/channels/test", {"csrf": b.csrf(), "id": cid})
    auth = [v for k, v in E.stub.requests()[-1]["headers"] if k.lower() == "authorization"]
    eq(auth, ["Bearer sk-newapi-plain-key-9876"], "plain key used")


@S.test(fronts=False)
def test_no_plain_keys_in_table():
    b = root()
    eq(post_channel(b, name="secret-check", key="sk-VERY-SECRET-0042").status, 303, "create")
    for c in E.sql("SELECT name, `key` FROM channels WHERE name <> 'from-newapi'"):
        check(c["key"].startswith("enc:v1:"), "channel %r stored %r" % (c["name"], c["key"][:12]))
    dump = subprocess.run(["mariadb-dump", "--no-defaults", "-S", E.db_sock, "-uroot", "bltcy", "channels"],
                          capture_output=True, timeout=60).stdout
    check(b"VERY-SECRET" not in dump, "plain key in a dump of the table")


# ---------------------------------------------------------------------------
# escaping

@S.test(fronts=False)
def test_xss_escaped_everywhere():
    b = root()
    eq(post_channel(b, name=XSS, remark=XSS, group="default").status, 303, "channel")
    cid = one("SELECT id FROM channels WHERE name=%s", (XSS,))["id"]
    r = b.post("/admin/tokens/new", {"csrf": b.csrf(), "user": "root", "name": QUOTED, "quota": "100"})
    eq(r.status, 200, "token")
    tid = one("SELECT id FROM tokens WHERE name=%s", (QUOTED,))["id"]
    E.sql("INSERT INTO logs (user_id, created_at, type, content, username, token_name, model_name, quota,"
          " channel_id, token_id, ip) VALUES (1, UNIX_TIMESTAMP(), 5, %s, 'root', %s, 'kling_passthrough',"
          " 0, %s, %s, '127.0.0.1')", (XSS, QUOTED, cid, tid))
    pages = {"token created": r.text}
    for path in ("/admin/", "/admin/channels", "/admin/channels/edit?id=%d" % cid, "/admin/tokens",
                 "/admin/tokens/edit?id=%d" % tid, "/admin/logs",
                 "/admin/logs?token=" + urllib.parse.quote(QUOTED)):
        pages[path] = b.get(path).text
    for where, text in pages.items():
        no_raw(text, XSS, where)
        no_raw(text, QUOTED, where)
        no_raw(text, 'tok "double"', where)
    check("&lt;script&gt;alert(1)&lt;/script&gt;" in pages["/admin/channels"], "escaped name in the list")
    check("tok &quot;double&quot; &#39;single&#39; &lt;b&gt;" in pages["/admin/tokens"], "escaped token name")
    check("&lt;script&gt;" in pages["/admin/"], "escaped in recent errors")
    check("tok &quot;double&quot;" in pages["/admin/logs?token=" + urllib.parse.quote(QUOTED)],
          "filter value escaped")
    # the filter really matched the quoted name
    check(re.search(r'id="total-rows">1<', pages["/admin/logs?token=" + urllib.parse.quote(QUOTED)]),
          "filtered by the quoted name")
    # clean up so the dashboard counts stay simple
    E.sql("DELETE FROM logs WHERE token_id=%s", (tid,))


# ---------------------------------------------------------------------------
# tokens

@S.test(fronts=False)
def test_token_add_shows_key_once():
    b = root()
    r = b.post("/admin/tokens/new", {"csrf": b.csrf(), "user": "root", "name": "video-app", "quota": "250000",
                                     "expires": "2031-05-06T07:08", "model_limits": "Kling\nrunway",
                                     "allow_ips": "127.0.0.1\n10.0.0.0/8, ::1"})
    eq(r.status, 200, "create")
    m = re.search(r'id="new-key">sk-([0-9A-Za-z]{48})<', r.text)
    check(m, "full key shown")
    key = m.group(1)
    t = one("SELECT * FROM tokens WHERE `key`=%s", (key,))
    check(t is not None, "row with the shown key")
    eq((t["name"], t["remain_quota"], t["unlimited_quota"], t["status"]), ("video-app", 250000, 0, 1), "row")
    eq(t["expired_time"], int(time.mktime(time.strptime("2031-05-06 07:08", "%Y-%m-%d %H:%M"))), "expiry")
    eq((t["model_limits_enabled"], t["model_limits"]), (1, "kling,runway"), "model limits")
    eq(t["allow_ips"], "127.0.0.1\n10.0.0.0/8\n::1", "allowed IPs")
    eq(t["user_id"], root_id(), "owner")
    lst = b.get("/admin/tokens").text
    no_raw(lst, key, "token list")
    check("sk-%s…%s" % (key[:4], key[-4:]) in lst, "masked key in the list")
    no_raw(b.get("/admin/tokens/edit?id=%d" % t["id"]).text, key, "edit page")
    r = b.post("/admin/tokens/new", {"csrf": b.csrf(), "user": "root", "name": "unl", "unlimited": "1"})
    eq(r.status, 200, "unlimited")
    t = one("SELECT * FROM tokens WHERE name='unl'")
    eq((t["unlimited_quota"], t["expired_time"], t["model_limits_enabled"], t["allow_ips"]), (1, -1, 0, ""),
       "unlimited token")


BAD_TOKENS = [
    ({"user": "nobody-here"}, "用户不存在"),
    ({"name": ""}, "不能为空：名称"),
    ({"quota": "-5"}, "格式无效：剩余额度"),
    ({"quota": "lots"}, "格式无效：剩余额度"),
    ({"expires": "tomorrow"}, "格式无效：过期时间"),
    ({"expires": "2031-13-01T00:00"}, "格式无效：过期时间"),
    ({"model_limits": "kling-v1"}, "请使用基础名称 kling"),
    ({"model_limits": "runwayml"}, "请使用 runway"),
    ({"allow_ips": "300.1.1.1"}, "IP 白名单格式无效：300.1.1.1"),
    ({"allow_ips": "10.0.0.0/33"}, "IP 白名单格式无效"),
    ({"allow_ips": "example.com"}, "IP 白名单格式无效"),
]


@S.test(fronts=False)
def test_token_validation_errors():
    b = root()
    n = count("SELECT COUNT(*) FROM tokens")
    for fields, msg in BAD_TOKENS:
        f = {"csrf": b.csrf(), "user": "root", "name": "bad-token", "quota": "10"}
        f.update(fields)
        r = b.post("/admin/tokens/new", f)
        eq(r.status, 422, "status for %r" % fields)
        check(msg in main_of(r.text), "message %r for %r" % (msg, fields))
        check('id="new-key"' not in r.text, "no key shown")
    eq(count("SELECT COUNT(*) FROM tokens"), n, "nothing written")


@S.test(fronts=False)
def test_token_edit_toggle_delete():
    b = root()
    r = b.post("/admin/tokens/new", {"csrf": b.csrf(), "user": "root", "name": "to-edit", "quota": "5"})
    eq(r.status, 200, "create")
    tid = one("SELECT id FROM tokens WHERE name='to-edit'")["id"]
    r = b.post("/admin/tokens/edit", {"csrf": b.csrf(), "id": tid, "name": "edited-token", "quota": "777",
                                      "expires": "", "model_limits": "suno", "allow_ips": "192.168.1.0/24"})
    eq(r.status, 303, "edit")
    t = one("SELECT * FROM tokens WHERE id=%s", (tid,))
    eq((t["name"], t["remain_quota"], t["model_limits"], t["model_limits_enabled"], t["allow_ips"],
        t["expired_time"]), ("edited-token", 777, "suno", 1, "192.168.1.0/24", -1), "edited")
    r = b.post("/admin/tokens/edit", {"csrf": b.csrf(), "id": tid, "name": "edited-token", "quota": "x"})
    eq(r.status, 422, "bad edit")
    b.post("/admin/tokens/toggle", {"csrf": b.csrf(), "id": tid, "status": 2})
    eq(one("SELECT status FROM tokens WHERE id=%s", (tid,))["status"], 2, "disabled")
    b.post("/admin/tokens/toggle", {"csrf": b.csrf(), "id": tid, "status": 1})
    eq(one("SELECT status FROM tokens WHERE id=%s", (tid,))["status"], 1, "enabled")
    r = b.post("/admin/tokens/delete", {"csrf": b.csrf(), "id": tid})
    eq(r.status, 303, "delete")
    check(one("SELECT deleted_at FROM tokens WHERE id=%s", (tid,))["deleted_at"] is not None, "soft delete")
    check("edited-token" not in b.get("/admin/tokens").text, "gone from the list")
    eq(b.get("/admin/tokens/edit?id=%d" % tid).status, 404, "deleted token not editable")


# ---------------------------------------------------------------------------
# users

@S.test(fronts=False)
def test_users_add_edit():
    b = root()
    r = b.post("/admin/users/new", {"csrf": b.csrf(), "username": "ops1", "password": "ops1-password",
                                    "display_name": "Ops One", "role": "10", "quota": "12345",
                                    "group": "vip", "status": "1"})
    eq(r.status, 303, "create")
    u = one("SELECT * FROM users WHERE username='ops1'")
    eq((u["role"], u["quota"], u["group"], u["status"], u["display_name"]), (10, 12345, "vip", 1, "Ops One"), "row")
    check(u["password"].startswith("$2"), "bcrypt hash")
    E.sql("DELETE FROM bltcy_login_throttle")
    ops = Browser(E.port)
    eq(ops.login("ops1", "ops1-password").status, 303, "new admin logs in")
    r = b.post("/admin/users/edit", {"csrf": b.csrf(), "id": u["id"], "display_name": "Ops", "role": "1",
                                     "quota": "99", "group": "default", "status": "2"})
    eq(r.status, 303, "edit")
    u = one("SELECT * FROM users WHERE username='ops1'")
    eq((u["role"], u["quota"], u["group"], u["status"]), (1, 99, "default", 2), "edited")
    eq(ops.get("/admin/").status, 303, "demoted and disabled: session refused")
    r = b.post("/admin/users/edit", {"csrf": b.csrf(), "id": u["id"], "role": "10", "quota": "99",
                                     "group": "default", "status": "1", "password": "ops1-new-password"})
    eq(r.status, 303, "password change")
    E.sql("DELETE FROM bltcy_login_throttle")
    eq(Browser(E.port).login("ops1", "ops1-new-password").status, 303, "new password works")
    check("ops1" in b.get("/admin/users").text, "listed")


BAD_USERS = [
    ({"username": "root"}, "用户名已存在"),
    ({"password": "short"}, "密码至少 8 个字符"),
    ({"username": ""}, "不能为空：用户名"),
    ({"role": "1000"}, "格式无效：角色"),
    ({"quota": "-1"}, "格式无效：额度"),
    ({"group": "a b!"}, "格式无效：分组"),
    ({"group": "a,b"}, "格式无效：分组"),
    ({"status": "3"}, "格式无效：状态"),
]


@S.test(fronts=False)
def test_users_validation_errors():
    b = root()
    n = count("SELECT COUNT(*) FROM users")
    for fields, msg in BAD_USERS:
        f = {"csrf": b.csrf(), "username": "newuser", "password": "long-enough-1", "role": "1",
             "quota": "0", "group": "default", "status": "1"}
        f.update(fields)
        r = b.post("/admin/users/new", f)
        eq(r.status, 422, "status for %r" % fields)
        check(msg in main_of(r.text), "message %r for %r" % (msg, fields))
    eq(count("SELECT COUNT(*) FROM users"), n, "nothing written")


@S.test(fronts=False)
def test_admin_cannot_grant_root():
    b = root()
    b.post("/admin/users/new", {"csrf": b.csrf(), "username": "admin10", "password": "admin10-pass",
                                "role": "10", "quota": "0", "group": "default", "status": "1"})
    E.sql("DELETE FROM bltcy_login_throttle")
    a = Browser(E.port)
    eq(a.login("admin10", "admin10-pass").status, 303, "login")
    r = a.post("/admin/users/new", {"csrf": a.csrf(), "username": "sneaky", "password": "sneaky-pass",
                                    "role": "100", "quota": "0", "group": "default", "status": "1"})
    eq(r.status, 422, "grant root")
    eq(count("SELECT COUNT(*) FROM users WHERE username='sneaky'"), 0, "no row")
    r = a.post("/admin/users/edit", {"csrf": a.csrf(), "id": root_id(), "role": "1", "quota": "0",
                                     "group": "default", "status": "2"})
    eq(r.status, 422, "edit root")
    eq(one("SELECT role, status FROM users WHERE username='root'")["role"], 100, "root untouched")


# ---------------------------------------------------------------------------
# limits (bltcy_limits): bltcy-ctl limit, the token and user pages

def limit_rows():
    return [(x["scope"], x["id"], x["in_flight"], x["tasks"], x["rpm"])
            for x in E.sql("SELECT scope, id, in_flight, tasks, rpm FROM bltcy_limits ORDER BY scope, id")]


def ctl_out(*args):
    p = E.ctl(*args, check=False)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@S.test(fronts=False)
def test_ctl_limits():
    E.sql("DELETE FROM bltcy_limits")
    E.ctl("add-user", "lim-user", "--password", "lim-user-pass")
    key = E.ctl("add-token", "--user", "lim-user", "--name", "lim tok").stdout.decode().strip()
    check(re.match(r"^sk-[0-9A-Za-z]{48}$", key), "token key %r" % key)
    tid = one("SELECT id FROM tokens WHERE `key`=%s", (key[3:],))["id"]
    uid = one("SELECT id FROM users WHERE username='lim-user'")["id"]
    tok = "token id=%d name=lim tok user=lim-user" % tid
    usr = "user id=%d name=lim-user" % uid

    rc, out, err = ctl_out("limit", "set", "--token", key, "--in-flight", "5", "--rpm", "60")
    eq((rc, out, err), (0, tok + " in_flight=5 tasks=0 rpm=60\n", ""), "set on a token")
    eq(limit_rows(), [("t", tid, 5, 0, 60)], "row")
    # a limit not given keeps its value; the key may come without sk-
    rc, out, err = ctl_out("limit", "set", "--token", key[3:], "--tasks", "7")
    eq((rc, out), (0, tok + " in_flight=5 tasks=7 rpm=60\n"), "set one more")
    rc, out, err = ctl_out("limit", "set", "--user", "lim-user", "--tasks", "3", "--in-flight", "0")
    eq((rc, out), (0, usr + " in_flight=0 tasks=3 rpm=0\n"), "set on a user")
    eq(limit_rows(), [("t", tid, 5, 7, 60), ("u", uid, 0, 3, 0)], "rows")
    rc, out, err = ctl_out("limit", "list")
    eq((rc, out, err), (0, usr + " in_flight=0 tasks=3 rpm=0\n" + tok + " in_flight=5 tasks=7 rpm=60\n", ""),
       "list: users, then tokens")
    check(key[3:] not in out, "no key in what is printed")

    bad = [
        (("limit", "set", "--in-flight", "1"), 1, "bltcy-ctl: limit: name a token (--token sk-KEY) or a user "
         "(--user NAME), one of the two\n"),
        (("limit", "set", "--token", key, "--user", "lim-user", "--rpm", "1"), 1, None),
        (("limit", "set", "--user", "lim-user"), 1, "bltcy-ctl: limit set: give at least one of --in-flight N, "
         "--tasks N, --rpm N (0: no limit)\n"),
        (("limit", "set", "--user", "lim-user", "--rpm", "-1"), 1,
         "bltcy-ctl: --rpm: expected an integer from 0 to 2147483647\n"),
        (("limit", "set", "--user", "lim-user", "--tasks", "2147483648"), 1,
         "bltcy-ctl: --tasks: expected an integer from 0 to 2147483647\n"),
        (("limit", "set", "--user", "lim-user", "--in-flight", "ten"), 1,
         "bltcy-ctl: --in-flight: expected an integer from 0 to 2147483647\n"),
        (("limit", "set", "--token", "sk-" + "Z" * 48, "--rpm", "1"), 1,
         "bltcy-ctl: --token: no such token (deleted, or a wrong key)\n"),
        (("limit", "set", "--user", "nobody-at-all", "--rpm", "1"), 1, "bltcy-ctl: --user: no such user\n"),
        (("limit", "set", "--user"), 2, None),
        (("limit",), 2, None),
        (("limit", "frobnicate"), 2, None),
        (("limit", "list", "extra"), 2, None),
    ]
    for args, code, msg in bad:
        rc, out, err = ctl_out(*args)
        eq(rc, code, "exit status of %r" % (args,))
        eq(out, "", "nothing on stdout for %r" % (args,))
        if msg is not None:
            eq(err, msg, "message for %r" % (args,))
        check("Z" * 48 not in err and key[3:] not in err, "no key in the message for %r" % (args,))
    check("limit set (--token sk-KEY | --user NAME)" in ctl_out("limit")[2], "usage names the command")
    eq(limit_rows(), [("t", tid, 5, 7, 60), ("u", uid, 0, 3, 0)], "refused commands wrote nothing")

    # every limit 0: no row is left
    rc, out, err = ctl_out("limit", "set", "--user", "lim-user", "--tasks", "0")
    eq((rc, out), (0, usr + " in_flight=0 tasks=0 rpm=0\n"), "all none")
    eq(limit_rows(), [("t", tid, 5, 7, 60)], "the user's row removed")
    rc, out, err = ctl_out("limit", "delete", "--user", "lim-user")
    eq((rc, out, err), (1, "", "bltcy-ctl: limit delete: no limits are set there\n"), "delete: nothing set")
    # a deleted token's row is listed as such
    E.sql("UPDATE tokens SET deleted_at = NOW() WHERE id=%s", (tid,))
    eq(ctl_out("limit", "list")[1], "token id=%d name= user= in_flight=5 tasks=7 rpm=60 (deleted)\n" % tid,
       "list: a deleted token")
    rc, out, err = ctl_out("limit", "delete", "--token", key)
    eq((rc, err), (1, "bltcy-ctl: --token: no such token (deleted, or a wrong key)\n"), "deleted token")
    E.sql("UPDATE tokens SET deleted_at = NULL WHERE id=%s", (tid,))
    rc, out, err = ctl_out("limit", "delete", "--token", key)
    eq((rc, out, err), (0, tok + ": limits removed\n", ""), "delete")
    eq(limit_rows(), [], "no rows")


def limit_inputs(text):
    """name -> value of the three limit inputs of a form."""
    return {n: v for n, v in re.findall(r'<input name="(in_flight|tasks|rpm)" type="number" min="0" '
                                       r'max="2147483647" value="(-?\d+)">', text)}


def limit_cells(text, name):
    """The limits cell of the list row that names name."""
    for row in re.findall(r"<tr>.*?</tr>", main_of(text), re.S):
        if "<td>%s</td>" % name in row:
            m = re.search(r'<td class="limits">(.*?)</td>', row)
            return m.group(1) if m else None
    return None


BAD_LIMITS = [
    ({"in_flight": "-1"}, "格式无效：同时进行的请求 (0 … 2147483647)"),
    ({"tasks": "many"}, "格式无效：未完成的任务 (0 … 2147483647)"),
    ({"rpm": "2147483648"}, "格式无效：每分钟请求数 (0 … 2147483647)"),
]


@S.test(fronts=False)
def test_token_limits_page():
    b = root()
    E.sql("DELETE FROM bltcy_limits")
    eq(limit_inputs(b.get("/admin/tokens/new").text), {"in_flight": "0", "tasks": "0", "rpm": "0"},
       "new token form: no limits")
    r = b.post("/admin/tokens/new", {"csrf": b.csrf(), "user": "root", "name": "lim-page", "quota": "5",
                                     "in_flight": "4", "tasks": "", "rpm": "120"})
    eq(r.status, 200, "create with limits")
    tid = one("SELECT id FROM tokens WHERE name='lim-page'")["id"]
    eq(limit_rows(), [("t", tid, 4, 0, 120)], "row of the new token")
    r = b.post("/admin/tokens/new", {"csrf": b.csrf(), "user": "root", "name": "lim-none", "quota": "5",
                                     "in_flight": "0", "tasks": "0", "rpm": ""})
    eq(r.status, 200, "create without limits")
    eq(limit_rows(), [("t", tid, 4, 0, 120)], "no row for a token without limits")
    edit = "/admin/tokens/edit?id=%d" % tid
    eq(limit_inputs(b.get(edit).text), {"in_flight": "4", "tasks": "0", "rpm": "120"}, "edit form shows them")
    eq(limit_cells(b.get("/admin/tokens").text, "lim-page"), "同时进行的请求 4<br>每分钟请求数 120",
       "list shows them")
    base = {"id": tid, "name": "lim-page", "quota": "5"}
    r = b.post("/admin/tokens/edit", dict(base, csrf=b.csrf(), in_flight="4", tasks="9", rpm=""))
    eq(r.status, 303, "edit")
    eq(limit_rows(), [("t", tid, 4, 9, 0)], "edited: an empty field is none")
    r = b.post("/admin/tokens/edit", dict(base, csrf=b.csrf()))
    eq(r.status, 303, "edit without the fields")
    eq(limit_rows(), [("t", tid, 4, 9, 0)], "fields not sent keep their values")
    for fields, msg in BAD_LIMITS:
        r = b.post("/admin/tokens/edit", dict(base, csrf=b.csrf(), **fields))
        eq(r.status, 422, "status for %r" % fields)
        check(msg in main_of(r.text), "message %r for %r" % (msg, fields))
        r = b.post("/admin/tokens/new", dict(base, csrf=b.csrf(), user="root", name="lim-bad", **fields))
        eq(r.status, 422, "new: status for %r" % fields)
        check('id="new-key"' not in r.text, "no key shown")
    eq(count("SELECT COUNT(*) FROM tokens WHERE name='lim-bad'"), 0, "no token written")
    r = b.post("/admin/tokens/edit", dict(base, in_flight="1", tasks="1", rpm="1"))
    eq(r.status, 403, "no CSRF token")
    eq(limit_rows(), [("t", tid, 4, 9, 0)], "refused edits wrote nothing")
    r = b.post("/admin/tokens/edit", dict(base, csrf=b.csrf(), in_flight="0", tasks="0", rpm="0"))
    eq(r.status, 303, "clear")
    eq(limit_rows(), [], "no row left")
    eq(limit_cells(b.get("/admin/tokens").text, "lim-page"), '<span class="muted">不限</span>', "list: none")


@S.test(fronts=False)
def test_user_limits_page():
    b = root()
    E.sql("DELETE FROM bltcy_limits")
    f = {"username": "lim-u1", "password": "lim-u1-password", "role": "1", "quota": "0",
         "group": "default", "status": "1"}
    r = b.post("/admin/users/new", dict(f, csrf=b.csrf(), in_flight="2", tasks="3", rpm="30"))
    eq(r.status, 303, "create with limits")
    uid = one("SELECT id FROM users WHERE username='lim-u1'")["id"]
    eq(limit_rows(), [("u", uid, 2, 3, 30)], "row")
    edit = "/admin/users/edit?id=%d" % uid
    eq(limit_inputs(b.get(edit).text), {"in_flight": "2", "tasks": "3", "rpm": "30"}, "edit form shows them")
    eq(limit_cells(b.get("/admin/users").text, "lim-u1"), "同时进行的请求 2<br>未完成的任务 3<br>每分钟请求数 30",
       "list shows them")
    base = {"id": uid, "role": "1", "quota": "0", "group": "default", "status": "1"}
    r = b.post("/admin/users/edit", dict(base, csrf=b.csrf(), in_flight="", tasks="3", rpm="31"))
    eq(r.status, 303, "edit")
    eq(limit_rows(), [("u", uid, 0, 3, 31)], "edited")
    for fields, msg in BAD_LIMITS:
        r = b.post("/admin/users/edit", dict(base, csrf=b.csrf(), **fields))
        eq(r.status, 422, "status for %r" % fields)
        check(msg in main_of(r.text), "message %r for %r" % (msg, fields))
    eq(b.post("/admin/users/edit", dict(base, rpm="1")).status, 403, "no CSRF token")
    eq(limit_rows(), [("u", uid, 0, 3, 31)], "refused edits wrote nothing")
    # nobody sets the limits of a user of their role or above
    b.post("/admin/users/new", {"csrf": b.csrf(), "username": "lim-admin", "password": "lim-admin-pass",
                                "role": "10", "quota": "0", "group": "default", "status": "1"})
    E.sql("DELETE FROM bltcy_login_throttle")
    a = Browser(E.port)
    eq(a.login("lim-admin", "lim-admin-pass").status, 303, "login")
    r = a.post("/admin/users/edit", {"csrf": a.csrf(), "id": root_id(), "role": "100", "quota": "0",
                                     "group": "default", "status": "1", "rpm": "1"})
    eq(r.status, 422, "limits of root")
    eq(limit_rows(), [("u", uid, 0, 3, 31)], "root has none")
    r = b.post("/admin/users/edit", dict(base, csrf=b.csrf(), in_flight="0", tasks="0", rpm="0"))
    eq(r.status, 303, "clear")
    eq(limit_rows(), [], "no row left")


# ---------------------------------------------------------------------------
# logs and dashboard

def seed_logs():
    now = int(time.time())
    rows = []
    for i in range(120):
        rows.append((now - 60 * i, 2, "alice" if i % 2 else "bob", "tokA" if i % 3 else "tokB",
                     ("kling" if i % 4 else "runway") + "_passthrough", 10 + i % 7, 900 + i % 3))
    rows.append((now - 3600 * 30, 2, "alice", "tokA", "suno_passthrough", 5000, 900))
    rows.append((now - 30, 5, "alice", "tokA", "kling_passthrough", 0, 901))
    for r in rows:
        E.sql("INSERT INTO logs (user_id, created_at, type, content, username, token_name, model_name, quota,"
              " use_time, channel_id, token_id, ip, other) VALUES (1, %s, %s, 'Bltcy透传模式（POST /kling/v1），消费配额',"
              " %s, %s, %s, %s, 1, %s, 1, '127.0.0.1', '')", r)
    return rows


@S.test(fronts=False)
def test_logs_filters_pagination_totals():
    E.sql("DELETE FROM logs")
    rows = seed_logs()
    b = root()

    def totals(q):
        t = b.get("/admin/logs" + q).text
        n = int(re.search(r'id="total-rows">(\d+)<', t).group(1))
        qsum = int(re.search(r'id="total-quota">(-?\d+)<', t).group(1))
        return n, qsum, t.count("<tr><td class=\"mono\">")

    def want(pred):
        sel = [r for r in rows if pred(r)]
        return len(sel), sum(r[5] for r in sel)

    eq(totals("")[:2], want(lambda r: True), "all")
    eq(totals("?user=alice")[:2], want(lambda r: r[2] == "alice"), "user")
    eq(totals("?token=tokB")[:2], want(lambda r: r[3] == "tokB"), "token")
    eq(totals("?service=runway")[:2], want(lambda r: r[4] == "runway_passthrough"), "service")
    eq(totals("?channel=901")[:2], want(lambda r: r[6] == 901), "channel")
    eq(totals("?type=5")[:2], want(lambda r: r[1] == 5), "type error")
    eq(totals("?type=2&user=bob&service=kling")[:2],
       want(lambda r: r[1] == 2 and r[2] == "bob" and r[4] == "kling_passthrough"), "combined")
    frm = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() - 3600 * 31))
    to = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() - 3600 * 29))
    eq(totals("?from=%s&to=%s" % (frm, to))[:2], (1, 5000), "time range")
    n, _, shown = totals("")
    eq(shown, 50, "rows on page 1")
    eq(totals("?page=3")[2], n - 100, "rows on page 3")
    t = b.get("/admin/logs?user=alice").text
    check("page=2" in t and "下一页" in t, "next link keeps filters")
    check(re.search(r'href="/admin/logs\?user=alice&amp;token=&amp;service=&amp;channel=0&amp;type=0'
                    r'&amp;from=&amp;to=&amp;page=2"', t), "pager link")
    r = b.get("/admin/logs?from=yesterday")
    check("格式无效：开始时间" in r.text, "bad time filter")


@S.test(fronts=False)
def test_dashboard():
    if count("SELECT COUNT(*) FROM logs WHERE type=2") == 0:
        seed_logs()
    b = root()
    check("已被自动禁用的渠道" not in b.get("/admin/").text, "no auto-disabled line when none")
    cid = E.sql("INSERT INTO channels (type, `key`, status, name, base_url, models, `group`)"
                " VALUES (55, 'k', 3, 'auto-banned-one', 'http://127.0.0.1:9', 'kling', 'x')")
    t = b.get("/admin/").text
    check("已被自动禁用的渠道" in t and "auto-banned-one" in t, "auto-disabled channel listed")
    E.sql("DELETE FROM channels WHERE id=%s", (cid,))
    check('<svg id="chart-requests"' in t and '<svg id="chart-quota"' in t, "two charts")
    bars = re.findall(r'<rect x="\d+" y="\d+" width="\d+" height="\d+" fill="#[0-9a-f]+"><title>([a-z]+): (\d+)</title>',
                      t)
    check(bars, "bars drawn")
    req_svg = t[t.index('id="chart-requests"'):t.index('id="chart-quota"')]
    drawn = sum(int(n) for _, n in re.findall(r"<title>([a-z]+): (\d+)</title>", req_svg))
    eq(drawn, count("SELECT COUNT(*) FROM logs WHERE type=2 AND created_at >= %s",
                    ((int(time.time()) // 3600 - 23) * 3600,)), "requests drawn")
    check("最近错误" in t and "Bltcy透传模式" in t, "recent errors listed")
    check("24 小时请求数" in t, "counts")


# ---------------------------------------------------------------------------
# prices

RULE = {"service": "kling", "model": "kling-v1-6", "field": "duration", "value": "10",
        "multiplier": "1.5", "surcharge": "200", "note": "ten seconds <b>x</b>"}


def post_rule(b, **kw):
    f = dict(RULE)
    f.update(kw)
    f["csrf"] = b.csrf("/admin/prices")
    return b.post("/admin/prices/new", f)


def rule_rows():
    return E.sql("SELECT service, model, field, value, CAST(multiplier AS CHAR) m, surcharge, note"
                 " FROM bltcy_price_rules ORDER BY id")


@S.test(fronts=False)
def test_price_rule_add():
    E.sql("DELETE FROM bltcy_price_rules")
    b = root()
    r = post_rule(b)
    eq(r.status, 303, "add: %s" % main_of(r.text)[:300])
    eq(r.header("Location"), "/admin/prices?ok=1", "Location")
    rows = rule_rows()
    eq([(x["service"], x["model"], x["field"], x["value"], x["m"], x["surcharge"], x["note"]) for x in rows],
       [("kling", "kling-v1-6", "duration", "10", "1.5000", 200, "ten seconds <b>x</b>")], "row as typed")
    t = main_of(b.get("/admin/prices?ok=1").text)
    check("已保存" in t, "saved notice")
    rules = t[t.index('id="rules"'):]
    for s in ("kling-v1-6", "duration=10", "x1.5", "+200", "ten seconds &lt;b&gt;x&lt;/b&gt;"):
        check(s in rules, "%r in the rules table" % s)
    no_raw(t, "<b>x</b>", "rule note")
    # a rule for every request, any model; the defaults (x1, +0) where empty
    r = post_rule(b, model="", field="", value="", multiplier="", surcharge="50", note="")
    eq(r.status, 303, "rule without a field: %s" % main_of(r.text)[:300])
    x = rule_rows()[-1]
    eq((x["model"], x["field"], x["value"], x["m"], x["surcharge"]), ("", "", "", "1.0000", 50), "defaults")
    t = main_of(b.get("/admin/prices").text)
    check("每个请求" in t and "任意" in t, "every request / any model shown")


BAD_RULES = [
    ({"multiplier": "1.23456"}, "倍率必须是 0 到 1000 之间的数字，最多 4 位小数，如 1.5"
     "（Multiplier: a number from 0 to 1000 with at most 4 decimals, e.g. 1.5）"),
    ({"multiplier": "-1"}, "Multiplier: a number from 0 to 1000 with at most 4 decimals, e.g. 1.5"),
    ({"multiplier": "1000.5"}, "Multiplier: a number from 0 to 1000 with at most 4 decimals, e.g. 1.5"),
    ({"multiplier": "x2"}, "Multiplier: a number from 0 to 1000 with at most 4 decimals, e.g. 1.5"),
    ({"surcharge": "-5"}, "Surcharge: a whole number of quota from 0 to 1000000000000, e.g. 500"),
    ({"surcharge": "1.5"}, "Surcharge: a whole number of quota from 0 to 1000000000000, e.g. 500"),
    ({"service": "midjourney"}, "服务必须是已配置的服务之一"),
    ({"model": "kling v1"}, "Model: empty for any, or 1 to 64 of letters, digits and . _ : / -"),
    ({"field": "input..mode"}, "Field: empty for every request, or dotted names"),
    ({"field": "du-ration"}, "Field: empty for every request, or dotted names"),
    ({"field": "", "value": "10"}, "Value: empty when there is no field"),
    ({"value": ""}, "Value: 1 to 64 printable ASCII characters, e.g. 10 or pro"),
    ({"multiplier": "1", "surcharge": "0"}, "A rule must change the price: a multiplier other than 1 or a surcharge above 0"),
    ({"multiplier": "", "surcharge": ""}, "A rule must change the price"),
]


@S.test(fronts=False)
def test_price_rule_refused():
    E.sql("DELETE FROM bltcy_price_rules")
    b = root()
    for fields, msg in BAD_RULES:
        r = post_rule(b, **fields)
        eq(r.status, 422, "status for %r" % fields)
        body = main_of(r.text)
        m = re.search(r'<div class="msg err" role="alert">(.*?)</div>', body, re.S)
        check(m and msg in m.group(1), "message %r for %r: %r" % (msg, fields, m and m.group(1)))
        form = body[body.index('id="add-rule"'):]
        for k, v in dict(RULE, **fields).items():
            if k == "service":
                continue
            want = v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            check(re.search(r'name="%s"[^>]* value="%s"' % (k, re.escape(want)), form),
                  "%s kept as typed for %r" % (k, fields))
        svc = fields.get("service", "kling")
        check('<option value="%s" selected>' % svc in form or svc not in ("kling", "runway"),
              "service kept for %r" % fields)
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 0, "no row written")
    # the same service, model, field and value twice: a message, not a SQL error
    eq(post_rule(b).status, 303, "first")
    r = post_rule(b, multiplier="3")
    eq(r.status, 422, "duplicate")
    check("a rule for this service, model, field and value exists" in main_of(r.text), "duplicate message")
    check("Duplicate entry" not in r.text, "no SQL error shown")
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 1, "one row")
    # English
    en = Browser(E.port, lang="en-US,en;q=0.9")
    en.login("root", ROOT_PW)
    t = en.get("/admin/prices").text
    for s in ("Base prices by service", "Price rules", "Add rule", "Multiplier", "Surcharge"):
        check(s in t, "English label %r" % s)


@S.test(fronts=False)
def test_price_rule_delete():
    E.sql("DELETE FROM bltcy_price_rules")
    b = root()
    eq(post_rule(b, note="to delete").status, 303, "add")
    rid = one("SELECT id FROM bltcy_price_rules")["id"]
    t = b.get("/admin/prices").text
    check('action="/admin/prices/delete"' in t and 'name="id" value="%d"' % rid in t, "delete button")
    r = b.post("/admin/prices/delete", {"csrf": b.csrf("/admin/prices"), "id": str(rid)})
    eq(r.status, 303, "delete")
    eq(r.header("Location"), "/admin/prices?ok=2", "Location")
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 0, "row gone")
    r = b.post("/admin/prices/delete", {"csrf": b.csrf("/admin/prices"), "id": str(rid)})
    eq(r.status, 404, "again")
    eq(b.post("/admin/prices/delete", {"id": str(rid)}).status, 403, "without a CSRF token")


@S.test(fronts=False)
def test_price_table():
    b = root()
    r = post_channel(b, name="price-chan", models="kling\nsuno", setting='{"PassthroughQuota": 1234}')
    eq(r.status, 303, "channel")
    cid = one("SELECT id FROM channels WHERE name='price-chan'")["id"]
    r = post_channel(b, name="price-off", models="kling", status="2", setting='{"PassthroughQuota": 777}')
    eq(r.status, 303, "disabled channel")
    E.sql("REPLACE INTO options (`key`, value) VALUES ('ModelPrice', %s), ('GroupRatio', %s)",
          ('{"suno": 0.1, "kling-v2-master": 0.02}', '{"default": 1, "vip": 0.5}'))
    try:
        t = main_of(b.get("/admin/prices").text)
        base = t[t.index('id="base-prices"'):t.index('id="model-prices"')]
        check(re.search(r'<td>kling</td><td><a href="/admin/channels/edit\?id=%d">#%d price-chan</a>'
                        r'.*?</td><td class="num">1234</td>' % (cid, cid), base), "channel base for kling")
        check(re.search(r'<td>suno</td><td><a href="/admin/channels/edit\?id=%d">' % cid, base),
              "the channel serves suno too")
        check(re.search(r'<td>suno</td><td>ModelPrice suno</td><td class="num">50000</td>', base),
              "ModelPrice base of suno (0.1 x 500000)")
        check("price-off" not in base and ">777<" not in base, "a disabled channel is not a base")
        mp = t[t.index('id="model-prices"'):t.index('id="rules"')]
        check(re.search(r'kling-v2-master</td><td class="num">0.02</td><td class="num">10000</td>', mp),
              "ModelPrice entry as quota per call: %r" % mp[:800])
        check("vip x0.5 = 5000" in mp, "GroupRatio shown")
        check("QuotaPerUnit = 500000" in t, "QuotaPerUnit default")
        E.sql("REPLACE INTO options (`key`, value) VALUES ('QuotaPerUnit', '1000000')")
        mp = main_of(b.get("/admin/prices").text)
        check(re.search(r'kling-v2-master</td><td class="num">0.02</td><td class="num">20000</td>', mp),
              "QuotaPerUnit from the options")
    finally:
        E.sql("DELETE FROM options WHERE `key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')")
        E.sql("DELETE FROM abilities WHERE channel_id IN (SELECT id FROM channels WHERE name LIKE 'price-%%')")
        E.sql("DELETE FROM channels WHERE name LIKE 'price-%%'")


@S.test(fronts=False)
def test_ctl_price():
    E.sql("DELETE FROM bltcy_price_rules")
    p = E.ctl("price", "add", "--service", "kling", "--field", "mode", "--value", "pro",
              "--multiplier", "1.23456", check=False)
    eq(p.returncode, 1, "bad multiplier exit code")
    err = p.stderr.decode()
    check("Multiplier: a number from 0 to 1000 with at most 4 decimals, e.g. 1.5" in err, "message: %r" % err)
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 0, "no row")
    p = E.ctl("price", "add", "--service", "nope", "--multiplier", "2", check=False)
    check(p.returncode == 1 and "Service: one of the configured services" in p.stderr.decode(), "bad service")
    p = E.ctl("price", "add", "--service", "kling", "--field", "mode", "--value", "pro",
              "--multiplier", "3.5", "--surcharge", "100", "--note", "pro mode")
    rid = int(p.stdout.decode().strip())
    x = one("SELECT * FROM bltcy_price_rules WHERE id=%s", (rid,))
    eq((x["service"], x["model"], x["field"], x["value"], str(x["multiplier"]), x["surcharge"], x["note"]),
       ("kling", "", "mode", "pro", "3.5000", 100, "pro mode"), "row")
    p = E.ctl("price", "add", "--service", "kling", "--field", "mode", "--value", "pro", "--multiplier", "2",
              check=False)
    check(p.returncode == 1 and "exists" in p.stderr.decode(), "duplicate: %r" % p.stderr)
    out = E.ctl("price", "list").stdout.decode()
    eq(out, "id=%d service=kling model=* field=mode value=pro multiplier=3.5 surcharge=100 note=pro mode\n" % rid,
       "list")
    eq(E.ctl("price", "delete", str(rid)).returncode, 0, "delete")
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 0, "deleted")
    p = E.ctl("price", "delete", str(rid), check=False)
    check(p.returncode == 1 and "no rule" in p.stderr.decode(), "delete again: %r" % p.stderr)
    eq(E.ctl("price", "frobnicate", check=False).returncode, 2, "usage")
    check("price add --service S" in E.ctl("price", check=False).stderr.decode(), "usage text")


FIELDS_MSG = ("服务 kling 的规则已用到 32 个不同字段，新字段 %s 的规则不会生效，请用已有的字段或先删除规则"
              "（service kling has rules on 32 fields, the most a price reads: a rule on another "
              "field would never apply; use one of its fields or delete rules first）")
RULES_MSG = ("价格规则已达上限 4096 条，再多的规则不会生效，请先删除不用的规则"
             "（at most 4096 price rules: one more would never apply; delete one first）")


def rule_alert(r):
    m = re.search(r'<div class="msg err" role="alert">(.*?)</div>', main_of(r.text), re.S)
    return m.group(1).strip() if m else None


@S.test(fronts=False)
def test_price_rule_limits():
    """The relay reads 32 distinct fields of a service's rules and loads 4096
    rules: a rule past either would never apply, so the form and bltcy-ctl
    refuse it with a message that says so; a field the service has (in any
    case) and another service's field still go in."""
    E.sql("DELETE FROM bltcy_price_rules")
    with E.db().cursor() as c:
        c.executemany("INSERT INTO bltcy_price_rules (service, field, value, multiplier)"
                      " VALUES ('kling', %s, '1', 2)", [("f%d" % i,) for i in range(32)])
    b = root()
    r = post_rule(b, model="", field="f32", value="1")
    eq(r.status, 422, "a 33rd field: status")
    eq(rule_alert(r), FIELDS_MSG % "f32", "a 33rd field: message")
    p = E.ctl("price", "add", "--service", "kling", "--field", "input.g", "--value", "1",
              "--multiplier", "2", check=False)
    eq(p.returncode, 1, "bltcy-ctl, a 33rd field: exit")
    check((FIELDS_MSG % "input.g") in p.stderr.decode(), "bltcy-ctl message: %r" % p.stderr)
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 32, "nothing written")
    r = post_rule(b, model="", field="F5", value="2")
    eq(r.status, 303, "a field the service has, in another case: %s" % rule_alert(r))
    r = post_rule(b, model="", field="", value="", multiplier="2")
    eq(r.status, 303, "a rule without a field: %s" % rule_alert(r))
    p = E.ctl("price", "add", "--service", "suno", "--field", "f32", "--value", "1",
              "--multiplier", "2", check=False)
    eq(p.returncode, 0, "another service's field: %r" % p.stderr)
    # 4096 rules: no more
    n = count("SELECT COUNT(*) FROM bltcy_price_rules")
    with E.db().cursor() as c:
        c.executemany("INSERT INTO bltcy_price_rules (service, field, value, multiplier)"
                      " VALUES ('runway', 'duration', %s, 2)", [(str(i),) for i in range(4096 - n)])
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 4096, "filled")
    r = post_rule(b, field="mode", value="pro")
    eq(r.status, 422, "rule 4097: status")
    eq(rule_alert(r), RULES_MSG, "rule 4097: message")
    p = E.ctl("price", "add", "--service", "pika", "--multiplier", "2", check=False)
    eq(p.returncode, 1, "bltcy-ctl, rule 4097: exit")
    check(RULES_MSG in p.stderr.decode(), "bltcy-ctl message: %r" % p.stderr)
    eq(count("SELECT COUNT(*) FROM bltcy_price_rules"), 4096, "nothing more written")
    E.sql("DELETE FROM bltcy_price_rules")


# ---------------------------------------------------------------------------
# tasks

def seed_tasks():
    """Four tasks of two users and tokens, over ten days; returns ids."""
    E.sql("DELETE FROM bltcy_tasks")
    if not one("SELECT id FROM users WHERE username='taskuser'"):
        E.ctl("add-user", "taskuser", "--password", "taskuser-pw-1")
        E.ctl("add-token", "--user", "taskuser", "--name", "task-tok")
    uid = one("SELECT id FROM users WHERE username='taskuser'")["id"]
    tid = one("SELECT id FROM tokens WHERE name='task-tok'")["id"]
    now = int(time.time())
    rows = [
        ("kling", "T-k1", 7, uid, tid, now - 100, "succeeded", 1000, 0, "", now - 50, now - 50),
        ("kling", "T-k2", 8, root_id(), 0, now - 200, "refunded", 1500, 1500, "upstream said no", now - 150,
         now - 150),
        ("runway", "T-r1", 7, uid, tid, now - 3 * 86400, "running", 2000, 0, "", now - 3 * 86400 + 60, 0),
        # free, so the pool's refund sweep leaves it as it is
        ("suno", "T-s1", 9, 99999, 0, now - 10 * 86400, "timeout", 0, 0, "no answer in 3600 s",
         now - 9 * 86400, now - 9 * 86400),
    ]
    for r in rows:
        E.sql("INSERT INTO bltcy_tasks (service, task_id, channel_id, user_id, token_id, created_at, state,"
              " quota, refunded_quota, reason, updated_at, finished_at, model, request_id)"
              " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'm-1', 'rid')", r)
    return uid, tid


@S.test(fronts=False)
def test_tasks_page_filters():
    uid, tid = seed_tasks()
    b = root()

    def ids(q=""):
        r = b.get("/admin/tasks" + q)
        eq(r.status, 200, "status of " + q)
        return re.findall(r'<tr data-task="([^"]+)"', r.text)

    day = lambda days: time.strftime("%Y-%m-%d", time.localtime(time.time() - days * 86400))  # noqa: E731
    eq(ids(), ["T-k1", "T-k2", "T-r1", "T-s1"], "all, newest first")
    eq(ids("?user=taskuser"), ["T-k1", "T-r1"], "user by name")
    eq(ids("?user=%d" % uid), ["T-k1", "T-r1"], "user by id")
    eq(ids("?user=99999"), ["T-s1"], "user id without a row")
    eq(ids("?user=nobody"), [], "unknown user")
    eq(ids("?token=task-tok"), ["T-k1", "T-r1"], "token by name")
    eq(ids("?token=%d" % tid), ["T-k1", "T-r1"], "token by id")
    eq(ids("?service=kling"), ["T-k1", "T-k2"], "service")
    eq(ids("?channel=7"), ["T-k1", "T-r1"], "channel")
    eq(ids("?state=refunded"), ["T-k2"], "state")
    eq(ids("?state=running&service=runway&user=taskuser"), ["T-r1"], "combined")
    eq(ids("?created_from=%s" % day(4)), ["T-k1", "T-k2", "T-r1"], "from a day")
    eq(ids("?created_to=%s" % day(2)), ["T-r1", "T-s1"], "to a day (the whole day)")
    eq(ids("?created_from=%s&created_to=%s" % (day(4), day(2))), ["T-r1"], "a range")
    eq(ids("?created_to=%s" % day(0)), ["T-k1", "T-k2", "T-r1", "T-s1"], "to today includes today")
    t = main_of(b.get("/admin/tasks?service=kling").text)
    row = t[t.index('data-task="T-k2"'):]
    row = row[:row.index("</tr>")]
    for s in ("已退款", "upstream said no", '<td class="num">1500</td><td class="num">1500</td>', "root", "m-1"):
        check(s in row, "%r in the refunded task's row: %r" % (s, row))
    check('id="total-rows">2<' in t and 'id="total-quota">2500<' in t and 'id="total-refunded">1500<' in t,
          "totals")
    r = b.get("/admin/tasks?state=bogus")
    check("格式无效：任务状态" in r.text, "bad state")
    r = b.get("/admin/tasks?created_from=yesterday")
    check("格式无效：创建日期从" in r.text, "bad date")
    t = b.get("/admin/tasks?user=taskuser&page=1").text
    check('<input name="user" value="taskuser">' in t, "filter kept")


@S.test(fronts=False)
def test_tasks_paged():
    E.sql("DELETE FROM bltcy_tasks")
    now = int(time.time())
    for i in range(120):
        E.sql("INSERT INTO bltcy_tasks (service, task_id, channel_id, user_id, token_id, created_at, state)"
              " VALUES ('kling', %s, 1, 1, 1, %s, 'submitted')", ("P-%03d" % i, now - i))
    b = root()
    t = b.get("/admin/tasks").text
    shown = re.findall(r'<tr data-task="([^"]+)"', t)
    eq(len(shown), 50, "page 1")
    eq(shown[0], "P-000", "newest first")
    check(re.search(r'href="/admin/tasks\?user=&amp;token=&amp;service=&amp;channel=0&amp;state=&amp;'
                    r'created_from=&amp;created_to=&amp;page=2"', t), "next link")
    eq(re.findall(r'<tr data-task="([^"]+)"', b.get("/admin/tasks?page=3").text)[0], "P-100", "page 3")
    E.sql("DELETE FROM bltcy_tasks")


@S.test(fronts=False)
def test_dashboard_refunds_and_tasks():
    seed_tasks()
    now = int(time.time())
    for q in (700, 300):
        E.sql("INSERT INTO logs (user_id, created_at, type, content, username, token_name, model_name, quota,"
              " channel_id, token_id, ip, other) VALUES (1, %s, 6, '任务失败，退还配额', 'root', 't',"
              " 'kling_passthrough', %s, 1, 1, '', '{}')", (now - 60, q))
    E.sql("INSERT INTO logs (user_id, created_at, type, content, username, token_name, model_name, quota,"
          " channel_id, token_id, ip, other) VALUES (1, %s, 6, 'old', 'root', 't', 'kling_passthrough', 5,"
          " 1, 1, '', '{}')", (now - 2 * 86400,))
    n, qsum = (lambda x: (x["n"], x["q"]))(one(
        "SELECT COUNT(*) n, CAST(COALESCE(SUM(quota), 0) AS SIGNED) q FROM logs WHERE type=6 AND created_at >= %s",
        (now - 86400,)))
    check(n >= 2 and qsum >= 1000, "seeded")
    b = root()
    t = main_of(b.get("/admin/").text)
    eq(re.search(r'id="refunds-24h">(\d+)<', t).group(1), str(n), "refunds shown")
    eq(re.search(r'id="refund-quota-24h">(\d+)<', t).group(1), str(qsum), "refund sum shown")
    check("24 小时退还额度" in t and "24 小时消耗额度" in t, "beside consumption")
    for state, k in (("succeeded", 1), ("refunded", 1), ("running", 1), ("timeout", 1), ("failed", 0)):
        eq(re.search(r'id="tasks-%s">(\d+)<' % state, t).group(1), str(k), "tasks %s" % state)
    check('href="/admin/tasks?state=refunded"' in t, "state links to the tasks page")
    lt = b.get("/admin/logs?type=6").text
    check('id="total-rows">%d<' % count("SELECT COUNT(*) FROM logs WHERE type=6") in lt and "退款" in lt,
          "logs filter by refund")


@S.test(fronts=False)
def test_english_labels():
    b = Browser(E.port, lang="en-US,en;q=0.9,zh;q=0.5")
    r = b.get("/admin/login")
    check('<html lang="en">' in r.text and "Log in" in r.text, "English login")
    b.login("root", ROOT_PW)
    t = b.get("/admin/channels/new").text
    for s in ("Channel name", "Channel type", "55 - Old gateway (Bltcy)", "Models", "Priority"):
        check(s in t, "English label %r" % s)
    zh = Browser(E.port, lang="zh-CN,en;q=0.5")
    check("登录" in zh.get("/admin/login").text, "Chinese preferred")


@S.test(fronts=False)
def test_nginx_fcgiwrap():
    """The same CGI under nginx + fcgiwrap (nginx.conf.sample's block)."""
    port = E.start_nginx_admin()
    E.sql("DELETE FROM bltcy_login_throttle")
    b = Browser(port)
    r = b.get("/admin/")
    eq(r.status, 303, "redirect to login")
    eq(r.header("Location"), "/admin/login", "Location")
    eq(r.header("X-Frame-Options"), "DENY", "headers through nginx")
    eq(b.login("root", ROOT_PW).status, 303, "login through nginx")
    r = post_channel(b, name="via-nginx", models="suno")
    eq(r.status, 303, "channel through nginx")
    eq(count("SELECT COUNT(*) FROM abilities a JOIN channels c ON c.id = a.channel_id"
             " WHERE c.name='via-nginx'"), 1, "abilities")
    eq(b.get("/admin/static/admin.css").status, 200, "stylesheet")
    eq(b.post("/admin/logout", {"csrf": b.csrf()}).status, 303, "logout")


@S.test(fronts=False)
def test_zz_server_log_clean():
    """No key or password in what the CGI logged; no sanitizer report
    (make test-asan runs this suite against build-asan)."""
    log = b""
    for name in ("lighttpd.out", "fcgiwrap.out"):
        try:
            with open(os.path.join(E.dir, name), "rb") as f:
                log += f.read()
        except OSError:
            pass
    for secret in (b"sk-plain-secret", b"sk-VERY-SECRET", b"sk-stub-key", b"sk-edit-key", b"sk-new-key",
                   ROOT_PW.encode(), b"ops1-password", b"sk-old-gateway-key"):
        check(secret not in log, "%r in the server log" % secret)
    for bad in (b"AddressSanitizer", b"runtime error:", b"LeakSanitizer"):
        check(bad not in log, "%r in the server log: %r" % (bad, log[log.find(bad) - 200:][:800]))
    check(b"logged in from" in log, "the log is the CGI's (sanity)")


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
