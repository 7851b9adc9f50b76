#!/usr/bin/python3
"""What a flood of requests with an unknown token costs a valid client.

On loopback, in a temporary directory (bench.py's setup): a private
MariaDB, the nginx stand-in for the old gateway, the relay pool (strict
metering) behind lighttpd, one channel and one valid token. Each round
runs the valid client alone, then again while FLOOD_CONNS more connections
send one unknown token (wrk, keep-alive): as fast as they are answered, or
each waiting FLOOD_DELAY_MS between requests, so that the flood offers the
same rate whatever it costs the relay. It prints the valid client's req/s
and p99, what the flood got, and the database statements the flood cost
(MariaDB's Questions, less the valid client's share measured alone). Bounded: ROUNDS x (2 x SECONDS + 2) s of
load. Not part of `make test`.

    BLTCY_BUILD=build python3 tests/bench/bad_token_flood.py

Environment (all optional):
  FLOOD_ROUNDS=3       rounds (the figures printed at the end are medians)
  FLOOD_SECONDS=10     length of each measured run
  FLOOD_CONNS=128      connections of the flood
  FLOOD_VALID_CONNS=4  connections of the valid client
  FLOOD_DELAY_MS=0     each flood connection's pause between requests
  FLOOD_WORKERS=4      RELAY_WORKERS
  FLOOD_RELAY_ENV=     more relay config keys, "KEY=VAL KEY=VAL"
"""

import json
import os
import random
import re
import statistics
import string
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# bench.py reads its knobs when imported: one front, this script's pool
os.environ.setdefault("BENCH_FRONTS", "lighttpd")
os.environ["BENCH_WORKERS"] = os.environ.get("FLOOD_WORKERS", "4")
os.environ["BENCH_RELAY_ENV"] = os.environ.get("FLOOD_RELAY_ENV", "")
sys.path.insert(0, HERE)
import bench  # noqa: E402

ROUNDS = bench.env_int("FLOOD_ROUNDS", 3)
SECONDS = bench.env_int("FLOOD_SECONDS", 10)
CONNS = bench.env_int("FLOOD_CONNS", 128)
VALID_CONNS = bench.env_int("FLOOD_VALID_CONNS", 4)
DELAY_MS = bench.env_int("FLOOD_DELAY_MS", 0)


def bad_token():
    return "sk-" + "".join(random.choice(string.ascii_letters + string.digits)
                           for _ in range(48))


def wrk(b, port, conns, seconds, token, out, script="post.lua", delay_ms=0, path=bench.PATH):
    """wrk as bench.py runs it, with this token and script; the result
    (or the error) to out."""
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_POST_LUA=os.path.join(HERE, "post.lua"),
               FLOOD_DELAY_MS=str(delay_ms))
    argv = ["wrk", "-t%d" % min(conns, 2), "-c%d" % conns, "-d%ds" % seconds, "--latency",
            "--timeout", "10s", "-s", os.path.join(HERE, script),
            "http://127.0.0.1:%d%s" % (port, path)]
    try:
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=seconds + 60)
        out_text = p.stdout.decode("utf-8", "replace")
        m = re.search(r"^BENCHJSON (\{.*\})$", out_text, re.M)
        if p.returncode != 0 or not m:
            raise bench.BenchError("wrk failed (exit %d): %s %s" % (
                p.returncode, out_text[-1500:], p.stderr.decode()[-500:]))
        r = json.loads(m.group(1))
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        r["errors"] = r["non2xx"] + r["err_connect"] + r["err_read"] + r["err_write"] + \
            r["err_timeout"]
        out["r"] = r
    except Exception as e:  # noqa: BLE001
        out["e"] = e


def refusals(port):
    """bltcy_token_refusals_total by label, {} from a relay without it."""
    st, body = bench.http(port, "/bltcy/metrics")
    return {k.decode(): int(v) for k, v in
            re.findall(rb'^bltcy_token_refusals_total\{by="([a-z]+)"\} (\d+)$', body, re.M)}


def one_round(b, port, token):
    alone = {}
    s0 = b.db_status()
    wrk(b, port, VALID_CONNS, SECONDS, token, alone)
    s1 = b.db_status()
    if "e" in alone:
        raise alone["e"]
    flood, valid = {}, {}
    # the flood runs a second before and after the valid client's run
    th = threading.Thread(target=wrk, args=(b, port, CONNS, SECONDS + 2, bad_token(), flood),
                          kwargs={"script": "flood.lua", "delay_ms": DELAY_MS,
                                  "path": bench.PATH + "/flood"})
    s2 = b.db_status()
    ref0 = refusals(port)
    th.start()
    time.sleep(1)
    wrk(b, port, VALID_CONNS, SECONDS, token, valid)
    th.join(SECONDS + 90)
    s3 = b.db_status()
    ref1 = refusals(port)
    for o in (valid, flood):
        if "e" in o:
            raise o["e"]
    q_alone = bench.Bench.db_delta(s0, s1)["Questions"]
    q_flood = bench.Bench.db_delta(s2, s3)["Questions"]
    per_valid = q_alone / max(alone["r"]["requests"], 1)
    flood_q = q_flood - per_valid * valid["r"]["requests"]
    return {"alone_rps": alone["r"]["rps"], "alone_p99_ms": alone["r"]["p99_us"] / 1000.0,
            "alone_err": alone["r"]["errors"],
            "flood_rps_valid": valid["r"]["rps"], "flood_p99_ms": valid["r"]["p99_us"] / 1000.0,
            "flood_err_valid": valid["r"]["errors"],
            "flood_requests": flood["r"]["requests"], "flood_rps": flood["r"]["rps"],
            "flood_db_per_req": flood_q / max(flood["r"]["requests"], 1),
            "flood_refusals": {k: ref1[k] - ref0.get(k, 0) for k in ref1},
            "valid_non2xx": valid["r"]["non2xx"]}


def main():
    b = bench.Bench()
    bench.raise_nofile()
    b.start_db()
    b.start_upstream()
    b.setup_data()
    why = b.start_relay("strict")
    if why:
        raise bench.BenchError("the relay did not start: %s" % why)
    b.start_fronts()
    b.wait_health()
    b.smoke()
    port = b.fronts["lighttpd"]
    bench.log("build %s; %d valid connections, %d flood connections (pause %d ms), %d s runs, "
              "%d workers; load average %.2f" % (bench.BUILD, VALID_CONNS, CONNS, DELAY_MS, SECONDS,
                                                 bench.WORKERS, os.getloadavg()[0]))
    rows = []
    for i in range(ROUNDS):
        r = one_round(b, port, b.token)
        rows.append(r)
        bench.log("round %d: alone %.0f req/s p99 %.1f ms | under flood %.0f req/s p99 %.1f ms "
                  "(valid errors %d, non-2xx %d) | flood %.0f req/s, %.3f DB statements a "
                  "request, refused %s" % (
                      i + 1, r["alone_rps"], r["alone_p99_ms"], r["flood_rps_valid"],
                      r["flood_p99_ms"], r["flood_err_valid"], r["valid_non2xx"], r["flood_rps"],
                      r["flood_db_per_req"], r["flood_refusals"] or "(not counted)"))

    # what the valid client got other than 200, from the relay's log (the
    # flood's path is another)
    other = {}
    with open(os.path.join(b.dir, "relay.log"), encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r" POST %s service=\S+ token=\d+ channel=\d+ status=(\d+) " %
                          re.escape(bench.PATH), line)
            if m and m.group(1) != "200":
                other[m.group(1)] = other.get(m.group(1), 0) + 1
    bench.log("the valid client's answers other than 200 (relay log): %s" % (other or "none"))

    def med(k):
        return statistics.median(r[k] for r in rows)
    print("flood: valid client alone %.0f req/s, p99 %.1f ms; under a %d-connection bad-token "
          "flood %.0f req/s (%.2fx slower), p99 %.1f ms; the flood got %.0f answers/s at "
          "%.3f DB statements each (medians of %d rounds)" % (
              med("alone_rps"), med("alone_p99_ms"), CONNS, med("flood_rps_valid"),
              med("alone_rps") / max(med("flood_rps_valid"), 1), med("flood_p99_ms"),
              med("flood_rps"), med("flood_db_per_req"), ROUNDS))
    b.stop()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bench.BenchError as e:
        print("flood: setup failed: %s" % e, file=sys.stderr)
        sys.exit(2)
    except subprocess.TimeoutExpired as e:
        print("flood: timed out: %s" % e, file=sys.stderr)
        sys.exit(2)
