#!/usr/bin/python3
"""Integration tests of keys that leave rotation and come back: new-api's
AutomaticDisableChannelEnabled, AutomaticDisableStatusCodes and
AutomaticDisableKeywords and a channel's auto_ban, per key of a channel
(its state in channels.channel_info, as new-api keeps it), the channel
auto-disabled (status 3) when no key is left, the relay's own refusals
never counting; AutomaticEnableChannelEnabled's probe of disabled keys.

The real pool under spawn-fcgi behind lighttpd, a private MariaDB and the
stub upstream (which records each request's Authorization). The pool
probes every second (KEY_PROBE_INTERVAL=1).

Prints one line per test and ends with `keys: N passed, M failed`.

Usage: test_keys.py [-k SUBSTRING]... [--keep]
"""

import sys
sys.dont_write_bytecode = True
import json
import os
import re
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import runner  # noqa: E402
from harness import rec_header, request, wait_for  # noqa: E402

H = None
Fail, check, eq = runner.Fail, runner.check, runner.eq
short, expect_gw_error = runner.short, runner.expect_gw_error

UNAUTH = '{"error":{"message":"invalid api key"}}'
JSON_HDR = [["Content-Type", "application/json"]]
OPTIONS = ("AutomaticDisableChannelEnabled", "AutomaticEnableChannelEnabled",
           "AutomaticDisableStatusCodes", "AutomaticDisableKeywords")


def after_each():
    """No rule, option or channel of one test reaches the next: the
    channels made are disabled by hand, which no probe touches."""
    H.stub.script(replace=True)
    H.sql("DELETE FROM options WHERE `key` IN (%s)" % ",".join(["%s"] * len(OPTIONS)), OPTIONS)
    H.sql("UPDATE channels SET status = 2")


S = runner.Suite("keys", timeout=120, after_each=after_each)


def test():
    return S.test(("lighttpd",))


def options(**kv):
    """new-api's options, as its admin stores them (booleans as
    "true"/"false")."""
    for k, v in kv.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        H.sql("REPLACE INTO options (`key`, value) VALUES (%s, %s)", (k, v))


def auth(token):
    return harness.auth(token, harness.JSON)


def account(keys, auto_ban=1, **kw):
    """A user, a token and a channel on the stub whose key column holds
    keys, one a line."""
    user = H.make_user()
    token = H.make_token(user, **kw)
    chan = H.make_channel(user["group"], key="\n".join(keys), auto_ban=auto_ban)
    return user, token, chan


def chan_row(chan):
    return H.sql("SELECT status, channel_info, other_info FROM channels WHERE id=%s", (chan["id"],))[0]


def key_states(chan):
    """multi_key_status_list of the channel's channel_info, {} if none."""
    info = chan_row(chan)["channel_info"]
    return json.loads(info).get("multi_key_status_list") or {} if info else {}


def ban_rows(chan):
    return [r["content"] for r in H.sql("SELECT content FROM logs WHERE type=5 AND channel_id=%s ORDER BY id",
                                        (chan["id"],))]


def bearer(rec):
    a = rec_header(rec, "Authorization")
    return a[0][len("Bearer "):] if len(a) == 1 and a[0].startswith("Bearer ") else a


def submits(port, token, mark, n, start=0):
    """n POSTs to the stub's mark path: [(status, body, key used)]."""
    out = []
    for i in range(start, start + n):
        path = "/kling/v1/%s/%d" % (mark, i)
        r = request(port, "POST", path, auth(token), b"{}")
        recs = [x for x in H.stub.requests() if x["path"] == path]
        out.append((r.status, r.body, bearer(recs[-1]) if recs else None))
    return out


def metric(port, name, labels):
    """A series of the pool's /bltcy/metrics (labels: what is between the
    braces, or None for none), None when absent."""
    r = request(port, "GET", "/bltcy/metrics", timeout=10)
    eq(r.status, 200, "GET /bltcy/metrics")
    series = re.escape(name) + ("" if labels is None else r"\{%s\}" % re.escape(labels))
    m = re.search(r"^%s (\d+)$" % series, r.body.decode(), re.M)
    return int(m.group(1)) if m else None


def refuse(mark, key, status=401, body=UNAUTH, headers=JSON_HDR):
    """The stub answers key's requests to mark's paths so."""
    return {"path": mark, "auth": "Bearer " + key, "status": status, "body": body, "headers": headers}


# ---------------------------------------------------------------------------
# disabling


@test()
def test_401_disables_that_key_only(front, port):
    """Keys kA, kB; the upstream refuses kA (401). With the option on, the
    submit that went with kA gets that 401 as it came, kA is disabled in
    channel_info (status 3, why, when) with one type-5 logs row, the
    channel stays enabled, and every later submit goes with kB. The
    metric says one key of the channel is disabled."""
    options(AutomaticDisableChannelEnabled=True)
    mark = harness.rand_name("k4")
    ka, kb = "kA-" + harness.rand_key(12), "kB-" + harness.rand_key(12)
    user, token, chan = account([ka, kb])
    H.stub.script(refuse(mark, ka))
    banned0 = metric(port, "bltcy_keys_banned_total", None)
    got = []
    for i in range(2):      # round robin: one of the first two goes with kA
        got += submits(port, token, mark, 1, i)
        if got[-1][0] == 401:
            break
    eq(got[-1], (401, UNAUTH.encode(), ka), "the submit that went with kA: (status, body, key)")
    check(all(g[0] == 200 and g[2] == kb for g in got[:-1]), "submits before kA's: %r" % got[:-1])
    row = chan_row(chan)
    eq(row["status"], 1, "channel status after one key's 401")
    info = json.loads(row["channel_info"])
    eq(info["multi_key_status_list"], {"0": 3}, "multi_key_status_list")
    eq((info["is_multi_key"], info["multi_key_size"]), (True, 2), "is_multi_key, multi_key_size")
    eq(info["multi_key_disabled_reason"]["0"], "上游返回 401：" + UNAUTH, "multi_key_disabled_reason of kA")
    check(abs(info["multi_key_disabled_time"]["0"] - time.time()) < 60,
          "multi_key_disabled_time %r" % info["multi_key_disabled_time"])
    rows = ban_rows(chan)
    eq(rows, ["通道「%s」（#%d）的密钥 #1 已被自动禁用，原因：上游返回 401：%s" % (chan["name"], chan["id"], UNAUTH)],
       "type-5 logs rows")
    after = submits(port, token, mark, 6, 10)
    eq([(g[0], g[2]) for g in after], [(200, kb)] * 6, "6 submits after the ban: (status, key)")
    eq(metric(port, "bltcy_keys_disabled", 'channel="%d"' % chan["id"]), 1, "bltcy_keys_disabled of the channel")
    eq(metric(port, "bltcy_keys_banned_total", None) - banned0, 1, "bltcy_keys_banned_total, since before")


@test()
def test_last_key_disables_the_channel(front, port):
    """Both keys refused: the second ban leaves no key, so the channel is
    auto-disabled (status 3, other_info's status_reason "All keys are
    disabled", its abilities off, as new-api) and the next submit finds
    no channel (503 model_not_found)."""
    options(AutomaticDisableChannelEnabled=True)
    mark = harness.rand_name("kl")
    ka, kb = "kA-" + harness.rand_key(12), "kB-" + harness.rand_key(12)
    user, token, chan = account([ka, kb])
    H.stub.script(refuse(mark, ka), refuse(mark, kb))
    got = submits(port, token, mark, 2)
    eq(sorted(got, key=lambda g: g[2]), sorted([(401, UNAUTH.encode(), ka), (401, UNAUTH.encode(), kb)],
                                               key=lambda g: g[2]), "two submits, one a key")
    row = chan_row(chan)
    eq(row["status"], 3, "channel status with no key left")
    eq(json.loads(row["other_info"])["status_reason"], "All keys are disabled", "other_info status_reason")
    eq(json.loads(row["channel_info"])["multi_key_status_list"], {"0": 3, "1": 3}, "multi_key_status_list")
    eq({r["enabled"] for r in H.sql("SELECT enabled FROM abilities WHERE channel_id=%s", (chan["id"],))}, {0},
       "abilities enabled")
    eq(len(ban_rows(chan)), 2, "type-5 logs rows")
    r = request(port, "POST", "/kling/v1/%s/after" % mark, auth(token), b"{}")
    expect_gw_error(r, 503, "model_not_found", "分组 %s 下模型 kling 无可用渠道" % user["group"],
                    "a submit after the last key")


@test()
def test_single_key_channel(front, port):
    """A channel of one key is that key: its 401 disables the channel
    (status 3, other_info's status_reason says why)."""
    options(AutomaticDisableChannelEnabled=True)
    mark = harness.rand_name("k1")
    k = "k1-" + harness.rand_key(12)
    user, token, chan = account([k])
    H.stub.script(refuse(mark, k))
    eq(submits(port, token, mark, 1), [(401, UNAUTH.encode(), k)], "the submit")
    row = chan_row(chan)
    eq((row["status"], json.loads(row["other_info"])["status_reason"], row["channel_info"]),
       (3, "上游返回 401：" + UNAUTH, None), "(status, status_reason, channel_info)")


@test()
def test_option_off_disables_nothing(front, port):
    """AutomaticDisableChannelEnabled off (new-api's default, and as
    stored "false"): 401s disable nothing."""
    mark = harness.rand_name("ko")
    k = "k-" + harness.rand_key(12)
    for stored in (None, False):
        if stored is not None:
            options(AutomaticDisableChannelEnabled=stored)
        user, token, chan = account([k, k + "2"])
        H.stub.script(refuse(mark, k), refuse(mark, k + "2"))
        got = submits(port, token, mark, 4)
        eq([g[0] for g in got], [401] * 4, "answers (option %r)" % stored)
        eq((chan_row(chan)["status"], chan_row(chan)["channel_info"], ban_rows(chan)), (1, None, []),
           "(status, channel_info, logs rows) with the option %r" % stored)


@test()
def test_keyword_disables(front, port):
    """A status not in AutomaticDisableStatusCodes disables when the
    answer holds a keyword: new-api's defaults without the option (in any
    case), the option's list when set (which replaces them)."""
    options(AutomaticDisableChannelEnabled=True)
    mark = harness.rand_name("kw")
    ka, kb = "kA-" + harness.rand_key(12), "kB-" + harness.rand_key(12)
    body = '{"error":{"message":"YOUR CREDIT BALANCE IS TOO LOW to run this"}}'
    user, token, chan = account([ka, kb])
    H.stub.script(refuse(mark, ka, 400, body), refuse(mark, kb, 400, '{"error":"quota gone"}'))
    got = submits(port, token, mark, 2)
    eq(sorted(g[0] for g in got), [400, 400], "answers")
    eq(key_states(chan), {"0": 3}, "key states: kA's default keyword, kB's none")
    eq(json.loads(chan_row(chan)["channel_info"])["multi_key_disabled_reason"]["0"],
       "上游返回 400，含关键词「your credit balance is too low」", "why")
    options(AutomaticDisableKeywords="  Quota Gone \n\nsomething else\n")
    got = submits(port, token, mark, 1, 2)
    eq(got, [(400, b'{"error":"quota gone"}', kb)], "kB's submit")
    eq(key_states(chan), {"0": 3, "1": 3}, "key states: kB's keyword of the option")
    eq(chan_row(chan)["status"], 3, "channel status")
    # the option's list replaces new-api's
    user, token, chan = account([ka, kb])
    H.stub.script(refuse(mark, ka, 400, body), refuse(mark, kb, 400, body), replace=True)
    submits(port, token, mark, 2, 3)
    eq(key_states(chan), {}, "key states: the default keyword with the option set")


@test()
def test_status_code_ranges(front, port):
    """AutomaticDisableStatusCodes "401, 403，500-599" (a full-width comma,
    as new-api takes): a 503 and a 403 disable, a 402 does not; a 429 never
    does, even in the list ("400-499")."""
    options(AutomaticDisableChannelEnabled=True, AutomaticDisableStatusCodes="401, 403，500-599")
    mark = harness.rand_name("kr")
    keys = ["k%d-%s" % (i, harness.rand_key(8)) for i in range(3)]
    user, token, chan = account(keys)
    H.stub.script(refuse(mark, keys[0], 503, '{"e":1}'), refuse(mark, keys[1], 402, '{"e":2}'),
                  refuse(mark, keys[2], 403, '{"e":3}'))
    got = submits(port, token, mark, 3)
    eq(sorted(g[0] for g in got), [402, 403, 503], "answers")
    eq(key_states(chan), {"0": 3, "2": 3}, "key states")
    options(AutomaticDisableStatusCodes="400-499")
    user, token, chan = account(keys)
    H.stub.script(refuse(mark, keys[0], 429, '{"e":4}'), refuse(mark, keys[1], 429, '{"e":4}'),
                  refuse(mark, keys[2], 429, '{"e":4}'), replace=True)
    got = submits(port, token, mark, 3, 3)
    eq([g[0] for g in got], [429] * 3, "answers 429")
    eq((key_states(chan), chan_row(chan)["status"]), ({}, 1), "429s: (key states, status)")


@test()
def test_auto_ban_off_never(front, port):
    """The channel's auto_ban 0: its keys are never disabled."""
    options(AutomaticDisableChannelEnabled=True)
    mark = harness.rand_name("ka")
    k = "k-" + harness.rand_key(12)
    user, token, chan = account([k, k + "2"], auto_ban=0)
    H.stub.script(refuse(mark, k), refuse(mark, k + "2"))
    eq([g[0] for g in submits(port, token, mark, 4)], [401] * 4, "answers")
    eq((chan_row(chan)["status"], chan_row(chan)["channel_info"], ban_rows(chan)), (1, None, []),
       "(status, channel_info, logs rows)")


@test()
def test_relay_refusals_never_count(front, port):
    """With every 4xx in the list, the relay's own refusals (a token out of
    quota, a token that does not exist, a body a price cannot read, a
    route it does not know) reach no upstream and disable nothing."""
    options(AutomaticDisableChannelEnabled=True, AutomaticDisableStatusCodes="400-428,430-499")
    mark = harness.rand_name("kn")
    user, token, chan = account(["k-" + harness.rand_key(12)], remain_quota=0)
    H.sql("UPDATE users SET quota = 0 WHERE id=%s", (user["id"],))
    H.sql("INSERT INTO bltcy_price_rules (service, model, field, value, multiplier, surcharge)"
          " VALUES ('kling', '', 'duration', '10', 2, 0)")
    try:
        seen = len(H.stub.requests())
        r = request(port, "POST", "/kling/v1/%s/q" % mark, auth(token), b"{}")
        check(r.status in (401, 403), "out of quota: %s" % short(r))
        r = request(port, "POST", "/kling/v1/%s/t" % mark,
                    [("Authorization", "Bearer sk-" + harness.rand_key(48))], b"{}")
        eq(r.status, 401, "unknown token")
        good = H.make_token(user, unlimited=1)
        H.sql("UPDATE users SET quota = 10000000 WHERE id=%s", (user["id"],))
        r = request(port, "POST", "/kling/v1/%s/b" % mark, auth(good), b"{not json")
        eq(r.status, 400, "a body a price cannot read: %s" % short(r))
        r = request(port, "POST", "/nosuch/%s" % mark, auth(good), b"{}")
        eq(r.status, 404, "an unknown route")
        eq(len(H.stub.requests()) - seen, 0, "requests at the upstream")
        eq((chan_row(chan)["status"], chan_row(chan)["channel_info"], ban_rows(chan)), (1, None, []),
           "(status, channel_info, logs rows)")
    finally:
        H.sql("DELETE FROM bltcy_price_rules WHERE service='kling' AND field='duration' AND value='10'")


@test()
def test_disabled_key_still_polls_its_tasks(front, port):
    """A task made with kA is polled with kA after kA is disabled (its
    account is the one that knows it); new submits go with kB."""
    options(AutomaticDisableChannelEnabled=True)
    mark = harness.rand_name("kt")
    ka, kb = "kA-" + harness.rand_key(12), "kB-" + harness.rand_key(12)
    user, token, chan = account([ka, kb])
    base = "/kling/v1/videos/" + mark
    H.stub.script({"method": "POST", "path": "^%s$" % re.escape(base), "mode": "task_create"},
                  {"method": "GET", "path": re.escape(base), "mode": "task_get"})
    made = {}
    for i in range(2):
        r = request(port, "POST", base, auth(token), b"{}")
        eq(r.status, 200, "submit %d" % i)
        rec = [x for x in H.stub.requests() if x["path"] == base][-1]
        made[bearer(rec)] = r.json()
    eq(sorted(made), sorted([ka, kb]), "keys of the two submits")
    tid = json.dumps(made[ka])
    tid = re.search(r"stubA-[0-9a-f]{16}", tid).group(0)
    wait_for(lambda: H.sql("SELECT 1 FROM bltcy_tasks WHERE task_id=%s", (tid,)), 10, "task row")
    H.sql("UPDATE channels SET channel_info = %s WHERE id=%s",
          (json.dumps({"is_multi_key": True, "multi_key_size": 2, "multi_key_status_list": {"0": 3}}),
           chan["id"]))
    for i in range(3):
        r = request(port, "GET", "%s/%s" % (base, tid), auth(token))
        eq(r.status, 200, "poll %d" % i)
        rec = [x for x in H.stub.requests() if x["path"] == "%s/%s" % (base, tid)][-1]
        eq(bearer(rec), ka, "poll %d went with" % i)
    for i in range(3):
        r = request(port, "POST", base, auth(token), b"{}")
        rec = [x for x in H.stub.requests() if x["path"] == base][-1]
        eq((r.status, bearer(rec)), (200, kb), "submit %d after kA was disabled" % i)


# ---------------------------------------------------------------------------
# the probe


@test()
def test_probe_enables_keys_that_pass(front, port):
    """AutomaticEnableChannelEnabled on: of kA, kB (disabled, 3) and kC,
    the probe (GET /v1/models, the default) passes for kA and fails for kB
    (401): kA is enabled again, kB stays disabled, and submits rotate over
    kA and kC. A channel of one key, auto-disabled, whose probe passes is
    enabled again with its abilities. A key disabled by hand (2) is never
    probed."""
    options(AutomaticEnableChannelEnabled=True)
    mark = harness.rand_name("kp")
    ka, kb, kc = ("%s-%s" % (n, harness.rand_key(12)) for n in ("kA", "kB", "kC"))
    kd, ke = "kD-" + harness.rand_key(12), "kE-" + harness.rand_key(12)
    user, token, chan = account([ka, kb, kc, kd])
    H.sql("UPDATE channels SET channel_info = %s WHERE id=%s",
          (json.dumps({"is_multi_key": True, "multi_key_size": 4,
                       "multi_key_status_list": {"0": 3, "1": 3, "3": 2},
                       "multi_key_disabled_reason": {"0": "a", "1": "b", "3": "by hand"}}), chan["id"]))
    one = H.make_channel(user["group"], key=ke, status=3, priority=-1)
    H.stub.script({"path": "^/v1/models$", "auth": "Bearer " + ka, "status": 200, "body": '{"data":[]}'},
                  {"path": "^/v1/models$", "auth": "Bearer " + kb, "status": 401, "body": UNAUTH},
                  {"path": "^/v1/models$", "auth": "Bearer " + ke, "status": 200, "body": '{"data":[]}'})
    wait_for(lambda: key_states(chan) == {"1": 3, "3": 2}, 20, "kA enabled by its probe")
    wait_for(lambda: chan_row(one)["status"] == 1, 20, "the one-key channel enabled by its probe")
    eq({r["enabled"] for r in H.sql("SELECT enabled FROM abilities WHERE channel_id=%s", (one["id"],))}, {1},
       "abilities of the one-key channel")
    # kB is probed again after kA's pass, and stays disabled
    n = len([x for x in H.stub.requests() if x["path"] == "/v1/models" and bearer(x) == kb])
    wait_for(lambda: len([x for x in H.stub.requests() if x["path"] == "/v1/models" and bearer(x) == kb]) > n,
             20, "another probe of kB")
    eq(key_states(chan), {"1": 3, "3": 2}, "key states after kB's second probe")
    probed = {bearer(x) for x in H.stub.requests() if x["path"] == "/v1/models"}
    check(kd not in probed and kc not in probed, "keys probed: %r (kC is enabled, kD disabled by hand)"
          % sorted(probed))
    got = submits(port, token, mark, 6)
    eq(sorted(g[2] for g in got), sorted([ka, kc] * 3), "6 submits' keys")
    eq([g[0] for g in got], [200] * 6, "6 submits' statuses")


@test()
def test_probe_off(front, port):
    """AutomaticEnableChannelEnabled off: no key is probed."""
    mark = harness.rand_name("kq")
    ka = "kA-" + harness.rand_key(12)
    user, token, chan = account([ka, "kB-" + harness.rand_key(12)])
    H.sql("UPDATE channels SET channel_info = %s WHERE id=%s",
          (json.dumps({"multi_key_status_list": {"0": 3}}), chan["id"]))
    H.stub.script({"path": "^/v1/models$", "status": 200, "body": '{"data":[]}'})
    r = request(port, "POST", "/kling/v1/%s/x" % mark, auth(token), b"{}")
    eq(r.status, 200, "a submit (the channels read again)")
    time.sleep(2.5)     # the absence of a probe: two and a half intervals
    eq([bearer(x) for x in H.stub.requests() if x["path"] == "/v1/models" and bearer(x) == ka], [],
       "probes of kA")
    eq(key_states(chan), {"0": 3}, "key states")


def start(keep):
    global H
    H = harness.start_suite(keep, workers=2, config={"KEY_PROBE_INTERVAL": "1"})
    return H


if __name__ == "__main__":
    sys.exit(S.main(sys.argv[1:], start))
