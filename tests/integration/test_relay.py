#!/usr/bin/python3
"""Integration tests of bltcy-relay: the real pool under spawn-fcgi behind
lighttpd and nginx, a private MariaDB, and the stub upstream.

Prints one line per test (`ok - name` / `not ok - name: reason`) and ends
with `integration: N passed, M failed`. Exit status 0 only if M == 0.

Usage: test_relay.py [-k SUBSTRING]... [--keep]
  -k      run only the tests whose name contains SUBSTRING
  --keep  keep the temporary directory (logs, configs) after the run
"""

import sys
sys.dont_write_bytecode = True
import hashlib
import json
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, SetupError, rec_body, rec_header, request  # noqa: E402

from runner import (Fail, Suite, check, eq, expect_gw_error, expect_ok,  # noqa: E402
                    expect_transport_error, gw_error_body, short)

H = None
SUITE = Suite("integration", timeout=150)
MiB = 1024 * 1024


def test(fronts=True):
    return SUITE.test(fronts)


# ---------------------------------------------------------------------------
# helpers


def uniq(prefix="r"):
    return harness.rand_name(prefix)


def auth(token, how="bearer"):
    k = token["key"]
    if how == "bearer":
        return [("Authorization", "Bearer sk-" + k)]
    if how == "bearer-nosk":
        return [("Authorization", "Bearer " + k)]
    if how == "raw":
        return [("Authorization", "sk-" + k)]
    return [(how, "sk-" + k)]


def state(user, token, chan=None):
    """Full rows that a request may touch, to compare before/after, read
    in one consistent snapshot (a settlement commits several tables at once)."""
    H.wait_settled(token)
    H.sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    try:
        s = _state(user, token, chan)
    finally:
        H.sql("COMMIT")
    return s


def _state(user, token, chan):
    s = {
        "user": H.sql("SELECT * FROM users WHERE id=%s", (user["id"],))[0],
        "token": H.sql("SELECT * FROM tokens WHERE id=%s", (token["id"],))[0],
        "logs": H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s OR user_id=%s",
                      (token["id"], user["id"]))[0]["n"],
    }
    if chan:
        s["chan"] = H.sql("SELECT * FROM channels WHERE id=%s", (chan["id"],))[0]
    return s


def expect_unchanged(before, user, token, chan=None, what="", wait=0.0):
    """Nothing a request may touch changed, but the token's accessed_time,
    which a strict charge sets when it is made, also if it is refunded."""
    deadline = time.time() + wait
    while True:
        after = state(user, token, chan)
        if after["token"]["accessed_time"] >= before["token"]["accessed_time"]:
            after["token"]["accessed_time"] = before["token"]["accessed_time"]
        if after == before or time.time() >= deadline:
            break
        time.sleep(0.1)
    for k in before:
        if before[k] != after[k]:
            if isinstance(before[k], dict):
                diff = {c: (before[k][c], after[k][c]) for c in before[k] if before[k][c] != after[k][c]}
                raise Fail("%s: %s row changed (before, after): %r" % (what, k, diff))
            raise Fail("%s: %s changed: %r -> %r" % (what, k, before[k], after[k]))


def expect_charged(before, user, token, chan, n, rid, method, path, what="", unlimited=False,
                   t0=None, recovered=False):
    """The request rid was charged n exactly once, with its logs row."""
    deadline = time.time() + 5
    while True:
        after = state(user, token, chan)
        if after["logs"] >= before["logs"] + 1 or time.time() > deadline:
            break
        time.sleep(0.05)
    b, a = before, after
    eq(a["token"]["remain_quota"], b["token"]["remain_quota"] - (0 if unlimited else n), what + " token remain_quota")
    eq(a["token"]["used_quota"], b["token"]["used_quota"] + n, what + " token used_quota")
    eq(a["user"]["quota"], b["user"]["quota"] - n, what + " user quota")
    eq(a["user"]["used_quota"], b["user"]["used_quota"] + n, what + " user used_quota")
    eq(a["user"]["request_count"], b["user"]["request_count"] + 1, what + " user request_count")
    eq(a["chan"]["used_quota"], b["chan"]["used_quota"] + n, what + " channel used_quota")
    eq(a["logs"], b["logs"] + 1, what + " logs rows")
    if t0 is not None:
        check(a["token"]["accessed_time"] >= int(t0), "%s: token accessed_time %r not updated (request at %d)"
              % (what, a["token"]["accessed_time"], int(t0)))
    row = H.sql("SELECT * FROM logs WHERE token_id=%s ORDER BY id DESC LIMIT 1", (token["id"],))[0]
    service = path.split("/")[1]
    service = "runway" if service == "runwayml" else service
    want = {
        "user_id": user["id"], "type": 2, "model_name": service + "_passthrough", "quota": n,
        "content": "Bltcy透传模式（%s %s），消费配额: %d" % (method, path.split("?")[0], n),
        "channel_id": chan["id"], "token_id": token["id"], "token_name": token["name"],
        "username": user["username"], "group": user["group"], "ip": "127.0.0.1",
    }
    got = {k: row[k] for k in want}
    eq(got, want, what + " logs row")
    try:
        other = json.loads(row["other"])
    except (TypeError, ValueError):
        raise Fail("%s: logs.other is not JSON: %r" % (what, row["other"]))
    if rid is not None:
        eq(other.get("request_id"), rid, what + " logs.other request_id")
    if recovered:
        eq(other.get("recovered"), True, what + " logs.other recovered")
    check(0 <= (row["use_time"] or 0) < 120, "%s: use_time %r" % (what, row["use_time"]))
    check(abs(row["created_at"] - time.time()) < 300, "%s: created_at %r" % (what, row["created_at"]))
    return row


def stub_saw(marker):
    return [r for r in H.stub.requests() if marker in r["path"]]


def one_rec(marker, what=""):
    recs = stub_saw(marker)
    eq(len(recs), 1, what + " requests seen by the stub with %r" % marker)
    return recs[0]


_acct = {}


def shared_account():
    """A rich account (big quotas, default setting) reused by tests that
    only look at forwarding."""
    if "a" not in _acct:
        _acct["a"] = H.setup_account()
    return _acct["a"]


# ---------------------------------------------------------------------------
# tests: relay endpoints


@test()
def test_health(front, port):
    r = request(port, "GET", "/bltcy/health")
    eq((r.status, r.body), (200, H.health_ok()), "GET /bltcy/health")
    check(r.header("X-Request-Id"), "no X-Request-Id on /bltcy/health")


@test()
def test_metrics(front, port):
    r = request(port, "GET", "/bltcy/metrics")
    eq(r.status, 200, "GET /bltcy/metrics status")
    check(b"# TYPE" in r.body, "no Prometheus '# TYPE' line in /bltcy/metrics: %r" % r.body[:200])
    check(r.header("X-Request-Id"), "no X-Request-Id on /bltcy/metrics")


# ---------------------------------------------------------------------------
# tests: the error table


@test()
def test_error_unknown_route(front, port):
    user, token, chan = shared_account()
    for method, path in (("GET", "/nope/x"), ("POST", "/klingx/v1/a"), ("GET", "/"), ("DELETE", "/admin2/y")):
        # (a POST carries Content-Length: 0: lighttpd itself answers 411 to a POST without a length)
        r = request(port, method, path, auth(token), b"" if method == "POST" else None)
        expect_gw_error(r, 404, "invalid_url", "Invalid URL (%s %s)" % (method, path), "%s %s" % (method, path))


@test()
def test_error_missing_token(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    before = state(user, token, chan)
    r = request(port, "POST", "/kling/v1/%s" % m, [("Content-Type", "application/json")], b"{}")
    expect_gw_error(r, 401, "missing_token", "未提供令牌", "no token")
    r = request(port, "GET", "/suno/v1/%s" % m)
    expect_gw_error(r, 401, "missing_token", "未提供令牌", "GET without token")
    eq(stub_saw(m), [], "stub requests")
    expect_unchanged(before, user, token, chan, "no token")


@test()
def test_error_invalid_token(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    for hdrs, what in (([("Authorization", "Bearer sk-" + harness.rand_key())], "random key"),
                       ([("Authorization", "Bearer sk-")], "empty key after sk-"),
                       ([("x-ptoken", "sk-" + harness.rand_key())], "random x-ptoken")):
        r = request(port, "POST", "/kling/v1/%s" % m, hdrs, b"{}")
        if what == "empty key after sk-" and r.status == 401 and b"missing_token" in r.body:
            expect_gw_error(r, 401, "missing_token", "未提供令牌", what)
            continue
        expect_gw_error(r, 401, "invalid_token", "无效的令牌", what)
    u2 = H.make_user(group=user["group"])
    t2 = H.make_token(u2, deleted=True)
    r = request(port, "POST", "/kling/v1/%s" % m, auth(t2), b"{}")
    expect_gw_error(r, 401, "invalid_token", "无效的令牌", "soft-deleted token")
    eq(stub_saw(m), [], "stub requests")


def _token_case(port, token_kw, status, code, msg, what, user_kw=None, path="/kling/v1/x", method="POST"):
    user = H.make_user(**(user_kw or {}))
    chan = H.make_channel(user["group"])
    token = H.make_token(user, **token_kw)
    m = uniq("m")
    before = state(user, token, chan)
    r = request(port, method, path + "/" + m, auth(token), b"{}" if method == "POST" else None)
    expect_gw_error(r, status, code, msg, what)
    eq(stub_saw(m), [], what + ": stub requests")
    expect_unchanged(before, user, token, chan, what)
    return user, token, chan


@test()
def test_error_token_quota_exhausted(front, port):
    _token_case(port, {"status": 4}, 401, "token_quota_exhausted", "该令牌额度已用尽", "token status 4")
    _token_case(port, {"remain_quota": 0}, 401, "token_quota_exhausted", "该令牌额度已用尽", "remain_quota 0")
    _token_case(port, {"remain_quota": -5}, 401, "token_quota_exhausted", "该令牌额度已用尽", "remain_quota -5")
    _token_case(port, {"remain_quota": 0}, 401, "token_quota_exhausted", "该令牌额度已用尽",
                "remain_quota 0 on a GET", method="GET")


@test()
def test_error_token_expired(front, port):
    _token_case(port, {"status": 3}, 401, "token_expired", "该令牌已过期", "token status 3")
    _token_case(port, {"expired_time": int(time.time()) - 60}, 401, "token_expired", "该令牌已过期",
                "expired_time in the past")
    user = H.make_user()
    H.make_channel(user["group"])
    token = H.make_token(user, expired_time=int(time.time()) + 3600)
    expect_ok(request(port, "POST", "/kling/v1/" + uniq("m"), auth(token), b"{}"), "expired_time in the future")


@test()
def test_error_token_disabled(front, port):
    _token_case(port, {"status": 2}, 401, "token_disabled", "该令牌状态不可用", "token status 2")


@test()
def test_error_ip_not_allowed(front, port):
    _token_case(port, {"allow_ips": "10.9.8.7"}, 403, "ip_not_allowed", "您的 IP 不在令牌允许访问的列表中",
                "allow_ips without 127.0.0.1")
    user = H.make_user()
    chan = H.make_channel(user["group"])
    token = H.make_token(user, allow_ips="10.9.8.7\n127.0.0.1")
    r = request(port, "POST", "/kling/v1/" + uniq("m"), auth(token), b"{}")
    expect_ok(r, "allow_ips containing 127.0.0.1")


@test()
def test_error_user_banned(front, port):
    _token_case(port, {}, 403, "user_banned", "用户已被封禁", "user status 2", user_kw={"status": 2})
    _token_case(port, {}, 403, "user_banned", "用户已被封禁", "user soft-deleted", user_kw={"deleted": True})


@test()
def test_error_model_not_allowed(front, port):
    _token_case(port, {"model_limits_enabled": 1, "model_limits": "suno,pika"}, 403, "model_not_allowed",
                "该令牌无权访问模型 kling", "kling not in model_limits")
    _token_case(port, {"model_limits_enabled": 1, "model_limits": "kling"}, 403, "model_not_allowed",
                "该令牌无权访问模型 runway", "runwayml not in model_limits", path="/runwayml/v1/x")
    user = H.make_user()
    chan = H.make_channel(user["group"])
    token = H.make_token(user, model_limits_enabled=1, model_limits="suno,runway")
    expect_ok(request(port, "POST", "/suno/v1/" + uniq("m"), auth(token), b"{}"), "suno in model_limits")
    expect_ok(request(port, "POST", "/runwayml/v1/" + uniq("m"), auth(token), b"{}"),
              "/runwayml/ with runway in model_limits")
    token2 = H.make_token(user, model_limits_enabled=0, model_limits="suno")
    expect_ok(request(port, "POST", "/kling/v1/" + uniq("m"), auth(token2), b"{}"),
              "model_limits set but not enabled")


@test()
def test_error_channel_pin(front, port):
    user = H.make_user(role=1)
    chan = H.make_channel(user["group"])
    token = H.make_token(user)
    m = uniq("m")
    before = state(user, token, chan)
    r = request(port, "POST", "/kling/v1/" + m, [("Authorization", "Bearer sk-%s-%d" % (token["key"], chan["id"]))],
                b"{}")
    expect_gw_error(r, 403, "channel_pin_forbidden", "普通用户不支持指定渠道", "pinned channel, role 1")
    eq(stub_saw(m), [], "stub requests")
    expect_unchanged(before, user, token, chan, "pinned channel, role 1")
    # an admin may pin: the pinned channel (lower priority) is used
    admin = H.make_user(role=10)
    c_hi = H.make_channel(admin["group"], priority=10)
    c_lo = H.make_channel(admin["group"], priority=0)
    t_admin = H.make_token(admin)
    m = uniq("m")
    r = request(port, "POST", "/kling/v1/" + m, [("Authorization", "Bearer sk-%s-%d" % (t_admin["key"], c_lo["id"]))],
                b"{}")
    expect_ok(r, "pinned channel, role 10")
    rec = one_rec(m, "pinned channel, role 10")
    eq(rec_header(rec, "Authorization"), ["Bearer " + c_lo["key"]], "Authorization upstream (pinned low-priority channel)")


@test()
def test_error_insufficient_quota(front, port):
    _token_case(port, {"remain_quota": 999}, 403, "insufficient_quota", "额度不足", "token remain 999 < 1000")
    _token_case(port, {}, 403, "insufficient_quota", "额度不足", "user quota 999 < 1000", user_kw={"quota": 999})
    _token_case(port, {"unlimited": 1, "remain_quota": 0}, 403, "insufficient_quota", "额度不足",
                "unlimited token, user quota 10", user_kw={"quota": 10})
    # a free GET needs no quota
    user = H.make_user(quota=999)
    chan = H.make_channel(user["group"])
    token = H.make_token(user, remain_quota=999)
    before = state(user, token, chan)
    expect_ok(request(port, "GET", "/kling/v1/" + uniq("m"), auth(token)), "free GET with 999 quota")
    expect_unchanged(before, user, token, chan, "free GET")


@test()
def test_error_model_not_found(front, port):
    user = H.make_user()
    token = H.make_token(user)
    m = uniq("m")
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"], "no channel at all")
    H.make_channel(user["group"], models="suno")
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                    "only a suno channel")
    H.make_channel(user["group"], status=2)
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                    "only a disabled kling channel")
    c = H.make_channel(user["group"])
    H.sql("UPDATE channels SET type=1 WHERE id=%s", (c["id"],))
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                    "only a type-1 kling channel")
    eq(stub_saw(m), [], "stub requests")
    # the same account works once a channel is added with plain SQL
    H.make_channel(user["group"], models="kling")
    expect_ok(request(port, "POST", "/kling/v1/" + m, auth(token), b"{}"), "after adding a channel by SQL")


@test()
def test_error_request_too_large(front, port):
    user, token, chan = H.setup_account()
    limit = int(H.config["RELAY_MAX_BODY"])
    m = uniq("m")
    before = state(user, token, chan)
    r = request(port, "POST", "/kling/v1/%s-cl" % m, auth(token) + [("Content-Type", "application/octet-stream")],
                b"\0" * (limit + 1), timeout=60)
    expect_gw_error(r, 413, "request_too_large", "请求体过大", "Content-Length limit+1")
    eq(stub_saw(m), [], "stub requests after a too large body with Content-Length")
    expect_unchanged(before, user, token, chan, "too large body", wait=1)
    r = request(port, "POST", "/kling/v1/%s-ch" % m, auth(token), b"\0" * (limit + 1), chunked=True, timeout=60)
    expect_gw_error(r, 413, "request_too_large", "请求体过大", "chunked limit+1")
    expect_unchanged(before, user, token, chan, "too large chunked body", wait=1)
    # exactly the limit is fine
    r = request(port, "POST", "/kling/v1/%s-ok" % m, auth(token), b"\1" * limit, timeout=60)
    expect_ok(r, "body of exactly RELAY_MAX_BODY")
    eq(one_rec(m + "-ok")["body_len"], limit, "upstream body length")


# ---------------------------------------------------------------------------
# tests: routes, methods, tokens


PREFIXES = ("/runway/", "/runwayml/", "/pika/", "/kling/", "/jimeng/", "/suno/")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@test()
def test_prefixes_and_methods(front, port):
    user, token, chan = shared_account()
    for prefix in PREFIXES:
        for method in METHODS:
            m = uniq("m")
            path = "%sv1/%s/%s?b=2&a=%%20x&c" % (prefix, method.lower(), m)
            body = b'{"m": "%s"}' % method.encode() if method in ("POST", "PUT", "PATCH") else None
            r = request(port, method, path, auth(token) + [("Content-Type", "application/json")], body)
            expect_ok(r, "%s %s" % (method, path))
            if method == "HEAD":
                eq(r.body, b"", "HEAD response body")
            else:
                echo = json.loads(r.body)
                eq(echo["method"], method, "%s %s: method echoed by the stub" % (method, path))
            rec = one_rec(m, "%s %s" % (method, path))
            eq((rec["method"], rec["path"]), (method, path), "method and path upstream")
            if body is not None:
                eq(rec_body(rec), body, "%s body upstream" % method)


@test()
def test_token_sources(front, port):
    user, token, chan = shared_account()
    for how in ("bearer", "bearer-nosk", "raw", "x-ptoken", "x-vtoken", "x-ctoken"):
        m = uniq("m")
        hdrs = auth(token, how)
        if how == "bearer-nosk":
            hdrs = [("Authorization", "Bearer " + token["key"])]
        r = request(port, "POST", "/pika/v1/" + m, hdrs, b"{}")
        expect_ok(r, "token via %s" % how)
        rec = one_rec(m, how)
        eq(rec_header(rec, "Authorization"), ["Bearer " + chan["key"]], "%s: Authorization upstream" % how)
        for h in ("x-ptoken", "x-vtoken", "x-ctoken"):
            eq(rec_header(rec, h), [], "%s: %s upstream" % (how, h))
    # a token without sk- in x-ptoken
    m = uniq("m")
    expect_ok(request(port, "POST", "/pika/v1/" + m, [("x-ptoken", token["key"])], b"{}"), "x-ptoken without sk-")


@test()
def test_request_ids(front, port):
    user, token, chan = shared_account()
    ids = set()
    for _ in range(5):
        r = request(port, "GET", "/jimeng/v1/" + uniq("m"), auth(token))
        expect_ok(r, "GET")
        ids.add(r.header("X-Request-Id"))
    eq(len(ids), 5, "distinct X-Request-Id values over 5 requests")


# ---------------------------------------------------------------------------
# tests: byte-exact forwarding


@test()
def test_body_and_query_exact(front, port):
    user, token, chan = shared_account()
    body = '{ "zeta" :1,\t"alpha":[ 2,1 ] ,"s":"é \\u00e9 \\/", "n": 1.50e+2 }\r\n'.encode()
    for query in ("?b=2&a=%20x&c", "?z=%2F%3F%26&y=a+b&x=%7e~&w=&&v=%E4%B8%AD", "?"):
        m = uniq("m")
        path = "/kling/v1/videos/%s%s" % (m, query)
        r = request(port, "POST", path, auth(token) + [("Content-Type", "application/json; charset=utf-8")], body)
        expect_ok(r, "POST " + path)
        rec = one_rec(m)
        eq(rec["path"], path, "path+query upstream")
        eq(rec_body(rec), body, "body upstream")
        eq(rec_header(rec, "Content-Type"), ["application/json; charset=utf-8"], "Content-Type upstream")
        eq(rec_header(rec, "Content-Length"), [str(len(body))], "Content-Length upstream")
    # every byte value
    allbytes = bytes(range(256)) * 3
    m = uniq("m")
    r = request(port, "PUT", "/suno/upload/" + m, auth(token) + [("Content-Type", "application/octet-stream")],
                allbytes)
    expect_ok(r, "PUT binary")
    eq(rec_body(one_rec(m)), allbytes, "binary body upstream")


@test()
def test_legit_dotted_paths_forwarded(front, port):
    user, token, chan = shared_account()
    for tail in ("v1/file.json", "v1/..foo/x", "v1/foo../x", "v1/.well-known/x", "v1/file%2ejson",
                 "v1/a%2Fb/c", "v1/x?path=../../etc&dot=.", "v1/%E4%B8%AD/%41%7e", "v1/" + "a" * 3000):
        m = uniq("m")
        path = "/kling/%s/%s" % (m, tail)
        r = request(port, "POST", path, auth(token), b"{}")
        expect_ok(r, "POST %s" % path[:100])
        eq(one_rec(m)["path"], path, "path upstream")


@test()
def test_no_headers_added(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"a=1")
    expect_ok(r, "POST without Content-Type, Accept or User-Agent")
    rec = one_rec(m)
    names = sorted(k.lower() for k, _ in rec["headers"])
    eq(names, ["authorization", "content-length", "host"], "header names upstream (client sent Authorization only)")


@test()
def test_request_headers(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    custom = 'v1 ,  "quoted";x=1'
    hdrs = auth(token) + [
        ("Cookie", "session=secret-cookie"),
        ("x-ptoken", "sk-other"), ("x-vtoken", "sk-other"), ("x-ctoken", "sk-other"),
        ("Connection", "keep-alive, X-Custom-Hop"), ("X-Custom-Hop", "hop"),
        ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Upgrade", "foo/1"),
        ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
        ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "gopher"),
        ("X-Custom", custom), ("Accept", "application/json"), ("User-Agent", "bltcy-test/1"),
        ("Content-Type", "application/json"),
    ]
    r = request(port, "POST", "/kling/v1/" + m, hdrs, b'{"a":1}')
    expect_ok(r, "POST with many headers")
    rec = one_rec(m)
    eq(rec_header(rec, "Authorization"), ["Bearer " + chan["key"]], "Authorization upstream")
    eq(rec_header(rec, "Host"), ["127.0.0.1:%d" % H.stub_port], "Host upstream")
    for h in ("Cookie", "x-ptoken", "x-vtoken", "x-ctoken", "X-Custom-Hop", "Keep-Alive", "TE", "Upgrade",
              "Proxy-Authorization", "Transfer-Encoding"):
        eq(rec_header(rec, h), [], "%s upstream" % h)
    for v in rec_header(rec, "Connection"):
        check("custom-hop" not in v.lower(), "Connection upstream names the client's hop header: %r" % v)
    allvals = " ".join(v for _, v in rec["headers"])
    for secret in ("1.2.3.4", "evil.example", "gopher", "secret-cookie", "cHJveHk6c2VjcmV0", "sk-other", token["key"]):
        check(secret not in allvals, "client value %r reached the upstream: %r" % (secret, rec["headers"]))
    eq(rec_header(rec, "X-Custom"), [custom], "X-Custom upstream")
    eq(rec_header(rec, "Accept"), ["application/json"], "Accept upstream")
    eq(rec_header(rec, "User-Agent"), ["bltcy-test/1"], "User-Agent upstream")
    eq(rec_header(rec, "Content-Length"), ["7"], "Content-Length upstream (exactly one)")


@test()
def test_response_relay(front, port):
    user, token, chan = H.setup_account()
    for status in (201, 202, 200, 204):
        m = uniq("m")
        body = b'{"id":"task-1", "odd" :  [1,2]}\n\x00\xff' if status != 204 else b""
        H.stub.script({"path": m, "status": status, "body_b64": __import__("base64").b64encode(body).decode(),
                       "headers": [["X-Upstream-Thing", "abc def"], ["Content-Type", "application/x-custom"],
                                   ["Access-Control-Allow-Origin", "*"],
                                   ["Access-Control-Allow-Methods", "GET, POST"],
                                   ["Access-Control-Allow-Credentials", "true"],
                                   ["access-control-expose-headers", "X-Upstream-Thing"],
                                   ["Set-Cookie", "up=1; Path=/"], ["Set-Cookie", "up2=2; Path=/x"]]})
        before = state(user, token, chan)
        t0 = time.time()
        r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
        eq(r.status, status, "status relayed")
        eq(r.body, body, "body relayed")
        check(r.header("X-Request-Id"), "no X-Request-Id on a relayed response")
        eq(r.header_all("X-Upstream-Thing"), ["abc def"], "X-Upstream-Thing relayed")
        eq(r.header_all("Content-Type"), ["application/x-custom"], "Content-Type relayed")
        acao = [k for k, _ in r.headers if k.lower().startswith("access-control-")]
        eq(acao, [], "Access-Control-* headers in the response")
        eq(r.header_all("Set-Cookie"), [], "Set-Cookie dropped (the answer is served on our origin)")
        expect_charged(before, user, token, chan, 1000, r.header("X-Request-Id"), "POST", "/kling/v1/" + m,
                       "status %d" % status, t0=t0)
    # a chunked upstream response arrives whole
    m = uniq("m")
    H.stub.script({"path": m, "mode": "chunked", "chunks": ["one,", "two,", "", "three"],
                   "headers": [["X-Upstream-Thing", "chunky"]]})
    r = request(port, "GET", "/kling/v1/" + m, auth(token))
    expect_ok(r, "chunked upstream")
    eq(r.body, b"one,two,three", "chunked upstream body")
    eq(r.header("X-Upstream-Thing"), "chunky", "header of a chunked upstream response")


@test()
def test_channel_changes_seen(front, port):
    user, token, chan = H.setup_account(setting={"passthrough_quota": 1500})
    path = "/kling/v1/" + uniq("m")
    before = state(user, token, chan)
    r = request(port, "POST", path, auth(token), b"{}")
    expect_ok(r, "POST")
    expect_charged(before, user, token, chan, 1500, r.header("X-Request-Id"), "POST", path, "setting 1500")
    H.sql("UPDATE channels SET setting=%s WHERE id=%s", ('{"passthrough_quota": 2200}', chan["id"]))
    before = state(user, token, chan)
    r = request(port, "POST", path, auth(token), b"{}")
    expect_ok(r, "POST after the setting changed by SQL")
    expect_charged(before, user, token, chan, 2200, r.header("X-Request-Id"), "POST", path,
                   "setting changed to 2200 by SQL")
    H.sql("UPDATE channels SET status=2 WHERE id=%s", (chan["id"],))
    r = request(port, "POST", path, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                    "after the channel was disabled by SQL")
    H.sql("UPDATE channels SET status=1 WHERE id=%s", (chan["id"],))
    expect_ok(request(port, "POST", path, auth(token), b"{}"), "after the channel was enabled again by SQL")
    newkey = "rotated-" + harness.rand_key(20)
    H.sql("UPDATE channels SET `key`=%s WHERE id=%s", (newkey, chan["id"]))
    m = uniq("m")
    expect_ok(request(port, "POST", "/kling/v1/" + m, auth(token), b"{}"), "after the key changed by SQL")
    eq(rec_header(one_rec(m), "Authorization"), ["Bearer " + newkey], "Authorization after the key changed")
    H.sql("DELETE FROM abilities WHERE channel_id=%s AND model='kling'", (chan["id"],))
    r = request(port, "POST", path, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                    "after the kling ability row was deleted by SQL")


@test()
def test_token_changes_seen(front, port):
    """Workers keep token rows; an edit by plain SQL still counts on the
    very next request, in every worker, and a refusal charges nothing."""
    user, token, chan = H.setup_account()
    path = "/kling/v1/" + uniq("m")
    workers = int(H.config["RELAY_WORKERS"])

    def every_worker(expect, what):
        # more requests than workers, so that each one's kept row is tried
        for i in range(2 * workers + 2):
            expect(request(port, "POST", path, auth(token), b"{}"), "%s (#%d)" % (what, i + 1))

    every_worker(expect_ok, "before any edit")
    for sql, args, status, code, msg, what in (
            ("UPDATE tokens SET status=2 WHERE id=%s", token["id"], 401, "token_disabled", "该令牌状态不可用",
             "token disabled by SQL"),
            ("UPDATE tokens SET model_limits_enabled=1, model_limits='suno' WHERE id=%s", token["id"], 403,
             "model_not_allowed", "该令牌无权访问模型 kling", "model limits set by SQL"),
            ("UPDATE tokens SET remain_quota=0 WHERE id=%s", token["id"], 401, "token_quota_exhausted",
             "该令牌额度已用尽", "token quota used up by SQL"),
            ("UPDATE users SET status=2 WHERE id=%s", user["id"], 403, "user_banned", "用户已被封禁",
             "user banned by SQL")):
        H.sql(sql, (args,))
        before = state(user, token, chan)
        every_worker(lambda r, w: expect_gw_error(r, status, code, msg, w), what)
        expect_unchanged(before, user, token, chan, what)
        # undo the edit: the token works again at once
        H.sql("UPDATE tokens SET status=1, model_limits_enabled=0, model_limits='', remain_quota=1000000 "
              "WHERE id=%s", (token["id"],))
        H.sql("UPDATE users SET status=1 WHERE id=%s", (user["id"],))
        every_worker(expect_ok, "after undoing: " + what)


@test()
def test_response_hop_headers_dropped(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    H.stub.script({"path": m, "status": 200, "body": "ok",
                   "headers": [["Connection", "X-Up-Hop"], ["X-Up-Hop", "1"], ["Keep-Alive", "timeout=99"],
                               ["Upgrade", "foo/2"], ["Trailer", "X-Trail"], ["Proxy-Authenticate", "Basic"],
                               ["X-Kept", "yes"]]})
    r = request(port, "GET", "/kling/v1/" + m, auth(token))
    expect_ok(r, "GET")
    eq(r.body, b"ok", "body")
    eq(r.header_all("X-Kept"), ["yes"], "end-to-end header relayed")
    for h in ("X-Up-Hop", "Upgrade", "Trailer", "Proxy-Authenticate"):
        eq(r.header_all(h), [], "upstream hop-by-hop %s in the response" % h)
    for v in r.header_all("Keep-Alive"):
        check("99" not in v, "upstream Keep-Alive relayed: %r" % v)


# ---------------------------------------------------------------------------
# tests: large bodies and streaming


class AnonPeak:
    """The largest growth of any worker's anonymous memory (RssAnon: heap
    and stacks, not the page cache of a spooled body) while it runs,
    sampled every 10 ms: a body held in memory shows for as long as it is
    sent."""

    def __init__(self):
        self.base = self._read()
        self.peak = {}
        self.stop = False
        self.th = threading.Thread(target=self._run, daemon=True)

    def _read(self):
        out = {}
        for pid in H.workers_pids():
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            out[pid] = int(line.split()[1])
            except OSError:
                pass
        return out

    def _run(self):
        while not self.stop:
            for pid, kib in self._read().items():
                if pid in self.base:
                    self.peak[pid] = max(self.peak.get(pid, 0), kib - self.base[pid])
            time.sleep(0.01)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        self.th.join()

    def worst(self):
        return max(self.peak.values()) if self.peak else 0


def worker_hwm_kib():
    out = {}
    for pid in H.workers_pids():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        out[pid] = int(line.split()[1])
        except OSError:
            pass
    return out


_big = {}


def big_upload_data():
    if "d" not in _big:
        rnd = random.Random(1234)
        _big["d"] = rnd.randbytes(24 * MiB)
        _big["sha"] = hashlib.sha256(_big["d"]).hexdigest()
    return _big["d"], _big["sha"]


@test()
def test_upload_24mib(front, port):
    user, token, chan = shared_account()
    data, sha = big_upload_data()
    peak = AnonPeak()
    with peak:
        _uploads(port, token, data, sha, front)
    if "tsan" in os.path.basename(harness.BUILD):
        return  # ThreadSanitizer shadows every byte a worker touches, the mapped body too
    check(peak.worst() < 16 * 1024, "a worker's anonymous memory grew by %d KiB during 24 MiB uploads "
          "(body held in memory?): %r" % (peak.worst(), peak.peak))


def _uploads(port, token, data, sha, front):
    for chunked in (False, True):
        m = uniq("m")
        t0 = time.time()
        r = request(port, "POST", "/runway/v1/upload/" + m, auth(token) + [("Content-Type", "application/octet-stream")],
                    data, chunked=chunked, timeout=120)
        what = "24 MiB upload %s" % ("chunked" if chunked else "with Content-Length")
        expect_ok(r, what)
        rec = one_rec(m, what)
        eq((rec["body_len"], rec["body_sha256"]), (len(data), sha), what + ": upstream length and sha256")
        if not chunked:
            eq(rec_header(rec, "Content-Length"), [str(len(data))], what + ": Content-Length upstream")
        sys.stdout.write("# %s [%s] took %.2fs\n" % (what, front, time.time() - t0))


@test()
def test_download_24mib(front, port):
    user, token, chan = shared_account()
    size = 24 * MiB + 7
    hwm_before = worker_hwm_kib()
    for chunked in (False, True):
        m = uniq("m")
        seed = uniq("seed")
        H.stub.script({"path": m, "mode": "download", "size": size, "seed": seed, "chunked": chunked})
        h = hashlib.sha256()
        n = [0]

        def sink(b):
            h.update(b)
            n[0] += len(b)
        r = request(port, "GET", "/runway/v1/download/" + m, auth(token), sink=sink, timeout=120)
        what = "24 MiB download%s" % (" (chunked upstream)" if chunked else "")
        eq(r.status, 200, what + " status")
        eq((n[0], h.hexdigest()), (size, harness.stub_upstream.download_sha256(seed, size)),
           what + ": length and sha256 at the client")
    hwm_after = worker_hwm_kib()
    grown = {pid: hwm_after[pid] - hwm_before.get(pid, 0) for pid in hwm_after if pid in hwm_before}
    worst = max(grown.values()) if grown else 0
    check(worst < 16 * 1024, "a worker's peak RSS grew by %d KiB during 24 MiB downloads (response buffered?): %r"
          % (worst, grown))


@test()
def test_expect_100_continue(front, port):
    user, token, chan = shared_account()
    data = os.urandom(3 * MiB)
    m = uniq("m")
    r = request(port, "POST", "/kling/v1/upload/" + m, auth(token) + [("Expect", "100-continue")], data, timeout=60)
    expect_ok(r, "upload with Expect: 100-continue")
    rec = one_rec(m)
    eq((rec["body_len"], rec["body_sha256"]), (len(data), hashlib.sha256(data).hexdigest()), "upstream body")
    eq(rec_header(rec, "Expect"), [], "client Expect header forwarded")


@test()
def test_header_values_exact(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    long_v = "".join(random.choice("abcdefghij0123456789-_=;,") for _ in range(3000))
    hdrs = auth(token) + [("X-Long", long_v), ("X-Utf8", "中文 ä"), ("X-Empty-Ish", "a"),
                          ("X-Dup", "one"), ("X-Dup", "two")]
    r = request(port, "POST", "/kling/v1/" + m, hdrs, b"{}")
    expect_ok(r, "POST with long and UTF-8 header values")
    rec = one_rec(m)
    eq(rec_header(rec, "X-Long"), [long_v], "3000-byte header value upstream")
    eq([v.encode("latin-1").decode("utf-8", "replace") for v in rec_header(rec, "X-Utf8")], ["中文 ä"],
       "UTF-8 header value upstream")
    dup = rec_header(rec, "X-Dup")
    check(dup in (["one, two"], ["one", "two"], ["one,two"]), "repeated X-Dup upstream: %r" % dup)


@test()
def test_sse_streams(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    ev = "sse-" + m
    events = ["event: progress\ndata: {\"step\":1}\n\n", "event: done\ndata: {\"step\":2}\n\n"]
    H.stub.script({"path": m, "mode": "sse", "event": ev, "timeout": 30, "events": events})
    c = Conn(port, timeout=15)
    released = False
    try:
        c.send_request("POST", "/kling/v1/stream/" + m, auth(token) + [("Accept", "text/event-stream")], b"{}")
        c.read_head("POST")
        eq(c.status, 200, "SSE status")
        ct = dict((k.lower(), v) for k, v in c.headers).get("content-type", "")
        check(ct.startswith("text/event-stream"), "SSE Content-Type %r" % ct)
        got = b""
        t0 = time.time()
        try:
            while events[0].encode() not in got:
                piece = c.read_some()
                if not piece:
                    raise Fail("SSE body ended before event 1: %r" % got)
                got += piece
        except OSError as e:
            raise Fail("event 1 did not reach the client within 15 s while the upstream held the stream open "
                       "(response buffered?): %r, got %r" % (e, got))
        check(events[1].encode() not in got, "event 2 arrived before the release")
        sys.stdout.write("# SSE event 1 [%s] arrived after %.3fs\n" % (front, time.time() - t0))
        H.stub.release(ev)
        released = True
        got += c.read_body()
        eq(got, "".join(events).encode(), "SSE body")
    finally:
        if not released:
            H.stub.release(ev)
        c.close()


# ---------------------------------------------------------------------------
# tests: upstream failures are not charged


@test()
def test_upstream_errors_not_charged(front, port):
    user, token, chan = H.setup_account(auto_ban=0)
    for status in (400, 401, 403, 404, 429, 500, 502, 503):
        m = uniq("m")
        body = ('{"error":"upstream says %d"}' % status).encode()
        H.stub.script({"path": m, "status": status, "body": body.decode(),
                       "headers": [["X-Upstream-Thing", "err%d" % status], ["Content-Type", "application/json"]]})
        before = state(user, token, chan)
        r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
        if status == 429:
            # an account at its limit: every key refused the job (the
            # channel has one), which the client is told as new-api does
            expect_gw_error(r, 429, "channel_capacity_exhausted", "当前分组上游负载已饱和，请稍后再试",
                            "upstream 429 on the only key")
        else:
            eq((r.status, r.body), (status, body), "upstream %d relayed" % status)
            eq(r.header("X-Upstream-Thing"), "err%d" % status, "header of upstream %d" % status)
        check(r.header("X-Request-Id"), "no X-Request-Id on upstream %d" % status)
        expect_unchanged(before, user, token, chan, "after upstream %d (auto_ban 0)" % status, wait=0.5)


@test()
def test_upstream_401_auto_ban(front, port):
    # new-api's auto_ban: a channel whose upstream answers 401 may be
    # disabled (status 3). Either way the request is not charged, and a
    # disabled channel is no longer used.
    user, token, chan = H.setup_account(auto_ban=1)
    m = uniq("m")
    H.stub.script({"path": m, "status": 401, "body": '{"error":"bad key"}'})
    before = state(user, token, None)
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
    eq((r.status, r.body), (401, b'{"error":"bad key"}'), "upstream 401 relayed")
    expect_unchanged(before, user, token, None, "after upstream 401", wait=0.5)
    st = H.sql("SELECT status FROM channels WHERE id=%s", (chan["id"],))[0]["status"]
    check(st in (1, 3), "channel status after a 401: %r" % st)
    if st == 3:
        r = request(port, "POST", "/kling/v1/" + uniq("m"), auth(token), b"{}")
        expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                        "request after the channel was auto-disabled")
    sys.stdout.write("# [%s] channel status after an upstream 401 with auto_ban=1: %d\n" % (front, st))


@test()
def test_upstream_unreachable(front, port):
    dead = harness.free_port()
    user, token, chan = H.setup_account(base_url="http://127.0.0.1:%d" % dead)
    before = state(user, token, chan)
    for method in ("POST", "GET"):
        r = request(port, method, "/kling/v1/" + uniq("m"), auth(token), b"{}" if method == "POST" else None)
        expect_transport_error(r, 502, "connection refused", "%s to a port where nothing listens" % method)
    expect_unchanged(before, user, token, chan, "unreachable upstream", wait=0.5)


@test()
def test_upstream_connection_lost(front, port):
    user, token, chan = H.setup_account()
    m = uniq("m")
    H.stub.script({"path": m, "mode": "close"})
    before = state(user, token, chan)
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
    expect_transport_error(r, 502, "upstream connection lost", "upstream closed without answering")
    expect_unchanged(before, user, token, chan, "upstream connection lost", wait=0.5)


@test()
def test_failover_to_next_channel(front, port):
    user = H.make_user()
    token = H.make_token(user)
    dead = H.make_channel(user["group"], base_url="http://127.0.0.1:%d" % harness.free_port(), priority=10)
    good = H.make_channel(user["group"], priority=0)
    m = uniq("m")
    before = state(user, token, good)
    r = request(port, "POST", "/kling/v1/" + m, auth(token), b"{}")
    expect_ok(r, "refused first channel, working second")
    rec = one_rec(m)
    eq(rec_header(rec, "Authorization"), ["Bearer " + good["key"]], "Authorization of the channel that answered")
    expect_charged(before, user, token, good, 1000, r.header("X-Request-Id"), "POST", "/kling/v1/" + m, "failover")
    eq(H.sql("SELECT used_quota FROM channels WHERE id=%s", (dead["id"],))[0]["used_quota"], 0,
       "used_quota of the refused channel")


@test()
def test_priority(front, port):
    user = H.make_user()
    token = H.make_token(user)
    hi = H.make_channel(user["group"], priority=5)
    H.make_channel(user["group"], priority=1)
    for _ in range(6):
        m = uniq("m")
        expect_ok(request(port, "POST", "/kling/v1/" + m, auth(token), b"{}"), "POST")
        eq(rec_header(one_rec(m), "Authorization"), ["Bearer " + hi["key"]], "channel used (highest priority)")


# ---------------------------------------------------------------------------
# tests: quota


@test()
def test_quota_amounts(front, port):
    cases = [
        ({"passthrough_quota": 2500}, "POST", 2500),
        ({"PassthroughQuota": 3000}, "PUT", 3000),
        (None, "POST", 1000),
        ({}, "DELETE", 1000),
        ({"passthrough_quota": 0}, "PATCH", 1000),
        ({"passthrough_quota": 1234, "proxy": ""}, "POST", 1234),
    ]
    for setting, method, n in cases:
        user, token, chan = H.setup_account(quota=10 ** 9, remain_quota=10 ** 8, setting=setting)
        H.sql("UPDATE tokens SET accessed_time=1 WHERE id=%s", (token["id"],))
        token_row = H.sql("SELECT * FROM tokens WHERE id=%s", (token["id"],))[0]
        check(token_row["accessed_time"] == 1, "setup")
        path = "/jimeng/v1/%s?x=1" % uniq("m")
        before = state(user, token, chan)
        t0 = time.time()
        r = request(port, method, path, auth(token), b"{}" if method != "DELETE" else None)
        expect_ok(r, "%s setting %r" % (method, setting))
        expect_charged(before, user, token, chan, n, r.header("X-Request-Id"), method, path,
                       "setting %r" % (setting,), t0=t0)


@test()
def test_quota_free_requests(front, port):
    user, token, chan = H.setup_account(setting={"passthrough_quota": 2500})
    before = state(user, token, chan)
    for method in ("GET", "HEAD", "OPTIONS"):
        expect_ok(request(port, method, "/kling/v1/" + uniq("m"), auth(token)), method)
    expect_unchanged(before, user, token, chan, "GET/HEAD/OPTIONS are free", wait=0.5)
    user, token, chan = H.setup_account(setting={"passthrough_quota": -1})
    before = state(user, token, chan)
    expect_ok(request(port, "POST", "/kling/v1/" + uniq("m"), auth(token), b"{}"), "POST, negative quota")
    expect_unchanged(before, user, token, chan, "negative passthrough_quota is free", wait=0.5)


@test()
def test_quota_query_quota(front, port):
    user, token, chan = H.setup_account(setting={"passthrough_quota": 2500, "passthrough_query_quota": 700})
    path = "/kling/v1/videos/%s?page=1" % uniq("m")
    before = state(user, token, chan)
    r = request(port, "GET", path, auth(token))
    expect_ok(r, "GET with passthrough_query_quota")
    expect_charged(before, user, token, chan, 700, r.header("X-Request-Id"), "GET", path, "passthrough_query_quota")


@test()
def test_quota_unlimited_token(front, port):
    user, token, chan = H.setup_account(quota=10 ** 6, remain_quota=0, unlimited=1)
    path = "/suno/v1/" + uniq("m")
    before = state(user, token, chan)
    r = request(port, "POST", path, auth(token), b"{}")
    expect_ok(r, "unlimited token")
    expect_charged(before, user, token, chan, 1000, r.header("X-Request-Id"), "POST", path, "unlimited token",
                   unlimited=True)


def _concurrent(port, user, token, n=60):
    barrier = threading.Barrier(n)
    results = [None] * n

    def one(i):
        try:
            c = Conn(port, timeout=60)
            try:
                barrier.wait(10)
                c.send_request("POST", "/kling/v1/conc/%d" % i, auth(token), b'{"i":%d}' % i)
                c.read_head("POST")
                results[i] = harness.Response(c.status, c.reason, c.headers, c.read_body())
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001
            results[i] = e
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    return results


@test()
def test_concurrent_token_limit(front, port):
    user, token, chan = H.setup_account(quota=10 ** 9, remain_quota=10000)
    results = _concurrent(port, user, token)
    errs = [r for r in results if not isinstance(r, harness.Response)]
    check(not errs, "client errors: %r" % errs[:3])
    ok = [r for r in results if r.status == 200]
    denied = [r for r in results if r.status != 200]
    kinds = {}
    for r in denied:
        rid = r.header("X-Request-Id") or ""
        if r.body == gw_error_body(rid, "insufficient_quota", "额度不足") and r.status == 403:
            kinds["403 insufficient_quota"] = kinds.get("403 insufficient_quota", 0) + 1
        elif r.body == gw_error_body(rid, "token_quota_exhausted", "该令牌额度已用尽") and r.status == 401:
            # the contract's check order: a request authenticated after the
            # quota reached 0 sees remain_quota <= 0 first
            kinds["401 token_quota_exhausted"] = kinds.get("401 token_quota_exhausted", 0) + 1
        else:
            raise Fail("unexpected answer among the denied: %s" % short(r))
    sys.stdout.write("# 60 concurrent [%s]: %d ok, %r\n" % (front, len(ok), kinds))
    eq(len(ok), 10, "requests answered 200 (remain_quota 10000, 1000 each)")
    H.wait_settled(token)
    t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
    eq((t["remain_quota"], t["used_quota"]), (0, 10000), "token remain_quota, used_quota")
    eq(len(H.logs(token)), 10, "logs rows")
    u = H.sql("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
    eq((u["quota"], u["used_quota"], u["request_count"]), (10 ** 9 - 10000, 10000, 10), "user quota, used, count")
    rids = sorted(json.loads(r["other"])["request_id"] for r in H.logs(token))
    eq(rids, sorted(r.header("X-Request-Id") for r in ok), "request ids of the logs rows")


@test()
def test_concurrent_user_limit(front, port):
    user, token, chan = H.setup_account(quota=10000, remain_quota=10 ** 9)
    results = _concurrent(port, user, token)
    errs = [r for r in results if not isinstance(r, harness.Response)]
    check(not errs, "client errors: %r" % errs[:3])
    ok = [r for r in results if r.status == 200]
    for r in results:
        if r.status != 200:
            expect_gw_error(r, 403, "insufficient_quota", "额度不足", "denied request")
    eq(len(ok), 10, "requests answered 200 (user quota 10000, 1000 each)")
    u = H.sql("SELECT quota, used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
    eq((u["quota"], u["used_quota"], u["request_count"]), (0, 10000, 10), "user quota, used, count")
    t = H.sql("SELECT remain_quota, used_quota FROM tokens WHERE id=%s", (token["id"],))[0]
    eq((t["remain_quota"], t["used_quota"]), (10 ** 9 - 10000, 10000), "token remain_quota, used_quota")
    H.wait_settled(token)
    eq(len(H.logs(token)), 10, "logs rows")


# ---------------------------------------------------------------------------
# tests: connection reuse, paths


@test()
def test_upstream_connection_reuse(front, port):
    user, token, chan = shared_account()
    H.stub.reset()
    errors = []

    def loop(k):
        for i in range(50):
            try:
                r = request(port, "POST" if i % 2 else "GET", "/pika/v1/reuse/%d/%d" % (k, i), auth(token),
                            b"{}" if i % 2 else None)
                if r.status != 200:
                    errors.append(short(r))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
    ts = [threading.Thread(target=loop, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    check(not errors, "%d of 200 requests failed, e.g. %s" % (len(errors), errors[:2]))
    seen = len(H.stub.matching("/reuse/"))
    eq(seen, 200, "requests seen by the stub")
    conns = H.stub.connections()
    sys.stdout.write("# [%s] 200 requests used %d upstream connections\n" % (front, conns["used"]))
    # a process keeps as many connections as it had transfers at once: at
    # most the 4 clients, in each of the pool's processes
    check(conns["used"] <= 4 * H.workers, "200 requests of 4 clients used %d upstream TCP connections, "
          "more than 4 for each of the %d worker processes" % (conns["used"], H.workers))


TRAVERSAL = [
    b"/kling/../@",
    b"/kling/%2e%2e/@",
    b"/kling/%2E%2E/@",
    b"/kling/%2e%2E/@",
    b"/kling/.%2e/@",
    b"/kling/./@",
    b"/kling/%2e/@",
    b"/kling/@/..",
    b"/kling/@/.",
    b"/kling/@/../x?q=1",
    b"/kling/v1/@%00x",
    b"/kling/v1/@%0ax",
    b"/kling/v1/@%0d%0aX-Injected:%201",
    b"/kling/v1/@%1f",
    b"/kling/v1/@%7f",
    b"/kling/v1/@\x01x",
    b"/kling/v1/@\x1fx",
    b"/kling/v1/@\x7fx",
]


@test()
def test_bad_paths(front, port):
    user, token, chan = shared_account()
    m = uniq("m")
    front_rejected = []
    for raw in TRAVERSAL:
        path = raw.replace(b"@", m.encode())
        for method in ("GET", "POST"):
            r = request(port, method, path, auth(token), b"{}" if method == "POST" else None)
            what = "%s %r" % (method, path)
            if r.header("X-Request-Id") is None and r.status == 400:
                front_rejected.append(path)   # the front server refused it itself: also never forwarded
                continue
            expect_gw_error(r, 400, "invalid_path", "非法的请求路径", what)
    if front_rejected:
        sys.stdout.write("# [%s] front itself answered 400 for %r\n" % (front, sorted(set(front_rejected))))
    eq([r["path"] for r in stub_saw(m)], [], "bad paths that reached the stub")


# ---------------------------------------------------------------------------
# tests: log file


@test(fronts=False)
def test_log_file():
    user, token, chan = shared_account()
    r = request(H.lighttpd_port, "POST", "/kling/v1/" + uniq("m"), auth(token), b"{}")
    expect_ok(r, "POST")
    rid = r.header("X-Request-Id")
    deadline = time.time() + 3
    lines = []
    while time.time() < deadline:
        with open(H.log_file, "rb") as f:
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if rid in ln]
        if lines:
            break
        time.sleep(0.1)
    eq(len(lines), 1, "LOG_FILE lines with the request id %s" % rid)
    with open(H.log_file, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    keys = [row["key"] for row in H.sql("SELECT `key` FROM tokens")]
    keys += [row["key"] for row in H.sql("SELECT `key` FROM channels")]
    leaked = [k for k in keys if k and len(k) >= 16 and k in text]
    eq(leaked, [], "token or channel keys written to LOG_FILE")


# ---------------------------------------------------------------------------
# tests: more forwarding behaviour


@test()
def test_redirect_not_followed(front, port):
    user, token, chan = H.setup_account()
    m = uniq("m")
    loc = "http://127.0.0.1:%d/kling/v1/redirected-%s" % (H.stub_port, m)
    H.stub.script({"path": m + "$", "status": 302, "headers": [["Location", loc]], "body": "moved"})
    before = state(user, token, chan)
    path = "/kling/v1/" + m
    r = request(port, "POST", path, auth(token), b"{}")
    eq((r.status, r.body), (302, b"moved"), "302 relayed")
    eq(r.header("Location"), loc, "Location relayed")
    eq(stub_saw("redirected-" + m), [], "requests to the redirect target")
    expect_charged(before, user, token, chan, 1000, r.header("X-Request-Id"), "POST", path, "302")


@test()
def test_channel_keys_round_robin(front, port):
    user = H.make_user()
    token = H.make_token(user)
    ka, kb = "keyA-" + harness.rand_key(20), "keyB-" + harness.rand_key(20)
    H.make_channel(user["group"], key=ka + "\n" + kb)
    seen = []
    for _ in range(16):
        m = uniq("m")
        expect_ok(request(port, "GET", "/kling/v1/" + m, auth(token)), "GET")
        seen += rec_header(one_rec(m), "Authorization")
    eq(sorted(set(seen)), sorted(["Bearer " + ka, "Bearer " + kb]), "Authorization values upstream over 16 requests")


@test()
def test_client_gone_mid_response(front, port):
    user, token, chan = H.setup_account()
    m = uniq("m")
    H.stub.script({"path": m, "mode": "download", "size": 48 * MiB, "seed": "gone"})
    path = "/kling/v1/gone/" + m
    before = state(user, token, chan)
    c = Conn(port, timeout=30)
    try:
        c.send_request("POST", path, auth(token), b"{}")
        c.read_head("POST")
        eq(c.status, 200, "status")
        rid = dict((k.lower(), v) for k, v in c.headers).get("x-request-id")
        got = 0
        while got < 256 * 1024:
            b = c.read_some()
            check(b, "body ended early")
            got += len(b)
    finally:
        c.close()
    expect_charged(before, user, token, chan, 1000, rid, "POST", path, "client gone mid-response")
    for i in range(8):
        expect_ok(request(port, "GET", "/kling/v1/after-gone/%d" % i, auth(token)), "request after a client left")


@test(fronts=False)
def test_ctl_accounts():
    group = harness.rand_name("g")
    username = harness.rand_name("u")
    p = H.ctl("add-user", username, "--quota", "100000", "--group", group)
    out = p.stdout.decode().strip()
    mt = __import__("re").search(r"^(\d+)$|\bid[ =:]*(\d+)", out)
    check(mt, "add-user printed no id: %r" % out)
    uid = int(mt.group(1) or mt.group(2))
    eq(H.sql("SELECT username, quota, `group` FROM users WHERE id=%s", (uid,)),
       [{"username": username, "quota": 100000, "group": group}], "user row made by add-user")
    p = H.ctl("add-token", "--user", username, "--name", "ctl-token", "--quota", "50000")
    key = p.stdout.decode().strip()
    check(__import__("re").fullmatch(r"sk-[0-9A-Za-z]{48}", key), "add-token printed %r" % key)
    ckey = "ctl-chan-" + harness.rand_key(24)
    p = H.ctl("add-channel", "--name", "ctl channel", "--base-url", "http://127.0.0.1:%d" % H.stub_port,
              "--key", ckey, "--models", "kling,suno", "--group", group, "--setting", '{"PassthroughQuota": 1500}')
    cid = p.stdout.decode().strip()
    check(cid.isdigit(), "add-channel printed %r" % cid)
    stored = H.sql("SELECT `key`, type, status FROM channels WHERE id=%s", (int(cid),))[0]
    eq((stored["type"], stored["status"]), (55, 1), "channel type and status")
    check(stored["key"] == ckey or (stored["key"].startswith("enc:v1:") and ckey not in stored["key"]),
          "channel key stored as %r" % stored["key"])
    ab = H.sql("SELECT `group`, model, enabled FROM abilities WHERE channel_id=%s ORDER BY model", (int(cid),))
    eq([(a["group"], a["model"], a["enabled"]) for a in ab], [(group, "kling", 1), (group, "suno", 1)],
       "abilities rows")
    m = uniq("m")
    r = request(H.lighttpd_port, "POST", "/suno/v1/" + m, [("Authorization", "Bearer " + key)], b"{}")
    expect_ok(r, "request with a token made by bltcy-ctl")
    eq(rec_header(one_rec(m), "Authorization"), ["Bearer " + ckey], "Authorization upstream")
    out = H.ctl("token-quota", key).stdout.decode()
    check("48500" in out and "1500" in out, "token-quota output %r lacks remain 48500 / used 1500" % out)
    for bad in (["--base-url", "http://127.0.0.1:1/v1"], ["--base-url", "ftp://127.0.0.1:1"],
                ["--models", "kling-v1-6"], ["--models", "runwayml"], ["--setting", '{"PassthroughQuota": "x"}']):
        args = {"--base-url": "http://127.0.0.1:1", "--models": "kling", "--setting": "{}"}
        args[bad[0]] = bad[1]
        p = H.ctl("add-channel", "--name", "bad", "--key", "k", "--group", group,
                  *[x for kv in args.items() for x in kv], check=False)
        check(p.returncode != 0, "add-channel accepted %s %r" % tuple(bad))


# ---------------------------------------------------------------------------
# tests: task affinity and ownership


_stub2 = {}


def stub2():
    if "s" not in _stub2:
        try:
            _stub2["s"] = H.start_stub("stub2", "stubB")
        except SetupError as e:
            raise Fail("second stub did not start: %s" % e)
    return _stub2["s"]


def _task_rules(stub, m):
    stub.script({"method": "POST", "path": "^/kling/v1/videos/%s" % m, "mode": "task_create"},
                {"method": "GET", "path": "^/kling/v1/videos/%s" % m, "mode": "task_get"})


@test()
def test_error_task_not_exist(front, port):
    owner = H.make_user()
    other = H.make_user(group=owner["group"])
    chan = H.make_channel(owner["group"])
    t_owner = H.make_token(owner)
    t_other = H.make_token(other)
    m = uniq("m")
    _task_rules(H.stub, m)
    r = request(port, "POST", "/kling/v1/videos/%s/text2video" % m, auth(t_owner), b'{"prompt":"cat"}')
    expect_ok(r, "task creation")
    tid = r.json()["task_id"]
    n_before = len(stub_saw(tid))
    before = state(other, t_other, chan)
    for path in ("/kling/v1/videos/%s/text2video/%s" % (m, tid), "/kling/v1/videos/%s/query?task_id=%s" % (m, tid)):
        r = request(port, "GET", path, auth(t_other))
        expect_gw_error(r, 404, "task_not_exist", "任务不存在", "another user's task id: GET %s" % path)
    eq(len(stub_saw(tid)), n_before, "requests for another user's task that reached the stub")
    expect_unchanged(before, other, t_other, chan, "another user's task id")
    r = request(port, "GET", "/kling/v1/videos/%s/text2video/%s" % (m, tid), auth(t_owner))
    expect_ok(r, "owner polls the task")
    eq(r.json().get("task_id"), tid, "task polled by its owner")


@test()
def test_task_affinity(front, port):
    s2 = stub2()
    user = H.make_user()
    token = H.make_token(user)
    H.make_channel(user["group"])
    H.make_channel(user["group"], base_url="http://127.0.0.1:%d" % s2.port)
    m = uniq("m")
    _task_rules(H.stub, m)
    _task_rules(s2, m)
    creators = set()
    for i in range(6):
        r = request(port, "POST", "/kling/v1/videos/%s/text2video" % m, auth(token), b'{"prompt":"cat"}')
        expect_ok(r, "task creation")
        tid = r.json()["task_id"]
        creators.add(tid.split("-")[0])
        for j in range(5):
            r = request(port, "GET", "/kling/v1/videos/%s/text2video/%s" % (m, tid), auth(token))
            if r.status != 200:
                raise Fail("poll %d of task %s (created by %s) went to the other channel: %s"
                           % (j, tid, tid.split("-")[0], short(r)))
            eq(r.json().get("stub"), tid.split("-")[0], "stub that answered the poll")
    sys.stdout.write("# [%s] tasks were created on %s\n" % (front, sorted(creators)))


# ---------------------------------------------------------------------------
# tests: a second pool with its own configuration (timeouts, services,
# signals)


_pool = {}


def pool2():
    if "p" not in _pool:
        try:
            _pool["p"] = H.start_pool("pool2", workers=2, RELAY_HEADER_TIMEOUT=2,
                                      RELAY_SERVICES="minimax:minimax")
        except SetupError as e:
            raise Fail("second pool did not start: %s" % e)
    return _pool["p"]


@test(fronts=False)
def test_pool_header_timeout():
    p = pool2()
    user, token, chan = H.setup_account()
    problems = []
    for method, body in (("GET", None), ("POST", b"{}"), ("PUT", b"x" * 100000)):
        m = uniq("m")
        ev = "ev-" + m
        H.stub.script({"path": m, "mode": "hang", "hang": 8, "event": ev, "body": "late"})
        before = state(user, token, chan)
        t0 = time.time()
        try:
            r = request(p.port, method, "/kling/v1/" + m, auth(token), body, timeout=30)
        finally:
            H.stub.release(ev)
        took = time.time() - t0
        try:
            expect_transport_error(r, 504, "response header timeout",
                                   "%s, upstream silent past RELAY_HEADER_TIMEOUT=2 (answered after %.1fs)"
                                   % (method, took))
            check(1.5 < took < 6, "%s: 504 came after %.1fs with RELAY_HEADER_TIMEOUT=2" % (method, took))
            expect_unchanged(before, user, token, chan, "%s header timeout" % method, wait=0.5)
        except Fail as e:
            problems.append(str(e))
    check(not problems, "; ".join(problems))


@test(fronts=False)
def test_pool_relay_services():
    p = pool2()
    user = H.make_user()
    token = H.make_token(user)
    chan = H.make_channel(user["group"], models="minimax,kling")
    path = "/minimax/v1/video_generation?x=1"
    before = state(user, token, chan)
    r = request(p.port, "POST", path, auth(token), b"{}")
    expect_ok(r, "POST /minimax/ with RELAY_SERVICES=minimax:minimax")
    expect_charged(before, user, token, chan, 1000, r.header("X-Request-Id"), "POST", path, "minimax")
    r = request(H.lighttpd_port, "POST", "/minimax/v1/x", auth(token), b"{}")
    expect_gw_error(r, 404, "invalid_url", "Invalid URL (POST /minimax/v1/x)", "/minimax/ on the main pool")


@test(fronts=False)
def test_pool_sigusr1_reopens_log():
    p = pool2()
    user, token, chan = shared_account()
    os.rename(p.log_file, p.log_file + ".1")
    os.kill(p.pid, signal.SIGUSR1)

    def logged():
        r = request(p.port, "GET", "/kling/v1/" + uniq("m"), auth(token))
        expect_ok(r, "GET")
        try:
            with open(p.log_file, "rb") as f:
                return r.header("X-Request-Id").encode() in f.read()
        except FileNotFoundError:
            return False
    try:
        harness.wait_for(logged, 5, "a request logged in the reopened LOG_FILE", interval=0.2)
    except SetupError as e:
        raise Fail(str(e))


@test(fronts=False)
def test_pool_sighup_reload():
    p = pool2()
    user = H.make_user()
    token = H.make_token(user)
    H.make_channel(user["group"], models="hailuo,kling")
    r = request(p.port, "POST", "/hailuo/v1/x", auth(token), b"{}")
    expect_gw_error(r, 404, "invalid_url", "Invalid URL (POST /hailuo/v1/x)", "before the reload")
    with open(p.config_path, "a") as f:
        f.write("RELAY_SERVICES=minimax:minimax,hailuo:hailuo\n")
    old = set(p.workers_pids())
    os.kill(p.pid, signal.SIGHUP)
    try:
        harness.wait_for(lambda: len(set(p.workers_pids()) - old) >= p.workers and not (set(p.workers_pids()) & old),
                         10, "all workers replaced after SIGHUP (old %r)" % sorted(old), interval=0.1)
    except SetupError as e:
        raise Fail("%s, now %r" % (e, p.workers_pids()))
    eq(p.proc.poll(), None, "master still running after SIGHUP")
    expect_ok(request(p.port, "POST", "/hailuo/v1/" + uniq("m"), auth(token), b"{}"),
              "POST /hailuo/ after adding it to RELAY_SERVICES and SIGHUP")


@test(fronts=False)
def test_pool_sigterm_finishes_in_flight():
    p = pool2()
    user, token, chan = H.setup_account()
    m = uniq("m")
    ev = "ev-" + m
    H.stub.script({"path": m, "mode": "hang", "hang": 20, "event": ev, "status": 201, "body": "finished"})
    path = "/kling/v1/" + m
    before = state(user, token, chan)
    out = {}
    th = harness.request_in_thread(out, p.port, "POST", path, auth(token), b"{}", timeout=30)
    try:
        check(H.stub.wait(m, timeout=10), "request never reached the stub")
        os.kill(p.pid, signal.SIGTERM)
        time.sleep(0.5)
        check(p.proc.poll() is None, "master exited at once on SIGTERM with a request in flight")
    finally:
        H.stub.release(ev)
        th.join(20)
    check("r" in out, "in-flight request failed after SIGTERM: %r" % out.get("e"))
    eq((out["r"].status, out["r"].body), (201, b"finished"), "in-flight request answered after SIGTERM")
    try:
        p.proc.wait(15)
    except Exception:  # noqa: BLE001
        raise Fail("master still running 15 s after SIGTERM with nothing in flight")
    expect_charged(before, user, token, chan, 1000, out["r"].header("X-Request-Id"), "POST", path, "SIGTERM")
    left = [pid for pid in harness.children_of(p.pid)]
    eq(left, [], "workers left after the master exited")
    p.stop()


@test(fronts=False)
def test_pool_lease_metering():
    try:
        p = H.start_pool("pool3", workers=2, METERING="lease")
    except SetupError as e:
        raise Fail("METERING=lease pool did not start: %s" % e)
    try:
        # a token with quota for exactly 10 requests: 30 concurrent, never overdrawn
        u1, t1, c1 = H.setup_account(quota=10 ** 9, remain_quota=10000)
        results = _concurrent(p.port, u1, t1, n=30)
        errs = [r for r in results if not isinstance(r, harness.Response)]
        check(not errs, "client errors: %r" % errs[:3])
        ok = [r for r in results if r.status == 200]
        for r in results:
            if r.status != 200:
                rid = r.header("X-Request-Id") or ""
                check(r.body in (gw_error_body(rid, "insufficient_quota", "额度不足"),
                                 gw_error_body(rid, "token_quota_exhausted", "该令牌额度已用尽")),
                      "unexpected answer among the denied: %s" % short(r))
        eq(len(ok), 10, "requests answered 200 in lease mode (remain_quota 10000, 1000 each)")
        # a rich token: what is not spent goes back
        u2, t2, c2 = H.setup_account(quota=10 ** 9, remain_quota=100000)
        for i in range(5):
            expect_ok(request(p.port, "POST", "/kling/v1/lease/%d" % i, auth(t2), b"{}"), "lease POST")
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.proc.wait(20)
        except Exception:  # noqa: BLE001
            raise Fail("lease pool still running 20 s after SIGTERM")
    finally:
        p.stop()
    for (u, t, c, n, start) in ((u1, t1, c1, 10, 10000), (u2, t2, c2, 5, 100000)):
        s = state(u, t, c)
        eq((s["token"]["remain_quota"], s["token"]["used_quota"]), (start - 1000 * n, 1000 * n),
           "token remain_quota, used_quota after the lease pool stopped (%d requests)" % n)
        eq((s["user"]["quota"], s["user"]["used_quota"], s["user"]["request_count"]),
           (10 ** 9 - 1000 * n, 1000 * n, n), "user quota, used_quota, request_count (%d requests)" % n)
        eq(s["chan"]["used_quota"], 1000 * n, "channel used_quota (%d requests)" % n)
        eq(s["logs"], n, "logs rows (%d requests)" % n)
    left = H.sql("SELECT COALESCE(SUM(amount), 0) AS a FROM bltcy_leases WHERE token_id IN (%s, %s)",
                 (t1["id"], t2["id"]))[0]["a"]
    eq(int(left), 0, "quota still leased after the pool stopped")


# ---------------------------------------------------------------------------
# tests: crashes and outages (last: they disturb the pool and the DB)


@test()
def test_worker_killed_mid_request(front, port):
    user, token, chan = H.setup_account()
    m = uniq("kill")
    ev = "ev-" + m
    H.stub.script({"path": m, "mode": "hang", "hang": 60, "event": ev, "status": 200, "body": "late"})
    path = "/kling/v1/" + m
    before = state(user, token, chan)
    out = {}
    th = harness.request_in_thread(out, port, "POST", path, auth(token), b'{"prompt":"x"}', timeout=90)
    try:
        found = H.stub.wait(m, timeout=15)
        check(found, "the request never reached the stub")
        rec = found[0]
        pids = H.workers_pids()
        victim = harness.pid_with_local_port(pids, rec["peer_port"], H.stub_port)
        check(victim, "no worker among %r holds the TCP connection from port %d to the stub"
              % (pids, rec["peer_port"]))
        # charged, durably, before it was forwarded
        t = H.sql("SELECT remain_quota FROM tokens WHERE id=%s", (token["id"],))[0]
        eq(t["remain_quota"], before["token"]["remain_quota"] - 1000,
           "token remain_quota while the request is in flight")
        os.kill(victim, signal.SIGKILL)
        th.join(30)
        check(not th.is_alive(), "the client of the killed worker got no answer within 30 s")
        if "r" in out:
            check(out["r"].status != 200, "the killed request answered 200: %s" % short(out["r"]))
            sys.stdout.write("# [%s] client of the killed worker got %d\n" % (front, out["r"].status))
        new = harness.wait_for(lambda: (lambda p: p if len(p) >= H.workers and victim not in p else None)(
            H.workers_pids()), 10, "a replacement worker")
        check(set(new) - set(pids), "no new worker pid (before %r, after %r)" % (pids, new))
    except SetupError as e:
        raise Fail(str(e))
    finally:
        H.stub.release(ev)
        th.join(5)
    # the pool keeps serving
    for i in range(8):
        expect_ok(request(port, "GET", "/kling/v1/after-kill/%d" % i, auth(token)), "request after the kill")
    row = expect_charged(before, user, token, chan, 1000, None, "POST", path, "killed request", recovered=True)
    other = json.loads(row["other"])
    check(other.get("request_id"), "logs.other of the recovered charge has no request_id: %r" % row["other"])


@test(fronts=False)
def test_database_restart():
    user, token, chan = H.setup_account()
    stop = threading.Event()
    results = []
    lock = threading.Lock()

    def load(k):
        i = 0
        while not stop.is_set():
            port = H.lighttpd_port if (i + k) % 2 else H.nginx_port
            try:
                r = request(port, "POST", "/kling/v1/dbload/%d/%d" % (k, i), auth(token), b"{}", timeout=60)
                with lock:
                    results.append(r)
            except Exception as e:  # noqa: BLE001
                with lock:
                    results.append(e)
            i += 1
            time.sleep(0.02)
    before = state(user, token, chan)
    ts = [threading.Thread(target=load, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    try:
        time.sleep(1.0)
        H.stop_db()
        time.sleep(0.5)
        for front, port in H.fronts.items():
            for i in range(8):
                r = request(port, "POST", "/kling/v1/dbdown/%d" % i, auth(token), b"{}", timeout=30)
                expect_gw_error(r, 503, "database_unavailable", "数据库暂时不可用，请稍后重试",
                                "[%s] POST while MariaDB is stopped" % front)
            r = request(port, "GET", "/bltcy/health", timeout=30)
            eq(r.status, 503, "[%s] /bltcy/health while MariaDB is stopped" % front)
        try:
            H.start_db()
        except SetupError as e:
            raise Fail("MariaDB did not come back: %s" % e)
        t_up = time.time()
        for front, port in H.fronts.items():
            deadline = time.time() + 10
            while True:
                r = request(port, "POST", "/kling/v1/dbup-first", auth(token), b"{}", timeout=30)
                if r.status == 200 or time.time() > deadline:
                    break
                time.sleep(0.1)
            expect_ok(r, "[%s] first request after MariaDB is back (10 s of retries)" % front)
            for i in range(16):
                expect_ok(request(port, "POST", "/kling/v1/dbup/%d" % i, auth(token), b"{}", timeout=30),
                          "[%s] request %d after MariaDB is back" % (front, i))
            r = request(port, "GET", "/bltcy/health")
            eq(r.status, 200, "[%s] /bltcy/health after MariaDB is back" % front)
        sys.stdout.write("# relay served again %.2fs after MariaDB was ready\n" % (time.time() - t_up))
        time.sleep(1.0)
    finally:
        stop.set()
        for t in ts:
            t.join(60)
        if "mariadbd" not in H.procs:
            H.start_db()
    bad = []
    n_ok = 0
    for r in results:
        if isinstance(r, Exception):
            bad.append(repr(r))
        elif r.status == 200:
            n_ok += 1
        elif r.body != gw_error_body(r.header("X-Request-Id") or "", "database_unavailable",
                                     "数据库暂时不可用，请稍后重试") or r.status != 503:
            bad.append(short(r))
    check(not bad, "answers under load other than 200 or 503 database_unavailable: %r" % bad[:3])
    # every 200 charged exactly once, nothing else
    n_ok += 2 + 32  # the dbup-first and dbup requests
    deadline = time.time() + 15
    while True:
        after = state(user, token, chan)
        if after["logs"] - before["logs"] == n_ok or time.time() > deadline:
            break
        time.sleep(0.2)
    eq(after["logs"] - before["logs"], n_ok, "logs rows = requests answered 200")
    eq(before["token"]["remain_quota"] - after["token"]["remain_quota"], 1000 * n_ok,
       "token quota charged = 1000 x requests answered 200")
    eq(after["user"]["request_count"] - before["user"]["request_count"], n_ok, "user request_count")


@test(fronts=False)
def test_refund_waits_for_database():
    """The upstream fails while MariaDB is stopped: the refund waits in the
    worker, no new charge is made there meanwhile, and it is done once
    MariaDB is back, exactly once."""
    user, token, chan = H.setup_account()
    m = uniq("m")
    ev = "ev-" + m
    H.stub.script({"path": m, "mode": "hang", "hang": 30, "event": ev, "status": 500,
                   "body": "upstream failed"})
    before = state(user, token, chan)
    out = []
    th = threading.Thread(target=lambda: out.append(
        request(H.lighttpd_port, "POST", "/kling/v1/" + m, auth(token), b"{}", timeout=60)))
    th.start()
    try:
        check(H.stub.wait(m, timeout=10), "request never reached the stub")
        # the charge is made durable while the upstream works (before the
        # answer), not before the request is forwarded: wait for it
        harness.wait_for(lambda: H.sql("SELECT remain_quota FROM tokens WHERE id=%s",
                                       (token["id"],))[0]["remain_quota"]
                         == before["token"]["remain_quota"] - 1000, 10,
                         "the charge durable while the upstream works")
        harness.commits_answered(H)
        H.stop_db()
    finally:
        H.stub.release(ev)
        th.join(30)
    eq((out[0].status, out[0].body), (500, b"upstream failed"), "upstream's 500 relayed")
    try:
        H.start_db()
    except SetupError as e:
        raise Fail("MariaDB did not come back: %s" % e)
    # every worker serves requests until the waiting refund is done
    n_ok, deadline = 0, time.time() + 20
    while True:
        r = request(H.lighttpd_port, "POST", "/kling/v1/after-refund/%d" % n_ok, auth(token), b"{}")
        if r.status == 200:
            n_ok += 1
        else:
            expect_gw_error(r, 503, "database_unavailable", "数据库暂时不可用，请稍后重试",
                            "request while the refund waits")
        with open(H.log_file, encoding="utf-8", errors="replace") as f:
            done = "delayed refund done" in f.read()
        if (done and n_ok >= 8) or time.time() > deadline:
            break
    check(done, "no 'delayed refund done' in the relay log within 20 s")
    after = state(user, token, chan)
    eq(before["token"]["remain_quota"] - after["token"]["remain_quota"], 1000 * n_ok,
       "token quota = 1000 x requests answered 200 (the failed one refunded)")
    eq(after["user"]["request_count"] - before["user"]["request_count"], n_ok, "user request_count")
    eq(after["logs"] - before["logs"], n_ok, "logs rows = requests answered 200")


# ---------------------------------------------------------------------------


def start(keep):
    global H
    H = harness.start_suite(keep, workers=4)
    return H


if __name__ == "__main__":
    sys.exit(SUITE.main(sys.argv[1:], start))
