"""A tiny test runner shared by the integration suites (no pytest), and the
checks of the relay's answers they have in common.

A suite registers test functions; tests that concern HTTP behaviour run
once per front server (lighttpd, nginx) and get (front, port). Output:
one line per test, `ok - name` or `not ok - name: reason`, comment lines
starting with `#`, and a closing `<suite>: N passed, M failed`.

    S = runner.Suite("routing")
    @S.test()
    def test_x(front, port): ...
    sys.exit(S.main(sys.argv[1:], start))   # start(keep) -> a started Harness

BLTCY_METERING=lease runs a suite's main pool in lease metering (METERING
below; the harness writes it into the pool's configuration) and names the
suite `<name>-lease`. A test about one mode alone says so, and is skipped
in the other with its reason: @S.test(only=("strict", "why")).
"""

import json
import os
import signal
import sys
import time
import traceback

FRONTS = ("lighttpd", "nginx")

# The metering mode of the suite's main pool: strict unless BLTCY_METERING
# says otherwise. A pool a test starts takes it too, unless given its own.
METERING = os.environ.get("BLTCY_METERING", "strict")


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class Timeout(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail("%s: want %r, got %r" % (what, want, got))

# ---------------------------------------------------------------------------
# what the relay answers, shared by the suites


def short(r):
    b = r.body if len(r.body) <= 300 else r.body[:300] + b"..."
    return "%d %s" % (r.status, b.decode("utf-8", "replace"))


def gw_error_body(rid, code, msg):
    return ('{"error":{"message":%s,"type":"new_api_error","code":"%s"}}' % (
        json.dumps("%s (request id: %s)" % (msg, rid), ensure_ascii=False), code)).encode()


def expect_gw_error(r, status, code, msg, what=""):
    rid = r.header("X-Request-Id")
    check(rid, "%s: no X-Request-Id header on %s" % (what, short(r)))
    want = gw_error_body(rid, code, msg)
    if r.status != status or r.body != want:
        raise Fail("%s: want %d %s, got %s" % (what, status, want.decode(), short(r)))
    ct = r.header("Content-Type") or ""
    check(ct.startswith("application/json"), "%s: Content-Type %r" % (what, ct))


def transport_error_body(reason):
    return ('{"code":"request_failed","message":%s,"data":null}' % json.dumps(
        "转发请求到旧网关失败: " + reason, ensure_ascii=False)).encode()


def expect_transport_error(r, status, reason, what=""):
    check(r.header("X-Request-Id"), "%s: no X-Request-Id header on %s" % (what, short(r)))
    want = transport_error_body(reason)
    if r.status != status or r.body != want:
        raise Fail("%s: want %d %s, got %s" % (what, status, want.decode(), short(r)))
    ct = r.header("Content-Type") or ""
    check(ct.startswith("application/json"), "%s: Content-Type %r" % (what, ct))


def expect_ok(r, what=""):
    """A relayed 200; returns its request id."""
    if r.status != 200:
        raise Fail("%s: want 200, got %s" % (what, short(r)))
    check(r.header("X-Request-Id"), "%s: no X-Request-Id on a relayed response" % what)
    return r.header("X-Request-Id")


class Suite:
    def __init__(self, name, timeout=150, after_each=None,
                 watch=("relay", "lighttpd", "nginx", "stub", "mariadbd")):
        """after_each() runs after every test (e.g. to reset stubs); watch
        names the harness processes whose death is reported."""
        self.name = name if METERING == "strict" else name + "-" + METERING
        self.timeout = timeout
        self.after_each = after_each
        self.watch = watch
        self.tests = []

    def test(self, fronts=True, only=None):
        """Register a test function named test_<name>. With fronts=True it
        runs once per front server, with a tuple once per front named, and
        gets (front, port); with fronts=False it takes no argument.
        only=(mode, why): a test of that metering mode alone, skipped in
        the other (printed with why, counted neither passed nor failed)."""
        def deco(fn):
            run = fn
            if only is not None and only[0] != METERING:
                def run(*args):
                    raise Skip("%s metering only: %s" % only)
            self.tests.append((fn.__name__[len("test_"):], run, fronts))
            return fn
        return deco

    def cases(self, filters):
        out = []
        for name, fn, fronts in self.tests:
            if fronts:
                for f in (FRONTS if fronts is True else fronts):
                    out.append(("%s[%s]" % (name, f), fn, f))
            else:
                out.append((name, fn, None))
        if filters:
            out = [c for c in out if any(s in c[0] for s in filters)]
        return out

    def main(self, argv, start):
        """argv: [-k SUBSTRING]... [--keep]. start(keep) brings up and
        returns the harness (it must stop everything on h.stop())."""
        filters = []
        keep = False
        i = 0
        while i < len(argv):
            if argv[i] == "-k" and i + 1 < len(argv):
                filters.append(argv[i + 1])
                i += 2
                continue
            if argv[i] == "--keep":
                keep = True
            i += 1
        cases = self.cases(filters)
        t_start = time.time()
        signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
        h = None
        try:
            h = start(keep)
        except Exception as e:  # noqa: BLE001
            reason = str(e).replace("\n", " | ")[:2000]
            print("not ok - setup: %s" % reason)
            for name, _, _ in cases:
                print("not ok - %s: harness setup failed" % name)
            if h is not None:
                h.stop()
            print("%s: 0 passed, %d failed" % (self.name, len(cases) + 1))
            return 1
        passed = failed = skipped = 0

        def on_alarm(signum, frame):
            raise Timeout("test took longer than %d s" % self.timeout)
        signal.signal(signal.SIGALRM, on_alarm)
        try:
            for name, fn, front in cases:
                t0 = time.time()
                signal.alarm(self.timeout)
                try:
                    if front:
                        fn(front, h.fronts[front])
                    else:
                        fn()
                    signal.alarm(0)
                    passed += 1
                    print("ok - %s (%.1fs)" % (name, time.time() - t0), flush=True)
                except Skip as e:
                    signal.alarm(0)
                    skipped += 1
                    print("ok - %s # skip %s" % (name, e), flush=True)
                except Exception as e:  # noqa: BLE001
                    signal.alarm(0)
                    failed += 1
                    if isinstance(e, (Fail, Timeout)):
                        reason = str(e)
                    else:
                        tb = traceback.extract_tb(e.__traceback__)[-1]
                        reason = "%s: %s (at %s:%d)" % (type(e).__name__, e, os.path.basename(tb.filename),
                                                       tb.lineno)
                    print("not ok - %s: %s" % (name, reason.replace("\n", " | ")[:3000]), flush=True)
                if self.after_each is not None:
                    try:
                        self.after_each()
                    except Exception:  # noqa: BLE001
                        pass
                # a dead pool or front would fail everything after: say so once
                for pname in self.watch:
                    p = h.procs.get(pname)
                    if p is not None and p.poll() is not None:
                        print("# %s exited with %s after %s" % (pname, p.returncode, name), flush=True)
                        h.procs.pop(pname)
        finally:
            if failed:
                print("# last relay log lines:")
                for line in h.log_tail("relay.log", 15).splitlines():
                    print("#   " + line[:300])
                for line in h.log_tail("relay.out", 10).splitlines():
                    print("#   out: " + line[:300])
            h.stop()
        if skipped:
            print("# %d skipped" % skipped)
        print("# %s run took %.0fs" % (self.name, time.time() - t_start))
        print("%s: %d passed, %d failed" % (self.name, passed, failed))
        return 0 if failed == 0 else 1
