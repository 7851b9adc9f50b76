#!/usr/bin/python3
"""The relay's price field reader against Go's encoding/json on mutated and
generated bodies, for a given time (make fuzz-price-diff; not part of
make test). Bodies come from the corpus of test_goref.py, mutated byte by
byte and token by token, spliced with one another, and from a generator
of JSON objects whose keys are the paths read, spelt as Go still matches
them or nearly. Each case goes to both readers; any two answers that
differ are a difference, written to a file and counted.

Ends with `fuzz-price-diff: N executions, M differences` (exit 1 on any).

Usage: fuzz.py [--seconds N] [--seed N] [--out DIR]
"""

import os
import random
import sys
import time
sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pair  # noqa: E402
import test_goref  # noqa: E402

PATHS = ["duration", "mode", "model", "model_name", "seed", "sound", "keyframes",
         "a", "a.b", "a.c", "a.b.c", "A.B", "camera_control.type",
         "camera_control.config.zoom", "options.parameters.guidanceScale",
         "options.aspectRatio", "mv", "task", "kind", "steps", "x", "Mode",
         "DURATION", "a..b", "a-b", "s", "k", "ks", "_", "n1", "watermark_info.enabled"]

TOKENS = [b"null", b"true", b"false", b"0", b"-0", b"1", b"10", b"10.0", b"1e1", b"1E+1",
          b"0.5", b"-2.5e-3", b"1e400", b"-1e400", b"1e-400", b"123456789012345678",
          b"999999999999999", b"1e15", b"01", b"0.", b"1e", b"-", b".5", b"+1", b"NaN",
          b'""', b'"pro"', b'"PRO"', b'"10"', b'"\\u0000"', b'"\\ud800"', b'"\\udc00"',
          b'"\\ud83d\\ude00"', b'"\\u017f"', b'"\\u212a"', '"\u017f"'.encode(),
          '"\u212a"'.encode(), b'"\xff"', b'"\xc5\xbf"', b'"\xe2\x84\xaa"', b'"\xed\xa0\x80"',
          b'"\xc0\xaf"', b'"\xf4\x90\x80\x80"', b'"a\tb"', b'"\\x"', b'"\\u12"',
          b"{", b"}", b"[", b"]", b",", b":", b" ", b"\n", b"\t", b"\r", b"\x0b", b"\x00",
          b'"duration":', b'"DURATION":null,', b'"duration\\u0000":', b'"mode":"pro",',
          b'"\\u017feed":', '"\u017fOUND":'.encode(), '"\u212aind":'.encode(),
          b'"a":{"b":1},', b'"a":"x",', b'"a":[1,{"b":2}],', b'"A":{"C":3},',
          b'{"a":{"b":{"c":"d"}}}', b"[[[[[[[[[[", b"]]]]]]]]]]", b'"' + b"x" * 70 + b'"',
          b'"' + b"y" * 64 + b'"', b'"model":"kling-v2-master",', b'"model_name":null,',
          b"/*", b"\xef\xbb\xbf", b"'", b"\\", b'"']

INTERESTING = b'"\\{}[],:0123456789-+.eEntfrul \t\r\n\x00\x1f\x7f\x80\xbf\xc0\xc5\xe2\x84\xaa\xed\xff'


def spell(key, rnd):
    """A key as a client might spell it: case, U+017F for s, U+212A for k,
    raw or escaped, or something near that Go does not match."""
    out = []
    for ch in key:
        r = rnd.random()
        if ch in "sS" and r < 0.3:
            out.append(rnd.choice(["\u017f", "\\u017f", "\\u017F"]))
        elif ch in "kK" and r < 0.3:
            out.append(rnd.choice(["\u212a", "\\u212a", "\\u212A"]))
        elif ch.isalpha() and r < 0.3:
            out.append(ch.swapcase())
        elif r < 0.05:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    s = "".join(out)
    r = rnd.random()
    if r < 0.03:
        s += "\\u0000"
    elif r < 0.05:
        s += rnd.choice(["\u0455", "\u212b", "\u1e9e", "x"])
    return s


def gen_value(rnd, depth):
    r = rnd.random()
    if depth < 4 and r < 0.15:
        return gen_object(rnd, depth + 1)
    if depth < 4 and r < 0.22:
        return "[" + ",".join(gen_value(rnd, depth + 1)
                              for _ in range(rnd.randrange(4))) + "]"
    if r < 0.5:
        return rnd.choice(['"pro"', '"std"', '"10"', '"5"', '"kling-v1"', '"kling-v2-master"',
                           '""', '"\\u00e9"', '"on"', '"' + "z" * rnd.randrange(60, 70) + '"'])
    return rnd.choice(["10", "5", "10.0", "1e1", "0.5", "-0", "42", "null", "true", "false",
                       "1e400", "123456789012345678", str(rnd.random()),
                       str(rnd.randrange(-10**18, 10**18))])


def gen_object(rnd, depth=0):
    members = []
    for _ in range(rnd.randrange(0, 7)):
        path = rnd.choice(PATHS)
        segs = path.split(".")
        key = segs[0] if segs[0] else "x"
        if len(segs) > 1 and rnd.random() < 0.7:
            inner = '{"%s":%s}' % (spell(segs[1], rnd), gen_value(rnd, depth + 1))
            members.append('"%s":%s' % (spell(key, rnd), inner))
        else:
            members.append('"%s":%s' % (spell(key, rnd), gen_value(rnd, depth)))
    return "{" + ",".join(members) + "}"


def mutate(body, seeds, rnd):
    b = bytearray(body)
    for _ in range(rnd.randrange(1, 5)):
        op = rnd.randrange(7)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rnd.choice(INTERESTING)
        elif op == 1 and b:
            b[min(pos, len(b) - 1)] = rnd.randrange(256)
        elif op == 2:
            b[pos:pos] = rnd.choice(TOKENS)
        elif op == 3 and b:
            end = min(len(b), pos + rnd.randrange(1, 16))
            del b[pos:end]
        elif op == 4:
            other = rnd.choice(seeds)
            if other:
                s = rnd.randrange(len(other))
                b[pos:pos] = other[s:s + rnd.randrange(1, 40)]
        elif op == 5 and b:
            s = rnd.randrange(len(b))
            b[pos:pos] = b[s:s + rnd.randrange(1, 20)]
        else:
            # a key's letters in another case, or folded
            i = b.find(b'"', pos)
            if i >= 0 and i + 1 < len(b) and chr(b[i + 1]).isalpha():
                c = chr(b[i + 1])
                rep = {"s": "\u017f", "k": "\u212a"}.get(c.lower(), c.swapcase())
                b[i + 1:i + 2] = rep.encode()
    return bytes(b)


def main(argv):
    secs, seed, outdir = 600.0, int(time.time()), "build/fuzz-price-diff"
    for i, a in enumerate(argv):
        if a == "--seconds":
            secs = float(argv[i + 1])
        elif a == "--seed":
            seed = int(argv[i + 1])
        elif a == "--out":
            outdir = argv[i + 1]
    rnd = random.Random(seed)
    seeds = [c[2] for c in test_goref.CASES if len(c[2]) < 5000]
    # a few sets of paths: each is a struct type of its own in Go, and
    # types are never freed
    sets = [rnd.sample(PATHS, rnd.randrange(1, 7)) for _ in range(64)]
    p = pair.Pair()
    execs = diffs = 0
    t_end = time.time() + secs
    print("# seed %d, %.0f s" % (seed, secs), flush=True)
    next_report = time.time() + 60
    try:
        while time.time() < t_end:
            batch = []
            for _ in range(500):
                paths = rnd.choice(sets)
                r = rnd.random()
                if r < 0.35:
                    body = gen_object(rnd).encode()
                    if rnd.random() < 0.3:
                        body = mutate(body, seeds, rnd)
                elif r < 0.4:
                    n = rnd.choice([9998, 9999, 10000, 10001])
                    body = b'{"a":{"b":' + b"[" * (n - 2) + b"]" * (n - 2) + b'},"mode":"pro"}'
                else:
                    body = mutate(rnd.choice(seeds), seeds, rnd)
                batch.append((paths, body))
            for (paths, body), (go, relay) in zip(batch, p.answer(batch)):
                execs += 1
                if go != relay:
                    diffs += 1
                    os.makedirs(outdir, exist_ok=True)
                    name = os.path.join(outdir, "diff-%d" % diffs)
                    with open(name, "wb") as f:
                        f.write(pair.encode([(paths, body)]))
                    print("difference %d: paths %r body %r: Go %s, relay %s (%s)" % (
                        diffs, paths, body[:200], go, relay, name), flush=True)
            if time.time() >= next_report:
                print("# %d executions, %d differences" % (execs, diffs), flush=True)
                next_report += 60
    finally:
        p.close()
    print("fuzz-price-diff: %d executions, %d differences" % (execs, diffs))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
