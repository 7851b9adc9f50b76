#!/usr/bin/python3
"""Integration tests of prices and idempotent submits (SPEC 4.4): price
rules on request fields, new-api's ModelPrice x QuotaPerUnit x GroupRatio
from the options table, the X-Bltcy-Quota header, the quote endpoint
under /bltcy/quote/, and Idempotency-Key.

The real pool behind lighttpd and nginx, a private MariaDB and the stub
upstream. BLTCY_METERING=lease runs the same tests in lease metering (the
suite is then named prices-lease).

Prints one line per test and ends with `prices: N passed, M failed`.

Usage: test_prices.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
from harness import request  # noqa: E402

METERING = runner.METERING
H = None
S = runner.Suite("prices", timeout=120, after_each=lambda: H.stub.script(replace=True))
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, expect_gw_error, expect_ok = runner.short, runner.expect_gw_error, runner.expect_ok

KLING = "/kling/v1/videos/text2video"
IDEM_WAIT = 3       # seconds a repeat waits for the first


def auth(token, extra=()):
    return harness.auth(token, harness.JSON + list(extra))


def account(setting=None):
    return H.setup_account(setting=setting)


def rule(service, field="", value="", mult="1", surcharge=0, model=""):
    H.sql("INSERT INTO bltcy_price_rules (service, model, field, value, multiplier, surcharge)"
          " VALUES (%s, %s, %s, %s, %s, %s)", (service, model, field, value, mult, surcharge))


def option(key, value):
    H.sql("INSERT INTO options (`key`, value) VALUES (%s, %s)"
          " ON DUPLICATE KEY UPDATE value = VALUES(value)", (key, value))


def drop_rules():
    H.sql("DELETE FROM bltcy_price_rules")
    H.sql("DELETE FROM options WHERE `key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')")


def charged(user, token, chan, before, q, n=1, what=""):
    """Exactly q more on token, user and channel, in n more logs rows."""
    deadline = time.time() + 5
    while True:
        after = H.counters(user, token, chan)
        want = dict(before)
        want["token_remain"] -= q
        want["token_used"] += q
        want["user_quota"] -= q
        want["user_used"] += q
        want["user_count"] += n
        want["chan_used"] += q
        want["logs"] += n
        if after == want or time.time() > deadline:
            break
        time.sleep(0.05)
    eq(after, want, what + ": counters")


def submit(port, token, body, extra=(), path=KLING):
    return request(port, "POST", path, auth(token, extra), json.dumps(body).encode())


# ---------------------------------------------------------------------------
# prices


@S.test()
def test_rules_duration_and_mode(front, port):
    """A Kling submit with duration 10 and mode pro costs base x2 x3.5; 5/std
    the base; a rule for the model wins over the any-model rule of its field;
    the answer says the quota in X-Bltcy-Quota and the logs row agrees."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    rule("kling", "duration", "10", "2")
    rule("kling", "mode", "pro", "3.5")
    rule("kling", "mode", "pro", "5", model="kling-v2")
    rule("kling", "n", "2", "1", surcharge=250)
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    cases = [({"duration": 5, "mode": "std"}, 1000),
             ({"duration": "10", "mode": "pro"}, 7000),
             ({"duration": 10.0, "mode": "pro", "model_name": "kling-v2"}, 10000),
             ({"duration": 10, "mode": "std", "n": 2}, 2250),
             ({"MODE": "PRO", "Duration": 5}, 3500)]
    for body, q in cases:
        before = H.counters(user, token, chan)
        r = submit(port, token, body)
        expect_ok(r, "submit %r" % body)
        eq(r.header("X-Bltcy-Quota"), str(q), "submit %r: X-Bltcy-Quota" % body)
        charged(user, token, chan, before, q, what="submit %r" % body)
        row = H.sql("SELECT quota, type FROM logs WHERE token_id=%s ORDER BY id DESC LIMIT 1",
                    (token["id"],))[0]
        eq((row["quota"], row["type"]), (q, 2), "submit %r: logs row" % body)
    drop_rules()


@S.test(("lighttpd",))
def test_model_price_group_ratio(front, port):
    """ModelPrice (USD per call) x QuotaPerUnit x GroupRatio of the user's
    group, truncated as new-api does; a model without a price falls back to
    the channel's amount; rules apply on top of the ModelPrice base."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    option("ModelPrice", json.dumps({"kling-v1": 0.0213, "suno_music": 0.1}))
    option("GroupRatio", json.dumps({user["group"]: 1.5, "default": 1}))
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    # int(0.0213 * 500000 * 1.5) = int(15975.000000000002) = 15975
    for body, q in [({"model_name": "kling-v1"}, 15975),
                    ({"model": "kling-v1", "mode": "pro"}, 15975),
                    ({"model_name": "kling-v9"}, 1000)]:
        before = H.counters(user, token, chan)
        r = submit(port, token, body)
        expect_ok(r, "submit %r" % body)
        eq(r.header("X-Bltcy-Quota"), str(q), "submit %r: X-Bltcy-Quota" % body)
        charged(user, token, chan, before, q, what="submit %r" % body)
    option("QuotaPerUnit", "1000000")
    rule("kling", "mode", "pro", "2")
    # a kept token row is checked against the change counters within a
    # moment (lease metering): the quote says when the pool sees the edit
    harness.wait_for(lambda: submit(port, token, {"model": "kling-v1", "mode": "pro"},
                                    path="/bltcy/quote" + KLING).json()["quota"] == 63900,
                     5, "the new prices seen")
    before = H.counters(user, token, chan)
    r = submit(port, token, {"model": "kling-v1", "mode": "pro"})
    expect_ok(r, "QuotaPerUnit 1000000, mode pro")
    # int(0.0213 * 1000000 * 1.5) = 31950, x2
    eq(r.header("X-Bltcy-Quota"), "63900", "QuotaPerUnit 1000000, mode pro: X-Bltcy-Quota")
    charged(user, token, chan, before, 63900, what="QuotaPerUnit 1000000, mode pro")
    drop_rules()


@S.test()
def test_quote_agrees_and_forwards_nothing(front, port):
    """The quote endpoint prices a request with the same token and rules:
    nothing is forwarded or charged, and the charge of the real request is
    the quote."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    rule("kling", "duration", "10", "2", surcharge=30)
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    body = {"duration": 10, "mode": "std", "model_name": "kling-v1"}
    seen = len(H.stub.requests())
    before = H.counters(user, token, chan)
    r = submit(port, token, body, path="/bltcy/quote" + KLING)
    eq(r.status, 200, "quote: status (%s)" % short(r))
    want = {"service": "kling", "method": "POST", "model": "kling-v1", "quota": 2030,
            "base": 1000, "base_from": "PassthroughQuota", "group": user["group"],
            "group_ratio": 1, "rules": "duration=10 x2 +30"}
    eq(r.json(), want, "quote: body")
    eq(r.header("X-Bltcy-Quota"), "2030", "quote: X-Bltcy-Quota")
    time.sleep(0.3)
    eq(len(H.stub.requests()), seen, "quote: requests at the stub")
    eq(H.counters(user, token, chan), before, "quote: counters")
    r = submit(port, token, body)
    expect_ok(r, "the real submit")
    charged(user, token, chan, before, 2030, what="the real submit")
    # the same refusals as a real request
    r = request(port, "POST", "/bltcy/quote" + KLING, [("Authorization", "Bearer sk-nope")], b"{}")
    expect_gw_error(r, 401, "invalid_token", "无效的令牌", "quote with a bad token")
    r = request(port, "POST", "/bltcy/quote/nosuch/x", auth(token), b"{}")
    eq(r.status, 404, "quote of no service")
    drop_rules()


@S.test(("lighttpd",))
def test_free_get_stays_free(front, port):
    """A GET (a poll) is the channel's query amount, free by default, with
    no rule or ModelPrice applied."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    rule("kling", "", "", "3", surcharge=7)
    option("ModelPrice", json.dumps({"kling": 1}))
    before = H.counters(user, token, chan)
    r = request(port, "GET", KLING + "/nosuchtask", auth(token))
    expect_ok(r, "GET")
    eq(r.header("X-Bltcy-Quota"), "0", "GET: X-Bltcy-Quota")
    time.sleep(0.3)
    eq(H.counters(user, token, chan), before, "GET: counters")
    drop_rules()


BAD_BODY_MSG = "请求体必须是一个合法的 JSON 对象（Content-Type: application/json），才能按其字段计价"
PRICE_MAX_MSG = "该请求的价格超过上限 1000000000000000 额度"


def raw_submit(port, token, body, ctype="application/json", path=KLING):
    return request(port, "POST", path, [("Authorization", "Bearer sk-" + token["key"]),
                                        ("Content-Type", ctype)], body)


def quote_of(port, token, body):
    r = submit(port, token, body, path="/bltcy/quote" + KLING)
    eq(r.status, 200, "quote: %s" % short(r))
    return r.json()


@S.test()
def test_kling_seed_42_is_ruled(front, port):
    """An honest Kling body with "seed":42 (and the other numbers and
    literals of a real submit) is priced by its rules: duration 10 x2, mode
    pro x3.5 on a base of 1000 is 7000, charged exactly, not the base."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    rule("kling", "duration", "10", "2")
    rule("kling", "mode", "pro", "3.5")
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    body = {"model_name": "kling-v1", "prompt": "a cat in the snow", "negative_prompt": "",
            "seed": 42, "cfg_scale": 0.5, "watermark": False, "x": None,
            "camera_control": {"type": "simple", "config": {"zoom": -5, "pan": 0}},
            "duration": 10, "mode": "pro"}
    before = H.counters(user, token, chan)
    r = submit(port, token, body)
    expect_ok(r, "submit")
    eq(r.header("X-Bltcy-Quota"), "7000", "X-Bltcy-Quota")
    charged(user, token, chan, before, 7000, what="seed 42")
    q = quote_of(port, token, body)
    eq((q["quota"], q["rules"]), (7000, "duration=10 x2, mode=pro x3.5"), "quote")
    drop_rules()


@S.test()
def test_fields_read_as_go_reads_them(front, port):
    """A later null leaves the field as it was; a key "duration\\u0000" is
    not duration; keys spelt with U+017F or the Kelvin sign, raw or escaped,
    are the fields Go folds them to; of two keys the later counts."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    rule("kling", "duration", "10", "2")
    rule("kling", "sound", "on", "3")
    rule("kling", "kind", "x", "5")
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    cases = [(b'{"duration":10,"duration":null}', 2000),
             (b'{"duration\\u0000":10}', 1000),
             (b'{"duration":10,"duration\\u0000":5}', 2000),
             ('{"\u017fOUND":"on"}'.encode(), 3000),
             (b'{"\\u017found":"on"}', 3000),
             ('{"\u212aind":"x"}'.encode(), 5000),
             (b'{"\\u212Aind":"x","DURATION":10}', 10000),
             (b'{"duration":10,"Duration":5}', 1000)]
    for body, q in cases:
        before = H.counters(user, token, chan)
        r = raw_submit(port, token, body)
        expect_ok(r, "submit %r" % body)
        eq(r.header("X-Bltcy-Quota"), str(q), "submit %r: X-Bltcy-Quota" % body)
        charged(user, token, chan, before, q, what="submit %r" % body)
    drop_rules()


@S.test()
def test_model_name_dearer(front, port):
    """Kling's model field is model_name (bltcy_model_fields); where model
    names another, the dearer of the two prices the request, and the quote
    says which. The field is data: another path for a service is read on
    the next request."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    option("ModelPrice", json.dumps({"kling-v1": 0.01, "kling-v2-master": 0.1}))
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    for body in ({"model": "kling-v1", "model_name": "kling-v2-master"},
                 {"model_name": "kling-v1", "model": "kling-v2-master"}):
        before = H.counters(user, token, chan)
        r = submit(port, token, body)
        expect_ok(r, "submit %r" % body)
        eq(r.header("X-Bltcy-Quota"), "50000", "submit %r: X-Bltcy-Quota" % body)
        charged(user, token, chan, before, 50000, what="submit %r" % body)
        eq(quote_of(port, token, body)["model"], "kling-v2-master", "quote %r: model" % body)
    before = H.counters(user, token, chan)
    r = submit(port, token, {"model_name": "kling-v1", "model": "nosuch"})
    expect_ok(r, "a model without a price")
    eq(r.header("X-Bltcy-Quota"), "5000", "ModelPrice's beats the channel's 1000")
    charged(user, token, chan, before, 5000, what="a model without a price")
    try:
        H.sql("UPDATE bltcy_model_fields SET field = 'input.model' WHERE service = 'kling'")
        body = {"model_name": "kling-v1", "input": {"model": "kling-v2-master"}}
        harness.wait_for(lambda: quote_of(port, token, body)["quota"] == 50000, 5,
                         "the new model field seen")
        eq(quote_of(port, token, {"input": {"Model": "kling-v1"}})["model"], "kling-v1",
           "input.model alone")
    finally:
        H.sql("UPDATE bltcy_model_fields SET field = 'model_name' WHERE service = 'kling'")
    drop_rules()


@S.test()
def test_unreadable_bodies_refused(front, port):
    """Where the price depends on the body, a body json.Unmarshal would
    refuse (trailing bytes, no JSON, not an object) and form or multipart
    bodies are refused with 400 in new-api's shape, the quote alike:
    nothing forwarded, nothing charged. An empty body is the base; where
    the price does not read the body, such a body goes through at it."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    rule("kling", "duration", "10", "2")
    H.stub.script({"path": "^/(kling|pika)/", "mode": "task_create"}, replace=True)
    multipart = (b'--b0undary\r\nContent-Disposition: form-data; name="duration"\r\n\r\n10\r\n'
                 b'--b0undary--\r\n')
    cases = [(b'{"duration":10} x', "application/json"),
             (b'{"duration":10}{"duration":5}', "application/json"),
             (b'[{"duration":10}]', "application/json"),
             (b"not json", "application/json"),
             (b'{"duration":10,}', "application/json"),
             (b"duration=10", "application/x-www-form-urlencoded"),
             (b'{"duration":10}', "application/x-www-form-urlencoded"),
             (multipart, "multipart/form-data; boundary=b0undary"),
             (b'{"duration":10}', "Multipart/Form-Data; boundary=x")]
    seen = len(H.stub.requests())
    before = H.counters(user, token, chan)
    for body, ctype in cases:
        r = raw_submit(port, token, body, ctype)
        expect_gw_error(r, 400, "invalid_request_body", BAD_BODY_MSG, "submit %r (%s)" % (body, ctype))
        r = raw_submit(port, token, body, ctype, path="/bltcy/quote" + KLING)
        expect_gw_error(r, 400, "invalid_request_body", BAD_BODY_MSG, "quote %r (%s)" % (body, ctype))
    time.sleep(0.3)
    eq(len(H.stub.requests()), seen, "refused: forwarded")
    eq(H.counters(user, token, chan), before, "refused: counters")
    r = raw_submit(port, token, b"")
    expect_ok(r, "an empty body")
    eq(r.header("X-Bltcy-Quota"), "1000", "an empty body: the base")
    charged(user, token, chan, before, 1000, what="an empty body")
    before = H.counters(user, token, chan)
    r = raw_submit(port, token, b'{"duration":10} x', path="/pika/generate")
    expect_ok(r, "no rule of pika reads the body")
    eq(r.header("X-Bltcy-Quota"), "1000", "pika: the base")
    charged(user, token, chan, before, 1000, what="pika")
    drop_rules()


@S.test()
def test_price_cap_refused(front, port):
    """A price above 1e15 quota units is refused with 403, the quote alike;
    nothing forwarded or charged (it was cut to 2^62 and then refused for
    quota, or charged)."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 2 * 10 ** 12})
    rule("kling", "mode", "pro", "1000")
    option("ModelPrice", json.dumps({"kling-x": 1e12}))
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    seen = len(H.stub.requests())
    before = H.counters(user, token, chan)
    for body in ({"mode": "pro"}, {"model_name": "kling-x"}):
        r = submit(port, token, body)
        expect_gw_error(r, 403, "price_too_high", PRICE_MAX_MSG, "submit %r" % body)
        r = submit(port, token, body, path="/bltcy/quote" + KLING)
        expect_gw_error(r, 403, "price_too_high", PRICE_MAX_MSG, "quote %r" % body)
    time.sleep(0.3)
    eq(len(H.stub.requests()), seen, "forwarded")
    eq(H.counters(user, token, chan), before, "counters")
    eq(quote_of(port, token, {"mode": "std"})["quota"], 2 * 10 ** 12, "below the cap: priced")
    drop_rules()


@S.test()
def test_nan_options_ignored(front, port):
    """NaN, Infinity and negative entries of ModelPrice and GroupRatio, and a
    QuotaPerUnit of Infinity, are left out (and logged): the price is never
    negative or free and the quote stays JSON."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    option("ModelPrice", '{"kling-v1": NaN, "kling-v2": 0.01, "kling-v3": -1}')
    option("GroupRatio", '{"%s": NaN, "default": Infinity}' % user["group"])
    option("QuotaPerUnit", "Infinity")
    H.stub.script({"path": "^" + KLING + "$", "mode": "task_create"}, replace=True)
    for body, q in (({"model_name": "kling-v2"}, 5000), ({"model_name": "kling-v1"}, 1000),
                    ({"model_name": "kling-v3"}, 1000)):
        r = submit(port, token, body, path="/bltcy/quote" + KLING)
        eq(r.status, 200, "quote %r: %s" % (body, short(r)))
        try:
            qj = json.loads(r.body.decode())
        except ValueError:
            raise Fail("quote %r is no JSON: %s" % (body, short(r)))
        eq((qj["quota"], qj["group_ratio"]), (q, 1), "quote %r" % body)
        before = H.counters(user, token, chan)
        r = submit(port, token, body)
        expect_ok(r, "submit %r" % body)
        eq(r.header("X-Bltcy-Quota"), str(q), "submit %r: X-Bltcy-Quota" % body)
        charged(user, token, chan, before, q, what="submit %r" % body)
    log = open(H.log_file, encoding="utf-8", errors="replace").read()
    check("option GroupRatio: entries that are no finite number of at least 0" in log,
          "GroupRatio's entries logged")
    check('option QuotaPerUnit "Infinity" is not what it holds' in log, "QuotaPerUnit logged")
    drop_rules()


@S.test(("lighttpd",))
def test_rules_past_field_limit_logged(front, port):
    """Rules on more than 32 fields of a service: those past the 32nd field
    (by id) never apply, and the relay's log names them."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    for i in range(33):
        rule("kling", "f%d" % i, "1", "2")
    rid = H.sql("SELECT id FROM bltcy_price_rules WHERE field = 'f32'")[0]["id"]
    q = quote_of(port, token, {"f31": 1, "f32": 1})
    eq((q["quota"], q["rules"]), (2000, "f31=1 x2"), "the 33rd field is not read")
    log = open(H.log_file, encoding="utf-8", errors="replace").read()
    check("price rule %d (kling f32=1) never applies: service kling has rules on more than 32 "
          "fields" % rid in log, "the log names rule %d" % rid)
    # past 4096 rules (by id) nothing is loaded, and the log says from where
    with H.db().cursor() as c:
        c.executemany("INSERT INTO bltcy_price_rules (service, field, value, multiplier)"
                      " VALUES ('runway', 'duration', %s, 2)", [(str(i),) for i in range(4096 - 33)])
    rule("kling", "", "", "7")
    last = H.sql("SELECT MAX(id) AS id FROM bltcy_price_rules")[0]["id"]
    want = "bltcy_price_rules has more than 4096 rules: rule %d and those after it (by id) " \
        "never apply" % last

    def loaded():
        q = quote_of(port, token, {"f31": 1})       # a request loads the rules again
        eq((q["quota"], q["rules"]), (2000, "f31=1 x2"), "rule 4097 is not loaded")
        return want in open(H.log_file, encoding="utf-8", errors="replace").read()
    harness.wait_for(loaded, 10, "the log names rule %d" % last)
    drop_rules()


# ---------------------------------------------------------------------------
# idempotent submits


idem = harness.idem


@S.test(("lighttpd",))
def test_idempotent_concurrent_submits(front, port):
    """20 identical submits with one Idempotency-Key at once: one is
    forwarded and charged, all 20 get its answer; a repeat afterwards gets
    the stored answer, nothing forwarded."""
    drop_rules()
    user, token, chan = account({"PassthroughQuota": 1000})
    key = harness.rand_name("idem")
    H.stub.script({"path": "^" + KLING + "$", "method": "POST", "mode": "task_create",
                   "hang": 1.0}, replace=True)
    body = json.dumps({"prompt": "a cat", "duration": 5}).encode()
    seen = len(H.stub.matching("^" + KLING + "$"))
    before = H.counters(user, token, chan)
    out = [None] * 20

    def go(i):
        try:
            out[i] = request(port, "POST", KLING, auth(token, idem(key)), body, timeout=60)
        except Exception as e:  # noqa: BLE001
            out[i] = e
    th = [threading.Thread(target=go, args=(i,)) for i in range(20)]
    for t in th:
        t.start()
    for t in th:
        t.join(90)
    for i, r in enumerate(out):
        check(not isinstance(r, Exception) and r is not None, "submit %d: %r" % (i, r))
        expect_ok(r, "submit %d" % i)
    eq(len({r.body for r in out}), 1, "20 answers: distinct bodies")
    check(b"task_id" in out[0].body, "the answer names a task: %s" % short(out[0]))
    eq(len(H.stub.matching("^" + KLING + "$")) - seen, 1, "20 submits: forwarded")
    eq(sorted(r.header("Idempotent-Replayed", "-") for r in out), ["-"] + ["true"] * 19,
       "20 submits: replayed")
    charged(user, token, chan, before, 1000, what="20 submits")
    # after completion: the stored answer, nothing forwarded or charged
    before = H.counters(user, token, chan)
    r = request(port, "POST", KLING, auth(token, idem(key)), body)
    expect_ok(r, "repeat")
    eq((r.body, r.header("Idempotent-Replayed"), r.header("X-Bltcy-Quota")),
       (out[0].body, "true", "0"), "repeat: body, replayed, quota")
    eq(r.header("Content-Type"), "application/json", "repeat: Content-Type")
    time.sleep(0.3)
    eq(len(H.stub.matching("^" + KLING + "$")) - seen, 1, "repeat: forwarded")
    eq(H.counters(user, token, chan), before, "repeat: counters")
    # another token's same key is its own
    user2 = H.make_user(group=user["group"])
    token2 = H.make_token(user2)
    r = request(port, "POST", KLING, auth(token2, idem(key)), body)
    expect_ok(r, "another token, same key")
    check(r.body != out[0].body and r.header("Idempotent-Replayed") is None,
          "another token's key is not replayed: %s" % short(r))


@S.test(False)
def test_idempotent_across_hosts():
    """Two pools (two hosts) sharing the database take one key once: 10
    identical submits to each at once, one forwarded and charged, 20 equal
    answers."""
    pool = H.start_pool("idemhost", workers=2)
    try:
        user, token, chan = account({"PassthroughQuota": 1000})
        key = harness.rand_name("idem")
        H.stub.script({"path": "^" + KLING + "$", "method": "POST", "mode": "task_create",
                       "hang": 1.0}, replace=True)
        body = b'{"prompt":"two hosts"}'
        seen = len(H.stub.matching("^" + KLING + "$"))
        before = H.counters(user, token, chan)
        out = [{} for _ in range(20)]
        th = [harness.request_in_thread(out[i], H.lighttpd_port if i % 2 else pool.port,
                                        "POST", KLING, auth(token, idem(key)), body)
              for i in range(20)]
        for t in th:
            t.join(90)
        for i, o in enumerate(out):
            expect_ok(o.get("r"), "submit %d (%s)" % (i, o.get("e")))
        eq(len({o["r"].body for o in out}), 1, "20 answers: distinct bodies")
        eq(len(H.stub.matching("^" + KLING + "$")) - seen, 1, "20 submits: forwarded")
        charged(user, token, chan, before, 1000, what="20 submits on two hosts")
    finally:
        pool.stop()


@S.test(("lighttpd",))
def test_idempotency_key_misuse(front, port):
    """The same key with another body is 422, nothing forwarded; a key that
    is no printable ASCII is 400; an upstream 5xx gives the key up, so the
    retry is forwarded."""
    user, token, chan = account({"PassthroughQuota": 1000})
    key = harness.rand_name("idem")
    H.stub.script({"path": "^" + KLING + "$", "method": "POST", "mode": "task_create"}, replace=True)
    r = request(port, "POST", KLING, auth(token, idem(key)), b'{"duration":5}')
    expect_ok(r, "first")
    seen = len(H.stub.requests())
    before = H.counters(user, token, chan)
    r = request(port, "POST", KLING, auth(token, idem(key)), b'{"duration":10}')
    expect_gw_error(r, 422, "idempotency_key_reused",
                    "该 Idempotency-Key 已用于另一个请求（方法、路径或请求体不同）", "another body")
    r = request(port, "POST", KLING + "/x", auth(token, idem(key)), b'{"duration":5}')
    eq(r.status, 422, "another path")
    r = request(port, "POST", KLING, auth(token, idem("a" * 256)), b'{}')
    expect_gw_error(r, 400, "invalid_idempotency_key",
                    "Idempotency-Key 须为 1 到 255 个可打印 ASCII 字符", "a key of 256 bytes")
    time.sleep(0.3)
    eq(len(H.stub.requests()), seen, "misuse: forwarded")
    eq(H.counters(user, token, chan), before, "misuse: counters")
    # a 5xx frees the key
    key = harness.rand_name("idem")
    H.stub.script({"path": "^" + KLING + "$", "method": "POST", "status": 503, "times": 1,
                   "body": '{"error":"busy"}'},
                  {"path": "^" + KLING + "$", "method": "POST", "mode": "task_create"}, replace=True)
    r = request(port, "POST", KLING, auth(token, idem(key)), b'{"duration":5}')
    eq(r.status, 503, "first: upstream 503")
    r = request(port, "POST", KLING, auth(token, idem(key)), b'{"duration":5}')
    expect_ok(r, "retry after a 503")
    check(r.header("Idempotent-Replayed") is None, "retry after a 503 was forwarded")
    eq(len(H.sql("SELECT state FROM bltcy_idempotency WHERE token_id=%s AND idem_key=%s",
                 (token["id"], key))), 1, "the key's row")


@S.test(("lighttpd",))
def test_idempotent_repeat_while_in_flight(front, port):
    """A repeat while the first is still in flight waits IDEMPOTENCY_WAIT
    seconds for it, then gets 409; nothing of it is forwarded or charged,
    and once the first is answered a repeat gets that answer."""
    user, token, chan = account({"PassthroughQuota": 1000})
    key = harness.rand_name("idem")
    ev = harness.rand_name("ev")
    H.stub.script({"path": "^" + KLING + "$", "method": "POST", "mode": "task_create",
                   "hang": 30, "event": ev}, replace=True)
    body = b'{"duration":5}'
    first = {}
    before = H.counters(user, token, chan)
    seen = len(H.stub.matching("^" + KLING + "$"))
    t = harness.request_in_thread(first, port, "POST", KLING, auth(token, idem(key)), body)
    check(H.stub.wait("^" + KLING + "$", seen + 1), "the first reached the stub")
    t0 = time.time()
    r = request(port, "POST", KLING, auth(token, idem(key)), body)
    waited = time.time() - t0
    expect_gw_error(r, 409, "idempotency_key_in_flight",
                    "相同 Idempotency-Key 的请求仍在处理中，请稍后重试", "repeat in flight")
    check(IDEM_WAIT - 0.2 <= waited < IDEM_WAIT + 2, "repeat in flight waited %.1f s" % waited)
    eq(len(H.stub.matching("^" + KLING + "$")) - seen, 1, "repeat in flight: forwarded")
    H.stub.release(ev)
    t.join(30)
    expect_ok(first.get("r"), "the first")
    r = request(port, "POST", KLING, auth(token, idem(key)), body)
    expect_ok(r, "repeat once answered")
    eq((r.body, r.header("Idempotent-Replayed")), (first["r"].body, "true"), "repeat once answered")
    charged(user, token, chan, before, 1000, what="first and repeats")


# ---------------------------------------------------------------------------
# runner


def start(keep):
    global H
    H = harness.start_suite(keep, workers=4, config={"IDEMPOTENCY_WAIT": str(IDEM_WAIT)})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
