#!/usr/bin/python3
"""Integration tests of what the relay lets through between client and
upstream: request headers that speak for the client's address, response
headers that would act on the gateway's origin or split the header block,
the headers added to every relayed answer, task ids read from answers in
any content coding, task ownership over every shape of id a request can
name, and addresses the relay never dials. (A URL libcurl refuses gets
through neither front, so the unit tests cover that one.)

The real pool under spawn-fcgi behind lighttpd and nginx, a private
MariaDB and the stub upstream (tests/stub_upstream.py).

Prints one line per test (`ok - name` / `not ok - name: reason`) and ends
with `upstream-guard: N passed, M failed`. Exit status 0 only if M == 0.

Usage: test_upstream_guard.py [-k SUBSTRING]... [--keep]
  -k      run only the tests whose name contains SUBSTRING
  --keep  keep the temporary directory (logs, configs) after the run
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import re
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402
import runner  # noqa: E402
import stub_upstream  # noqa: E402
from harness import rec_header, request  # noqa: E402

H = None
BOTH = ("lighttpd", "nginx")
CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def reset_stub():
    """The rules of one test never leak into the next."""
    H.stub.script(replace=True)


S = runner.Suite("upstream-guard", timeout=120, after_each=reset_stub,
                 watch=("relay", "lighttpd", "nginx", "stub"))
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, expect_gw_error, expect_ok = runner.short, runner.expect_gw_error, runner.expect_ok
expect_transport_error = runner.expect_transport_error


def test(fronts=("lighttpd",)):
    return S.test(fronts)


def uniq(prefix="g"):
    return harness.rand_name(prefix)


def auth(token):
    return [("Authorization", "Bearer sk-" + token["key"])]


JSON = [("Content-Type", "application/json")]


def account():
    user, token, chan = H.setup_account()
    return user, token, chan


def stub_since():
    return len(H.stub.requests())


def stub_new(since):
    return H.stub.requests(since)


def task_rows(tid):
    return H.sql("SELECT service, task_id, channel_id, user_id, token_id FROM bltcy_tasks WHERE task_id=%s",
                 (tid,))


def wait_task_row(tid, timeout=5):
    """bltcy_tasks rows of tid, once there (the pool writes them in batches)."""
    deadline = time.time() + timeout
    while True:
        rows = task_rows(tid)
        if rows or time.time() > deadline:
            return rows
        time.sleep(0.05)


def money(user, token):
    H.wait_settled(token)
    return (H.sql("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0],
            H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0],
            H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (token["id"],))[0]["n"])


def relay_log():
    try:
        with open(H.log_file, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def req_log(rid, timeout=5):
    """The relay's log lines of request rid, once its closing line is there."""
    rx = re.compile(r"req=%s\b" % re.escape(rid))
    deadline = time.time() + timeout
    while True:
        lines = [ln for ln in relay_log() if rx.search(ln)]
        if any(" status=" in ln for ln in lines) or time.time() > deadline:
            return lines


# ---------------------------------------------------------------------------
# headers


@test(fronts=BOTH)
def test_request_headers_about_the_client_dropped(front, port):
    """Forwarded, X-Real-IP, X-Client-IP, Via, Proxy and their kin never
    reach the upstream; an ordinary custom header does."""
    user, token, chan = account()
    path = "/kling/v1/hdr-" + uniq()
    sent = [("Forwarded", "for=6.6.6.6"), ("X-Real-IP", "6.6.6.6"), ("X-Client-IP", "6.6.6.6"),
            ("Via", "1.1 evil"), ("Proxy", "http://evil:1"), ("True-Client-IP", "6.6.6.6"),
            ("X-Forwarded", "for=6.6.6.6"), ("X-Custom", "kept")]
    since = stub_since()
    r = request(port, "GET", path, auth(token) + sent)
    expect_ok(r, "GET with client address headers")
    recs = stub_new(since)
    eq(len(recs), 1, "requests at the stub")
    for name, _ in sent[:-1]:
        eq(rec_header(recs[0], name), [], "%s upstream" % name)
    eq(rec_header(recs[0], "X-Custom"), ["kept"], "X-Custom upstream")


@test(fronts=BOTH)
def test_response_headers_sanitized(front, port):
    """Set-Cookie and Set-Cookie2 are dropped, a header line with a bare CR
    is dropped (the rest of the answer is relayed), and every relayed
    answer carries exactly our X-Content-Type-Options and
    Content-Security-Policy, in place of the upstream's."""
    user, token, chan = account()
    path = "/kling/v1/resp-" + uniq()
    body = b'{"ok":1}'
    H.stub.script({"path": re.escape(path), "status": 200, "body": body.decode(), "headers": [
        ["Content-Type", "application/json"], ["Set-Cookie", "sid=1; Path=/"], ["Set-Cookie2", "x=1"],
        ["X-Split", "a\rInjected: 1"], ["X-Content-Type-Options", "sniff"],
        ["Content-Security-Policy", "default-src *"], ["X-Good", "yes"]]})
    for method in ("GET", "POST"):
        r = request(port, method, path, auth(token), b"{}" if method == "POST" else None)
        rid = expect_ok(r, method)
        eq(r.body, body, method + " body")
        names = sorted(set(k.lower() for k, _ in r.headers))
        for gone in ("set-cookie", "set-cookie2", "x-split", "injected"):
            check(gone not in names, "%s: %s reached the client: %r" % (method, gone, r.headers))
        check(not any("Injected" in k or "Injected" in v for k, v in r.headers),
              "%s: the split header reached the client: %r" % (method, r.headers))
        eq(r.header_all("X-Content-Type-Options"), ["nosniff"], method + " X-Content-Type-Options")
        eq(r.header_all("Content-Security-Policy"), [CSP], method + " Content-Security-Policy")
        eq(r.header_all("X-Good"), ["yes"], method + " X-Good")
        check(any("header line with a control character" in ln for ln in req_log(rid)),
              "%s: no log line for the dropped header" % method)


# ---------------------------------------------------------------------------
# content codings


@test(fronts=BOTH)
def test_gzip_client_task_recorded(front, port):
    """A client that accepts gzip (every HTTP library does) still has its
    task recorded: a captured answer is asked for as identity."""
    user, token, chan = account()
    path = "/kling/v1/videos/gz-" + uniq()
    H.stub.script({"method": "POST", "path": "^%s$" % re.escape(path), "mode": "task_create",
                   "encoding": "gzip", "if_accepted": True})
    since = stub_since()
    r = request(port, "POST", path, auth(token) + JSON + [("Accept-Encoding", "gzip, deflate")],
                b'{"prompt":"x"}')
    expect_ok(r, "create")
    eq(r.header("Content-Encoding"), None, "Content-Encoding to the client")
    tid = r.json()["task_id"]
    recs = stub_new(since)
    eq(len(recs), 1, "requests at the stub")
    eq(rec_header(recs[0], "Accept-Encoding"), ["identity"], "Accept-Encoding upstream")
    eq([(x["service"], x["channel_id"], x["user_id"], x["token_id"]) for x in wait_task_row(tid)],
       [("kling", chan["id"], user["id"], token["id"])], "bltcy_tasks row")
    # a poll of the unfinished task is read for its state: asked as identity
    since = stub_since()
    r = request(port, "GET", path + "/" + tid, auth(token) + [("Accept-Encoding", "gzip")])
    expect_ok(r, "poll")
    eq(rec_header(stub_new(since)[0], "Accept-Encoding"), ["identity"], "Accept-Encoding of a poll upstream")
    # any other query (GET) streams as the client asked: nothing is read from it
    since = stub_since()
    r = request(port, "GET", path + "/list", auth(token) + [("Accept-Encoding", "gzip")])
    expect_ok(r, "another GET")
    eq(rec_header(stub_new(since)[0], "Accept-Encoding"), ["gzip"], "Accept-Encoding of a GET upstream")


@test()
def test_client_refusing_identity_keeps_its_encoding(front, port):
    """identity;q=0 is the client's to insist on: its Accept-Encoding is
    passed on as sent."""
    user, token, chan = account()
    path = "/kling/v1/ae-" + uniq()
    for ae in ("gzip, identity;q=0", "br, *;q=0"):
        since = stub_since()
        r = request(port, "POST", path, auth(token) + JSON + [("Accept-Encoding", ae)], b"{}")
        expect_ok(r, ae)
        eq(rec_header(stub_new(since)[0], "Accept-Encoding"), [ae], "Accept-Encoding upstream")


@test(fronts=BOTH)
def test_encoded_answer_read_for_task_ids(front, port):
    """An answer that comes encoded although identity was asked for
    reaches the client byte for byte, and its task id is read in gzip,
    deflate (zlib or raw) and br; zstd is relayed but not read, with a
    warning."""
    user, token, chan = account()
    for coding in ("gzip", "deflate", "deflate-raw", "br", "zstd"):
        path = "/kling/v1/videos/enc-" + uniq()
        tid = uniq("T-" + coding)
        plain = json.dumps({"code": 0, "data": {"task_id": tid}}).encode()
        H.stub.script({"method": "POST", "path": "^%s$" % re.escape(path), "status": 200,
                       "headers": [["Content-Type", "application/json"]], "body": plain.decode(),
                       "encoding": coding})
        r = request(port, "POST", path, auth(token) + JSON, b'{"prompt":"x"}')
        rid = expect_ok(r, coding)
        eq(r.body, stub_upstream.encode_body(coding, plain), coding + " body to the client")
        eq(r.header("Content-Encoding"), "deflate" if coding == "deflate-raw" else coding,
           coding + " Content-Encoding to the client")
        if coding == "zstd":
            time.sleep(0.3)
            eq(list(task_rows(tid)), [], "zstd: bltcy_tasks rows")
            check(any("could not be decoded" in ln for ln in req_log(rid)), "zstd: no warning logged")
        else:
            eq([(x["channel_id"], x["user_id"]) for x in wait_task_row(tid)],
               [(chan["id"], user["id"])], coding + ": bltcy_tasks row")


# ---------------------------------------------------------------------------
# task ownership


def create_tasks(port, token, base, n=1, suno=False):
    rule = {"method": "POST", "path": "^%s$" % re.escape(base), "mode": "task_create"}
    if suno:
        rule["shape"] = "suno"
    H.stub.script(rule)
    tids = []
    for i in range(n):
        r = request(port, "POST", base, auth(token) + JSON, b'{"prompt":"dog"}')
        expect_ok(r, "create %d" % i)
        j = r.json()
        tid = j["data"] if suno else j["task_id"]
        check(wait_task_row(tid), "task %s not recorded" % tid)
        tids.append(tid)
    return tids


def refused_everywhere(port, token, other, cases):
    for method, target, body in cases:
        since = stub_since()
        before = money(other, token)
        r = request(port, method, target, auth(token) + JSON, body)
        expect_gw_error(r, 404, "task_not_exist", "任务不存在", "%s %s %r" % (method, target, body))
        eq(stub_new(since), [], "%s %s %r: requests at the stub" % (method, target, body))
        eq(money(other, token), before, "%s %s %r: quota and logs" % (method, target, body))


@test(fronts=BOTH)
def test_suno_submit_and_fetch(front, port):
    """Suno's submit answer {"code":"success","data":"<id>"} records the
    task; another user's POST /suno/fetch naming it in ids (a list or a
    comma-separated string, any key case) is refused; the owner's fetch
    goes through."""
    owner, otoken, chan = account()
    mark = uniq("s")
    tid, = create_tasks(port, otoken, "/suno/submit/music-" + mark, suno=True)
    eq([(x["service"], x["channel_id"], x["user_id"]) for x in task_rows(tid)],
       [("suno", chan["id"], owner["id"])], "bltcy_tasks row")
    other = H.make_user(group=owner["group"])
    token = H.make_token(other)
    refused_everywhere(port, token, other, [
        ("POST", "/suno/fetch", json.dumps({"ids": ["x1", tid]}).encode()),
        ("POST", "/suno/fetch", json.dumps({"ids": "x1, " + tid}).encode()),
        ("POST", "/suno/fetch", json.dumps({"IDS": [tid]}).encode()),
        ("GET", "/suno/fetch/" + tid, None),
    ])
    H.stub.script({"method": "POST", "path": "^/suno/fetch$", "mode": "task_get"})
    # the stub's task_get knows the ids of tasks it created
    r = request(port, "POST", "/suno/fetch", auth(otoken) + JSON, json.dumps({"ids": [tid]}).encode())
    eq((r.status, r.json().get("task_id")), (200, tid), "owner's fetch")


@test(fronts=BOTH)
def test_foreign_task_id_in_any_shape(front, port):
    """Another user naming a task id anywhere the old gateway reads one:
    a path segment of a POST or PUT, the query in any key case or
    %-encoded, a body key in any case (Go's encoding/json folds case, and
    U+017F to 's'), nested, in a list, in a comma-separated string, after
    trailing text, or under nesting deeper than any fixed bound: 404
    task_not_exist, nothing forwarded, nothing charged."""
    owner, otoken, chan = account()
    base = "/kling/v1/videos/own-" + uniq()
    tid, = create_tasks(port, otoken, base)
    other = H.make_user(group=owner["group"])
    token = H.make_token(other)
    enc = "".join("%%%02X" % ord(c) for c in tid)
    deep = b"[" * 100 + b"]" * 100
    refused_everywhere(port, token, other, [
        ("POST", "%s/%s" % (base, tid), b'{"prompt":"x"}'),
        ("PUT", "%s/%s" % (base, tid), b'{"prompt":"x"}'),
        ("POST", "%s/%s/extend" % (base, tid), b"{}"),
        ("GET", "%s?TASK_ID=%s" % (base, tid), None),
        ("GET", "%s?task_id=%s" % (base, enc), None),
        ("GET", "/kling/v1/videos/%s" % enc, None),
        ("POST", "/kling/v1/q", json.dumps({"Task_Id": tid}).encode()),
        ("POST", "/kling/v1/q", json.dumps({"TASK_ID": tid}).encode()),
        ("POST", "/kling/v1/q", json.dumps({"taskId": tid}).encode()),
        ("POST", "/kling/v1/q", json.dumps({"ta\u017fk_id": tid}, ensure_ascii=False).encode()),
        ("POST", "/kling/v1/q", json.dumps({"ta\u017fk_id": tid}).encode()),
        ("POST", "/kling/v1/q", json.dumps({"a": {"b": [{"task_id": tid}]}}).encode()),
        ("POST", "/kling/v1/q", json.dumps({"task_ids": ["x", tid]}).encode()),
        ("POST", "/kling/v1/q", json.dumps({"ids": "x," + tid}).encode()),
        ("POST", "/kling/v1/q", json.dumps({"task_id": tid}).encode() + b" trailing"),
        ("POST", "/kling/v1/q", b'{"x":' + deep + b',"task_id":"' + tid.encode() + b'"}'),
        ("POST", "/kling/v1/q", b'{"x":' + b"[" * 40 + b"{\"task_id\":\"" + tid.encode() + b"\"}" +
         b"]" * 40 + b"}"),
    ])
    # the owner's POST naming it in the path goes to it
    r = request(port, "POST", "%s/%s" % (base, tid), auth(otoken) + JSON, b'{"prompt":"x"}')
    expect_ok(r, "owner's POST naming the task in the path")


@test()
def test_more_ids_than_can_be_checked(front, port):
    """A request naming more distinct ids than the owner check takes is
    refused whole (400 too_many_task_ids), so no id hides behind harmless
    ones; one naming as many as it takes is not."""
    owner, otoken, chan = account()
    base = "/kling/v1/videos/many-" + uniq()
    tid, = create_tasks(port, otoken, base)
    other = H.make_user(group=owner["group"])
    token = H.make_token(other)
    harmless = ["h%d" % i for i in range(8)]
    since = stub_since()
    r = request(port, "POST", "/suno/fetch", auth(token) + JSON,
                json.dumps({"ids": harmless + [tid]}).encode())
    expect_gw_error(r, 400, "too_many_task_ids", "请求中的任务 ID 过多", "nine ids")
    eq(stub_new(since), [], "nine ids: requests at the stub")
    r = request(port, "POST", "/suno/fetch", auth(token) + JSON,
                json.dumps({"ids": harmless[:7]}).encode())
    expect_ok(r, "seven ids and the path's own segment")


# ---------------------------------------------------------------------------
# addresses and URLs


@test()
def test_forbidden_address_never_dialled(front, port):
    """A channel whose address is unspecified (0.0.0.0, which Linux
    dials as this host) or link-local / metadata is never connected to:
    a channel failure (502 connection failed) that the log line names as
    the channel's configuration; with another channel, the request fails
    over to it."""
    user, token, chan = H.setup_account(base_url="http://0.0.0.0:%d" % H.stub_port)
    since = stub_since()
    r = request(port, "GET", "/kling/v1/meta-" + uniq(), auth(token))
    expect_transport_error(r, 502, "connection failed", "0.0.0.0 channel")
    eq(stub_new(since), [], "requests at the stub")
    lines = req_log(r.header("X-Request-Id"))
    check(any("0.0.0.0 is forbidden" in ln and "base URL" in ln for ln in lines),
          "no log line naming the forbidden address: %r" % lines)
    # with a second, sound channel at a lower priority, that one answers
    user, token, bad = H.setup_account(channel=False)
    H.make_channel(user["group"], base_url="http://[::ffff:169.254.169.254]:%d" % H.stub_port, priority=5)
    good = H.make_channel(user["group"], priority=0)
    since = stub_since()
    r = request(port, "GET", "/kling/v1/meta-" + uniq(), auth(token))
    expect_ok(r, "failover past the forbidden channel")
    eq(rec_header(stub_new(since)[0], "Authorization"), ["Bearer " + good["key"]], "the channel that answered")


def start(keep):
    global H
    H = harness.start_suite(keep, workers=2, config={"LOG_LEVEL": "debug"})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
