#!/usr/bin/python3
"""Integration tests of the request body as the old gateway will read it
and of the sums of quota on the charge path:

- a body in a content coding the old gateway decodes (gzip, br) is read,
  priced, checked for task ids and forwarded decoded, without
  Content-Encoding and with its decoded length, in memory or spooled;
  RELAY_MAX_BODY holds for the decoded bytes (413); a coding the relay
  does not decode is 415, a corrupt body 400, nothing forwarded or
  charged; identity passes unchanged;
- X-HTTP-Method-Override and its kin never reach the upstream;
- a usage record the database refuses for range (a used counter near the
  largest BIGINT) is set aside with the counters left as they are, and
  the writer goes on; strict metering refuses a charge the used counters
  cannot take instead of failing the charger's transaction.

The real pool behind lighttpd and nginx, a private MariaDB and the stub
upstream. BLTCY_METERING=lease runs the same tests in lease metering (the
suite is then named body-lease).

Prints one line per test and ends with `body: N passed, M failed`.

Usage: test_body.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import base64
import ctypes
import gzip
import hashlib
import json
import os
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
from harness import rec_body, rec_header, request  # noqa: E402

METERING = runner.METERING
MAX_BODY = 4 * 1024 * 1024          # RELAY_MAX_BODY of this suite
BIGINT_MAX = 2 ** 63 - 1
H = None
S = runner.Suite("body", timeout=120, after_each=lambda: H.stub.script(replace=True))
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, expect_gw_error, expect_ok = runner.short, runner.expect_gw_error, runner.expect_ok

BOTH = ("lighttpd", "nginx")
KLING = "/kling/v1/videos/text2video"
JSON = harness.JSON


def auth(token, extra=()):
    return harness.auth(token, JSON + list(extra))


def brotli(data):
    """data in br, by libbrotlienc (quality 11, window 22)."""
    lib = ctypes.CDLL("libbrotlienc.so.1")
    n = ctypes.c_size_t(len(data) + len(data) // 2 + 1024)
    out = ctypes.create_string_buffer(n.value)
    if not lib.BrotliEncoderCompress(ctypes.c_int(11), ctypes.c_int(22), ctypes.c_int(0),
                                     ctypes.c_size_t(len(data)), data, ctypes.byref(n), out):
        raise Fail("BrotliEncoderCompress failed")
    return out.raw[:n.value]


def encode(coding, data):
    return gzip.compress(data) if coding == "gzip" else brotli(data)


def stub_since():
    return len(H.stub.requests())


def stub_new(since):
    return H.stub.requests(since)


def charged(user, token, chan, before, q, n=1, what=""):
    """Exactly q more on token, user and channel, in n more logs rows."""
    want = dict(before)
    want["token_remain"] -= q
    want["token_used"] += q
    want["user_quota"] -= q
    want["user_used"] += q
    want["user_count"] += n
    want["chan_used"] += q
    want["logs"] += n
    deadline = time.time() + 10
    while True:
        after = H.counters(user, token, chan)
        if after == want or time.time() > deadline:
            break
        time.sleep(0.05)
    eq(after, want, what + ": counters")


def unchanged(user, token, chan, before, what):
    harness.wait_written(H.lighttpd_port)
    eq(H.counters(user, token, chan), before, what + ": counters")


def rule(service, field="", value="", mult="1", surcharge=0, model=""):
    H.sql("INSERT INTO bltcy_price_rules (service, model, field, value, multiplier, surcharge)"
          " VALUES (%s, %s, %s, %s, %s, %s)", (service, model, field, value, mult, surcharge))


def drop_rules():
    H.sql("DELETE FROM bltcy_price_rules")


def forwarded(rec, plain, what):
    """The stub got plain exactly, with its length, in no coding."""
    eq((rec["body_len"], rec["body_sha256"]), (len(plain), hashlib.sha256(plain).hexdigest()),
       what + ": body length and sha256 at the stub")
    if len(plain) < 65536:
        eq(rec_body(rec), plain, what + ": body at the stub")
    eq(rec_header(rec, "Content-Encoding"), [], what + ": Content-Encoding at the stub")
    eq(rec_header(rec, "Content-Length"), [str(len(plain))], what + ": Content-Length at the stub")
    eq(rec["chunked"], False, what + ": chunked at the stub")


def create_suno_task(port, token):
    H.stub.script({"method": "POST", "path": "^/suno/submit/music$", "mode": "task_create",
                   "shape": "suno"})
    r = request(port, "POST", "/suno/submit/music", auth(token), b'{"prompt":"dog"}')
    expect_ok(r, "suno submit")
    tid = r.json()["data"]
    deadline = time.time() + 10
    while not H.sql("SELECT 1 FROM bltcy_tasks WHERE task_id=%s", (tid,)):
        if time.time() > deadline:
            raise Fail("task %s not recorded" % tid)
        time.sleep(0.05)
    return tid


# ---------------------------------------------------------------------------
# content codings


@S.test(BOTH)
def test_compressed_fetch_of_another_users_task(front, port):
    """A gzipped (or br) POST /suno/fetch {"ids":[<another user's task>]}
    is refused as the plain one is: 404 task_not_exist, nothing forwarded,
    nothing charged. The owner's gzipped fetch goes through, decoded."""
    owner, otoken, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    tid = create_suno_task(port, otoken)
    other = H.make_user(group=owner["group"])
    token = H.make_token(other)
    plain = json.dumps({"ids": [tid]}).encode()
    before = H.counters(other, token, chan)
    for coding in ("gzip", "br"):
        since = stub_since()
        r = request(port, "POST", "/suno/fetch", auth(token, [("Content-Encoding", coding)]),
                    encode(coding, plain))
        expect_gw_error(r, 404, "task_not_exist", "任务不存在", "another user's task, in " + coding)
        eq(stub_new(since), [], coding + ": requests at the stub")
    unchanged(other, token, chan, before, "another user's fetches")
    H.stub.script({"method": "POST", "path": "^/suno/fetch$", "mode": "task_get"})
    since = stub_since()
    r = request(port, "POST", "/suno/fetch", auth(otoken, [("Content-Encoding", "gzip")]),
                gzip.compress(plain))
    eq((r.status, r.json().get("task_id")), (200, tid), "the owner's gzipped fetch")
    recs = stub_new(since)
    eq(len(recs), 1, "the owner's fetch: requests at the stub")
    forwarded(recs[0], plain, "the owner's fetch")


@S.test(BOTH)
def test_compressed_body_priced_by_its_fields(front, port):
    """A Kling submit in gzip or br whose duration a price rule doubles is
    charged double: the exact quota on token, user and channel, in the
    X-Bltcy-Quota header; the stub gets the decoded bytes, no
    Content-Encoding and the decoded Content-Length."""
    drop_rules()
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    rule("kling", "duration", "10", "2")
    try:
        plain = json.dumps({"model_name": "kling-v1", "prompt": "a cat on a sofa",
                            "duration": 10, "mode": "std"}).encode()
        for coding in ("gzip", "br"):
            before = H.counters(user, token, chan)
            since = stub_since()
            r = request(port, "POST", KLING, auth(token, [("Content-Encoding", coding)]),
                        encode(coding, plain))
            expect_ok(r, coding + " submit")
            eq(r.header("X-Bltcy-Quota"), "2000", coding + ": X-Bltcy-Quota")
            recs = stub_new(since)
            eq(len(recs), 1, coding + ": requests at the stub")
            forwarded(recs[0], plain, coding + " submit")
            charged(user, token, chan, before, 2000, what=coding + " submit")
            eq(H.logs(token)[-1]["quota"], 2000, coding + ": logs row quota")
    finally:
        drop_rules()


@S.test(BOTH)
def test_compressed_bodies_spooled(front, port):
    """Bodies past what the relay holds in memory (64 KiB), decoded or
    encoded: a 300 KiB body that gzips to a few KiB, and one that does not
    compress (over 64 KiB in gzip too), are priced by their fields and
    reach the stub whole and decoded; a foreign task id at the end of a
    spooled gzipped body is found."""
    drop_rules()
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    rule("kling", "duration", "10", "2")
    try:
        big = json.dumps({"prompt": "a cat " * 50000, "duration": 10}).encode()
        noise = base64.b64encode(os.urandom(120000)).decode()
        rough = json.dumps({"prompt": noise, "duration": 10}).encode()
        for what, plain in (("compressible", big), ("incompressible", rough)):
            enc = gzip.compress(plain)
            if what == "compressible":
                check(len(plain) > 65536 > len(enc), "sizes %d -> %d" % (len(plain), len(enc)))
            else:
                check(len(enc) > 65536, "gzip of noise: %d bytes" % len(enc))
            before = H.counters(user, token, chan)
            since = stub_since()
            r = request(port, "POST", KLING, auth(token, [("Content-Encoding", "gzip")]), enc)
            expect_ok(r, what)
            eq(r.header("X-Bltcy-Quota"), "2000", what + ": X-Bltcy-Quota")
            recs = stub_new(since)
            eq(len(recs), 1, what + ": requests at the stub")
            forwarded(recs[0], plain, what)
            charged(user, token, chan, before, 2000, what=what)
        tid = create_suno_task(port, token)
        other = H.make_user(group=user["group"])
        otoken = H.make_token(other)
        plain = json.dumps({"prompt": noise, "ids": [tid]}).encode()
        since = stub_since()
        r = request(port, "POST", "/suno/fetch", auth(otoken, [("Content-Encoding", "gzip")]),
                    gzip.compress(plain))
        expect_gw_error(r, 404, "task_not_exist", "任务不存在", "foreign id in a spooled gzipped body")
        eq(stub_new(since), [], "foreign id in a spooled body: requests at the stub")
    finally:
        drop_rules()


@S.test(BOTH)
def test_decompression_bomb(front, port):
    """RELAY_MAX_BODY counts the decoded bytes: a body that decodes to
    exactly RELAY_MAX_BODY goes through whole; one byte more, in gzip or
    br (a few KiB on the wire), is 413 request_too_large, nothing
    forwarded, nothing charged."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    head, tail = b'{"prompt":"', b'"}'
    exact = head + b"a" * (MAX_BODY - len(head) - len(tail)) + tail
    eq(len(exact), MAX_BODY, "the exact body's length")
    before = H.counters(user, token, chan)
    for coding in ("gzip", "br"):
        bomb = encode(coding, exact[:-2] + b'a"}')
        check(len(bomb) < 65536, "%s bomb of %d bytes" % (coding, len(bomb)))
        since = stub_since()
        r = request(port, "POST", KLING, auth(token, [("Content-Encoding", coding)]), bomb)
        expect_gw_error(r, 413, "request_too_large", "请求体过大", coding + " bomb")
        eq(stub_new(since), [], coding + " bomb: requests at the stub")
    unchanged(user, token, chan, before, "the bombs")
    since = stub_since()
    r = request(port, "POST", KLING, auth(token, [("Content-Encoding", "gzip")]), gzip.compress(exact))
    expect_ok(r, "exactly RELAY_MAX_BODY decoded")
    recs = stub_new(since)
    eq(len(recs), 1, "exactly RELAY_MAX_BODY: requests at the stub")
    forwarded(recs[0], exact, "exactly RELAY_MAX_BODY")
    charged(user, token, chan, before, 1000, what="exactly RELAY_MAX_BODY")


@S.test(BOTH)
def test_codings_not_decoded_refused(front, port):
    """Content-Encoding compress, deflate, zstd or a list of codings: 415
    unsupported_content_encoding; a gzip body cut short, with bytes after
    its end, or not gzip at all, and a br body cut short: 400
    invalid_content_encoding. Nothing forwarded, nothing charged."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    plain = json.dumps({"prompt": "x", "duration": 10}).encode()
    gz = gzip.compress(plain)
    before = H.counters(user, token, chan)
    for coding in ("compress", "deflate", "zstd", "gzip, br", "gzip, identity"):
        since = stub_since()
        r = request(port, "POST", KLING, auth(token, [("Content-Encoding", coding)]), gz)
        expect_gw_error(r, 415, "unsupported_content_encoding",
                        "不支持的请求体编码（Content-Encoding 仅支持 gzip、br、identity）", coding)
        eq(stub_new(since), [], coding + ": requests at the stub")
    for what, coding, body in (("gzip cut short", "gzip", gz[:-5]),
                               ("gzip with bytes after it", "gzip", gz + b"x"),
                               ("plain JSON said to be gzip", "gzip", plain),
                               ("br cut short", "br", brotli(plain)[:-1])):
        since = stub_since()
        r = request(port, "POST", KLING, auth(token, [("Content-Encoding", coding)]), body)
        expect_gw_error(r, 400, "invalid_content_encoding",
                        "请求体无法按其 Content-Encoding 解压（数据损坏或不完整）", what)
        eq(stub_new(since), [], what + ": requests at the stub")
    unchanged(user, token, chan, before, "refused codings")


@S.test(BOTH)
def test_identity_unchanged(front, port):
    """A body without Content-Encoding, or in identity, goes up byte for
    byte; an empty body said to be gzip is an empty body. None of them
    carries Content-Encoding upstream."""
    user, token, chan = H.setup_account()
    plain = b'{"prompt":"x", "duration":5}\n  '
    for what, hdrs, body, want in (("no header", [], plain, plain),
                                   ("identity", [("Content-Encoding", "identity")], plain, plain),
                                   ("empty gzip", [("Content-Encoding", "gzip")], b"", b"")):
        since = stub_since()
        r = request(port, "POST", KLING, auth(token, hdrs), body)
        expect_ok(r, what)
        recs = stub_new(since)
        eq(len(recs), 1, what + ": requests at the stub")
        forwarded(recs[0], want, what)


@S.test(BOTH)
def test_method_override_headers_dropped(front, port):
    """X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override never
    reach the upstream: a GET stays a GET (and is priced as one)."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    before = H.counters(user, token, chan)
    since = stub_since()
    sent = [("X-HTTP-Method-Override", "POST"), ("X-HTTP-Method", "POST"),
            ("X-Method-Override", "POST"), ("X-Custom", "kept")]
    r = request(port, "GET", KLING + "/" + harness.rand_name("t"), auth(token, sent))
    expect_ok(r, "GET with override headers")
    eq(r.header("X-Bltcy-Quota"), "0", "X-Bltcy-Quota")
    recs = stub_new(since)
    eq([x["method"] for x in recs], ["GET"], "methods at the stub")
    for name, _ in sent[:-1]:
        eq(rec_header(recs[0], name), [], name + " at the stub")
    eq(rec_header(recs[0], "X-Custom"), ["kept"], "X-Custom at the stub")
    unchanged(user, token, chan, before, "a free GET")


# ---------------------------------------------------------------------------
# sums of quota near the largest BIGINT


def rejected(rid):
    return list(H.sql("SELECT * FROM bltcy_usage_rejected WHERE request_id=%s", (rid,)))


def used(table, row_id):
    return H.sql("SELECT used_quota FROM %s WHERE id=%%s" % table, (row_id,))[0]["used_quota"]


@S.test(("lighttpd",))
def test_channel_counter_out_of_range(front, port):
    """A channel whose used_quota is a few units short of the largest
    BIGINT: a paid request on it gets its answer and its quota header;
    its usage record is set aside (bltcy_usage_rejected, counted 0) with
    the channel's counter left as it was; the next request on another
    channel is written as usual, and health says ok."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    H.sql("UPDATE channels SET used_quota=%s WHERE id=%s", (BIGINT_MAX - 10, chan["id"]))
    u0 = H.sql("SELECT used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
    r = request(port, "POST", KLING, auth(token), b'{"prompt":"x"}')
    rid = expect_ok(r, "paid request on the full channel")
    eq(r.header("X-Bltcy-Quota"), "1000", "X-Bltcy-Quota")
    user2, token2, chan2 = H.setup_account(setting={"PassthroughQuota": 700})
    before2 = H.counters(user2, token2, chan2)
    rid2 = expect_ok(request(port, "POST", KLING, auth(token2), b'{"prompt":"y"}'), "on another channel")
    harness.wait_written(port)
    rows = rejected(rid)
    eq(len(rows), 1, "bltcy_usage_rejected rows of the request")
    x = rows[0]
    eq((x["channel_id"], x["token_id"], x["quota"], x["counted"], x["prepaid"]),
       (chan["id"], token["id"], 1000, 0, int(METERING == "strict")), "the set-aside row")
    check("out of range" in x["error"], "error of the set-aside row: %r" % x["error"])
    eq(used("channels", chan["id"]), BIGINT_MAX - 10, "the full channel's used_quota")
    eq(H.sql("SELECT COUNT(*) AS n FROM logs WHERE token_id=%s", (token["id"],))[0]["n"], 0,
       "logs rows of the set-aside request")
    u1 = H.sql("SELECT used_quota, request_count FROM users WHERE id=%s", (user["id"],))[0]
    t1 = used("tokens", token["id"])
    if METERING == "strict":
        # the charger wrote the token's and user's counters with the charge
        eq((t1, u1["used_quota"] - u0["used_quota"], u1["request_count"] - u0["request_count"]),
           (1000, 1000, 1), "token and user counters (charged by the charger)")
    else:
        eq((t1, u1["used_quota"], u1["request_count"]), (0, u0["used_quota"], u0["request_count"]),
           "token and user counters (left as they were)")
    charged(user2, token2, chan2, before2, 700, what="the request on another channel")
    eq([json.loads(x["other"])["request_id"] for x in H.logs(token2)], [rid2], "logs row of the other")
    eq(rejected(rid2), [], "bltcy_usage_rejected rows of the other")
    r = request(port, "GET", "/bltcy/health")
    eq((r.status, r.body), (200, H.health_ok()), "health")


@S.test(("lighttpd",))
def test_user_counter_out_of_range(front, port):
    """A user whose used_quota is a few units short of the largest BIGINT.
    Strict metering refuses the charge (403 insufficient_quota, nothing
    forwarded) rather than fail the charger's transaction, and another
    user's request goes through; lease metering answers it, sets its
    record aside with the counters left as they were, and keeps the quota
    it spent."""
    user, token, chan = H.setup_account(setting={"PassthroughQuota": 1000})
    H.sql("UPDATE users SET used_quota=%s WHERE id=%s", (BIGINT_MAX - 10, user["id"]))
    before = H.counters(user, token, chan)
    since = stub_since()
    r = request(port, "POST", KLING, auth(token), b'{"prompt":"x"}')
    if METERING == "strict":
        expect_gw_error(r, 403, "insufficient_quota", "额度不足", "a charge the counters cannot take")
        eq(stub_new(since), [], "requests at the stub")
        unchanged(user, token, chan, before, "the refused charge")
    else:
        rid = expect_ok(r, "paid request of the full user")
        harness.wait_written(port)
        rows = rejected(rid)
        eq([(x["user_id"], x["quota"], x["counted"]) for x in rows], [(user["id"], 1000, 0)],
           "the set-aside row")
        want = dict(before)
        want["token_remain"] -= 1000
        want["user_quota"] -= 1000
        eq(H.counters(user, token, chan), want, "counters (the quota spent, the used counters as they were)")
    user2, token2, chan2 = H.setup_account(setting={"PassthroughQuota": 700})
    before2 = H.counters(user2, token2, chan2)
    expect_ok(request(port, "POST", KLING, auth(token2), b'{"prompt":"y"}'), "another user")
    charged(user2, token2, chan2, before2, 700, what="another user")
    r = request(port, "GET", "/bltcy/health")
    eq((r.status, r.body), (200, H.health_ok()), "health")


@S.test(fronts=False)
def test_charge_statements_never_overflow():
    """Strict metering's charge statements (one charge, a group) change
    nothing, and fail nothing, when the token's or the user's used_quota
    cannot take the charge; they apply when it just can."""
    host = "overflow-test-host"
    now = int(time.time())
    one, group = harness.relay_sql("ST_CHARGE"), harness.relay_sql("ST_CHARGE_GROUP")
    c = H.db().cursor()
    for which in ("tokens", "users"):
        user, token, chan = H.setup_account(quota=10 ** 6, remain_quota=10 ** 6)
        row = token["id"] if which == "tokens" else user["id"]
        H.sql("REPLACE INTO bltcy_slots (host, slot, req, updated_at) VALUES (%s, 1, '', 0), (%s, 2, '', 0)",
              (host, host))

        def versions():
            """The change counters now (a change to a token moves them)."""
            return (H.sql("SELECT v FROM bltcy_meta WHERE k='channels'")[0]["v"],
                    H.sql("SELECT v FROM bltcy_meta WHERE k='auth'")[0]["v"])

        def single(q, rid):
            cv, av = versions()
            return [user["id"], host, 1, 0, q, q, q, q, rid, now, now, token["id"], rid, 0, q, q,
                    cv, av, q, q]

        def pair(q, rid):
            cv, av = versions()
            slots = [1, 2] + [1] * 30
            rids = [rid + "-1", rid + "-2"] + [rid + "-1"] * 30
            return ([user["id"], host] + slots + [0, 2 * q, 2 * q, 2 * q, 2 * q, 2] + slots + rids +
                    [now, now, token["id"]] + rids + [0, 2 * q, 2 * q, cv, av, 2 * q, 2 * q, 2])

        H.sql("UPDATE %s SET used_quota=%%s WHERE id=%%s" % which, (BIGINT_MAX - 100, row))
        eq(c.execute(one, single(101, "ov-a")), 0, "%s: one charge past the largest BIGINT" % which)
        eq(c.execute(group, pair(51, "ov-b")), 0, "%s: a group past the largest BIGINT" % which)
        eq(used(which, row), BIGINT_MAX - 100, "%s used_quota after the refused charges" % which)
        eq(c.execute(group, pair(50, "ov-c")), 4, "%s: a group that just fits" % which)
        eq(used(which, row), BIGINT_MAX, "%s used_quota after the group that fits" % which)
        H.sql("UPDATE %s SET used_quota=%%s WHERE id=%%s" % which, (BIGINT_MAX - 100, row))
        eq(c.execute(one, single(100, "ov-d")), 3, "%s: one charge that just fits" % which)
        eq(used(which, row), BIGINT_MAX, "%s used_quota after the charge that fits" % which)
        H.sql("DELETE FROM bltcy_slots WHERE host=%s", (host,))


# ---------------------------------------------------------------------------
# runner


def start(keep):
    global H
    H = harness.start_suite(keep, workers=2, config={"RELAY_MAX_BODY": str(MAX_BODY)})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
