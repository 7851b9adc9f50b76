"""The pair the differential test and its fuzz compare: the Go reference
(tests/goref/main.go, built here with the distribution's go, offline, in a
private GOCACHE and HOME) and the relay's reader ($BLTCY_BUILD/price-scan,
built by make around json_fields of common/jsonread.c). Both take the same
cases on stdin and answer a line each (see main.go)."""

import os
import shutil
import subprocess
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def build_go(tmp):
    """The Go reference built into tmp; its path. Raises with go's output."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("go not found: install golang-go (./install.sh --deps)")
    env = dict(os.environ)
    env.update({"HOME": tmp, "GOCACHE": os.path.join(tmp, "gocache"),
                "GOPATH": os.path.join(tmp, "gopath"), "GO111MODULE": "off",
                "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
                "GOTOOLCHAIN": "local"})
    out = os.path.join(tmp, "goref")
    r = subprocess.run([go, "build", "-o", out, "main.go"], cwd=HERE, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("go build failed:\n" + r.stdout.decode(errors="replace"))
    return out


def relay_scan():
    b = os.environ.get("BLTCY_BUILD", "build")
    p = os.path.join(b if os.path.isabs(b) else os.path.join(ROOT, b), "price-scan")
    if not os.access(p, os.X_OK):
        raise RuntimeError("%s not built (make)" % p)
    return p


def encode(cases):
    """cases: (paths, body bytes) pairs, as the programs read them."""
    out = []
    for paths, body in cases:
        out.append(b"P %d\n" % len(paths))
        for p in paths:
            out.append(p.encode() + b"\n")
        out.append(b"B %d\n" % len(body))
        out.append(body + b"\n")
    out.append(b"F\n")
    return b"".join(out)


class Pair:
    """Both programs, running; answer(cases) gives both answers of each."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="bltcy-goref-")
        self.go = subprocess.Popen([build_go(self.tmp)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE)
        self.c = subprocess.Popen([relay_scan()], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)

    def answer(self, cases):
        data = encode(cases)
        got = []

        def feed(p):
            p.stdin.write(data)
            p.stdin.flush()
        # written from threads: a reader blocked on a full pipe of answers
        # stops reading its cases
        th = [threading.Thread(target=feed, args=(p,)) for p in (self.go, self.c)]
        for t in th:
            t.start()
        for p in (self.go, self.c):
            lines = []
            for _ in cases:
                line = p.stdout.readline()
                if not line:
                    raise RuntimeError("a reader died (exit %s)" % p.poll())
                lines.append(line.decode().rstrip("\n"))
            got.append(lines)
        for t in th:
            t.join()
        return list(zip(got[0], got[1]))

    def close(self):
        for p in (self.go, self.c):
            try:
                p.stdin.close()
                p.wait(10)
            except Exception:  # noqa: BLE001
                p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)
