"""Which source files run for one charged POST /kling/...: the files a
reader opens to follow one request. gdb attaches to every process of a
one-worker pool (worker, charger, master) with a breakpoint on every
function of fcgi/ and common/ that logs each hit; a function counts when
it was hit while the request ran and not in an idle window before it.

    BLTCY_BUILD=build /usr/bin/python3 tests/bench/files_run.py

Prints "files: N in fcgi/: M" and each file with the functions that ran
(process:function). Not part of make test: it takes about two minutes."""
import glob
import json
import os
import subprocess
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness

H = harness.Harness(workers=1)
H.start()
user, token, chan = H.setup_account()
pids = {"worker": H.workers_pids()[0]}
if H.charger_pid():                 # strict metering's
    pids["charger"] = H.charger_pid()
pids["master"] = H.procs["relay"].pid
files = sorted(glob.glob("fcgi/*.c") + glob.glob("common/*.c"))
gdbs = {}
for name, pid in pids.items():
    script = os.path.join(H.dir, "g-%s.gdb" % name)
    specs = []
    for src in files:
        obj = os.path.join(os.environ.get("BLTCY_BUILD", "build"), src[:-2] + ".o")
        for line in subprocess.run(["nm", obj], capture_output=True, text=True).stdout.split("\n"):
            parts = line.split()
            if len(parts) == 3 and parts[1] in "Tt" and not parts[2].startswith("."):
                specs.append("%s:%s" % (os.path.basename(src), parts[2].split(".")[0]))
    with open(script, "w") as f:
        f.write("set pagination off\nset confirm off\nset breakpoint pending off\n")
        f.write("python\nimport gdb, time\nlog = open(%r, 'w', buffering=1)\nclass B(gdb.Breakpoint):\n    def stop(self):\n        log.write('%%.3f %%s\\n' %% (time.time(), self.location))\n        return False\n" % (script + ".hits"))
        f.write("bs = []\nfor s in %r:\n    try:\n        bs.append(B(s, internal=True))\n    except Exception:\n        pass\n" % specs)
        f.write("print('READY')\nend\n")
        f.write("continue\n")
    out = open(os.path.join(H.dir, "g-%s.out" % name), "w")
    gdbs[name] = (subprocess.Popen(["gdb", "-q", "-p", str(pid), "-batch", "-x", script],
                                   stdout=out, stderr=subprocess.STDOUT), out.name)
for name, (p, path) in gdbs.items():
    harness.wait_for(lambda: "READY" in open(path).read(), 600, "gdb on " + name, interval=0.5)
t0 = time.time()
time.sleep(8)
t1 = time.time()
body = json.dumps({"model_name": "kling-v1", "prompt": "a cat"}).encode()
r = harness.request(H.nginx_port, "POST", "/kling/v1/videos/text2video",
                    [("Authorization", "Bearer sk-" + token["key"]),
                     ("Content-Type", "application/json")], body, timeout=120)
print("status", r.status, r.header("X-Bltcy-Quota"))
time.sleep(4.5)  # the usage writer writes it on the master's clock
t2 = time.time()
print("windows: idle %.1f s, request %.1f s" % (t1 - t0, t2 - t1))

used = {}
for name, (p, path) in gdbs.items():
    idle, req = set(), set()
    for line in open(os.path.join(H.dir, "g-%s.gdb.hits" % name)):
        t, loc = line.split()
        t = float(t)
        if t0 <= t < t1:
            idle.add(loc)
        elif t1 <= t < t2:
            req.add(loc)
    for loc in req - idle:
        f, fn = loc.split(":")
        f = ("fcgi/" if os.path.exists("fcgi/" + f) else "common/") + f
        used.setdefault(f, set()).add((name, fn))
for name, (p, path) in gdbs.items():
    p.kill()
H.stop()
fc = [f for f in used if f.startswith("fcgi/")]
print("files:", len(used), "in fcgi/:", len(fc))
for f in sorted(used):
    print("  %-22s %s" % (f, ", ".join(sorted("%s:%s" % x for x in used[f]))[:200]))
