#!/usr/bin/python3
"""Stand-in for the upstream "old gateway" in the integration tests.

A threaded HTTP/1.1 server with keep-alive. It records every request it
receives and answers from a script of canned replies that the tests set
through a control API on the same port, under /__stub/:

  GET  /__stub/requests[?since=N]   JSON list of recorded requests
  GET  /__stub/wait?path=RE&count=N&timeout=S
                                    block until N recorded requests match RE
  POST /__stub/reset                forget requests, rules, tasks, counters;
                                    release every waiting reply
  GET  /__stub/connections          {"accepted","open","used"}: TCP connections
                                    accepted / open now / that carried at least
                                    one non-control request since the reset
  POST /__stub/script               {"rules":[...], "replace":bool}
  POST /__stub/release?event=NAME   wake replies waiting on NAME
  GET  /__stub/tasks                task ids this stub created
  GET  /__stub/jobs                 the jobs (modes job_submit, job_poll):
                                    {id: {service, state, reason, polls,
                                    auth: [Authorization of each poll],
                                    paths: [path of each poll]}}
  POST /__stub/job                  {"id", "state", "reason"}: how a job
                                    stands from now on; state is one of
                                    submitted | running | succeeded | failed

A rule is a JSON object:
  "path":   regular expression searched in the raw request target
  "method": optional method to match
  "auth":   optional Authorization header to match, exactly
  "times":  optional number of uses before the rule is dropped
  "mode":   plain (default) | echo | sse | chunked | download | hang |
            close | task_create | task_get | job_submit | job_poll
  "status", "headers" ([[name, value], ...]), "body" (text) or "body_b64"
  "hang":   seconds to wait before the headers (mode hang, or any mode);
            "event" names the event that ends the wait early
  "events": list of SSE chunks (mode sse): the first is sent, then the
            reply waits for "event" (or "timeout" seconds), then the rest
  "chunks": list of text chunks (mode chunked)
  "encoding": gzip | deflate | deflate-raw | br | zstd: the reply body
            (modes plain, echo, task_create) is sent in that coding, with
            its Content-Encoding ("deflate-raw" is deflate without the zlib
            wrapper, as some servers send it; "zstd" is not compressed, only
            labelled, for a coding the relay does not read)
  "if_accepted": with "encoding", only when the request's Accept-Encoding
            names that coding (as a real server does)
  "shape":  suno (mode task_create): the id in the answer's "data" as a
            bare string, {"code":"success","data":"<id>"}
  "service": kling | runway | suno | pika | jimeng (modes job_submit,
            job_poll): a job is made (submitted) and answered as that
            service's API does (JOB_SHAPES); job_poll finds the job's id as
            task_get does, counts the poll and answers the job's state in
            the service's words, 404 for an unknown id
  "ids":    list of job ids (mode job_submit): each submit takes the next
            (the same id again makes that job afresh); when they are used
            up, ids are made as usual
  "bound":  true (mode job_submit): the job knows the submit's
            Authorization; job_poll answers a poll with any other as it
            answers an unknown id, and notes it in the job's "refused"
  "id_key": query key (mode job_poll): the job id is that key's value
            alone (as Volcengine reads task_id), not any id the request
            names
  "lost":   true (mode job_poll): an unknown id (or a bound job polled
            with another key) is answered 200 in the service's words for
            a task it does not know (JOB_LOST), where it has them
  "size", "seed", "chunked": deterministic download (mode download);
            see download_blocks() for the byte pattern
Requests that match no rule are echoed (mode echo). Mode task_get finds
task ids in the path, the query and a JSON body's ids / task_id / clip_id.

Request bodies are read as they arrive (Content-Length or chunked), hashed
with SHA-256 and kept only when shorter than 64 KiB.

Usage: stub_upstream.py [--port N] [--port-file PATH] [--name NAME]
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

CONTROL = "/__stub/"
BLOCK = 65536
KEEP_BODY_BELOW = 65536


def download_blocks(seed, size):
    """Yield the bytes of the deterministic download (seed, size)."""
    i = 0
    left = size
    while left > 0:
        blk = hashlib.sha256(("%s:%d" % (seed, i)).encode()).digest() * (BLOCK // 32)
        if left < BLOCK:
            blk = blk[:left]
        yield blk
        left -= len(blk)
        i += 1


def brotli_stored(data):
    """A valid brotli stream of data in uncompressed meta-blocks (RFC 7932
    9.2), so that the stub needs no brotli module."""
    bits = []

    def put(v, n):
        for i in range(n):
            bits.append((v >> i) & 1)

    def pad():
        while len(bits) % 8:
            bits.append(0)

    out = bytearray()

    def flush():
        pad()
        for i in range(0, len(bits), 8):
            out.append(sum(b << j for j, b in enumerate(bits[i:i + 8])))
        del bits[:]

    put(0, 1)                       # WBITS 16
    for i in range(0, len(data), 65536):
        piece = data[i:i + 65536]
        put(0, 1)                   # ISLAST
        put(0, 2)                   # MNIBBLES: 4
        put(len(piece) - 1, 16)     # MLEN - 1
        put(1, 1)                   # ISUNCOMPRESSED
        flush()
        out += piece
    put(1, 1)                       # ISLAST
    put(1, 1)                       # ISLASTEMPTY
    flush()
    return bytes(out)


def encode_body(coding, data):
    if coding == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + 15)
        return c.compress(data) + c.flush()
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "deflate-raw":
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    if coding == "br":
        return brotli_stored(data)
    if coding == "zstd":
        return data
    raise ValueError("unknown coding %s" % coding)


def accepts(header, coding):
    names = [p.split(";")[0].strip().lower() for p in (header or "").split(",")]
    return coding.split("-")[0] in names


def download_sha256(seed, size):
    h = hashlib.sha256()
    for blk in download_blocks(seed, size):
        h.update(blk)
    return h.hexdigest()


# Each service's submit answer and poll answer for job id i in state v
# (the service's own word for it) with failure reason r.
JOB_SHAPES = {
    "kling": {
        "values": {"submitted": "submitted", "running": "processing",
                   "succeeded": "succeed", "failed": "failed"},
        "submit": lambda i: {"code": 0, "message": "SUCCEED", "request_id": "rq-" + i,
                             "data": {"task_id": i, "task_status": "submitted"}},
        "poll": lambda i, v, r: {"code": 0, "message": "SUCCEED", "request_id": "rq-" + i,
                                 "data": {"task_id": i, "task_status": v, "task_status_msg": r,
                                          "task_result": {"videos": []}}},
    },
    "runway": {
        "values": {"submitted": "PENDING", "running": "RUNNING",
                   "succeeded": "SUCCEEDED", "failed": "FAILED"},
        "submit": lambda i: {"id": i},
        "poll": lambda i, v, r: dict({"id": i, "status": v, "createdAt": "2026-01-01T00:00:00Z"},
                                     **({"failure": r, "failureCode": "INTERNAL"} if v == "FAILED" else {})),
    },
    "suno": {
        "values": {"submitted": "SUBMITTED", "running": "IN_PROGRESS",
                   "succeeded": "SUCCESS", "failed": "FAILURE"},
        "submit": lambda i: {"code": "success", "message": "", "data": i},
        "poll": lambda i, v, r: {"code": "success", "message": "",
                                 "data": {"task_id": i, "action": "MUSIC", "status": v,
                                          "fail_reason": r, "progress": "50%", "data": []}},
    },
    "pika": {
        "values": {"submitted": "queued", "running": "processing",
                   "succeeded": "finished", "failed": "failed"},
        "submit": lambda i: {"id": i},
        "poll": lambda i, v, r: {"id": i, "status": v, "error": r},
    },
    "jimeng": {
        "values": {"submitted": "in_queue", "running": "generating",
                   "succeeded": "done", "failed": "not_found"},
        "submit": lambda i: {"code": 10000, "message": "Success", "request_id": "rq-" + i,
                             "data": {"task_id": i}},
        "poll": lambda i, v, r: {"code": 10000, "message": r or "Success", "request_id": "rq-" + i,
                                 "data": {"status": v, "video_url": ""}},
    },
}


# A 200 answer for a task the service does not know, where it has one.
JOB_LOST = {
    "jimeng": lambda i: {"code": 10000, "message": "Success", "request_id": "rq-" + i,
                         "data": {"status": "not_found", "video_url": ""}},
}


def ids_in(rec, body):
    """Task ids a request names: path segments, query values, and a JSON
    body's ids / task_id / clip_id / id."""
    u = urllib.parse.urlsplit(rec["path"])
    cands = [s for s in u.path.split("/") if s]
    for _, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
        cands.extend(v.split(","))
    try:
        obj = json.loads(bytes(body.kept) or b"null") if body.keep else None
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.lower() in ("ids", "task_id", "clip_id", "id"):
                if isinstance(v, str):
                    cands.extend(x.strip() for x in v.split(","))
                elif isinstance(v, list):
                    cands.extend(x for x in v if isinstance(x, str))
    return cands


class State:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.requests = []
        self.rules = []
        self.events = {}
        self.tasks = set()
        self.jobs = {}
        self.conn_seq = 0          # connection ids, never reset
        self.accepted = 0          # since reset
        self.open = 0
        self.used = set()          # conn ids with a relayed request since reset

    def event(self, name):
        with self.lock:
            ev = self.events.get(name)
            if ev is None:
                ev = self.events[name] = threading.Event()
            return ev

    def reset(self):
        with self.lock:
            for ev in self.events.values():
                ev.set()
            self.events = {}
            self.requests = []
            self.rules = []
            self.tasks = set()
            self.jobs = {}
            self.accepted = 0
            self.used = set()
            self.cond.notify_all()

    def pick_rule(self, method, path, auth=None):
        with self.lock:
            for rule in self.rules:
                if rule.get("method") and rule["method"].upper() != method:
                    continue
                if rule.get("auth") is not None and rule["auth"] != auth:
                    continue
                if rule.get("path") and not re.search(rule["path"], path):
                    continue
                if "times" in rule:
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.rules.remove(rule)
                return dict(rule)
        return None


S = None  # the State, set in main()


class BodyReader:
    """Reads a request body as it arrives, hashing it."""

    def __init__(self):
        self.sha = hashlib.sha256()
        self.length = 0
        self.kept = bytearray()
        self.keep = True

    def feed(self, b):
        self.sha.update(b)
        self.length += len(b)
        if self.keep:
            if self.length < KEEP_BODY_BELOW:
                self.kept += b
            else:
                self.keep = False
                self.kept = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stub-upstream/1"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with S.lock:
            S.conn_seq += 1
            S.accepted += 1
            S.open += 1
            self.conn_id = S.conn_seq
        self.peer = self.client_address

    def finish(self):
        try:
            super().finish()
        finally:
            with S.lock:
                S.open -= 1

    def log_message(self, fmt, *args):
        pass

    # -- body -------------------------------------------------------------
    def read_body(self):
        r = BodyReader()
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        chunked = "chunked" in te
        if chunked:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, BLOCK))
                    if not b:
                        raise ConnectionError("eof in chunk")
                    r.feed(b)
                    left -= len(b)
                self.rfile.readline(3)
        else:
            cl = self.headers.get("Content-Length")
            left = int(cl) if cl else 0
            while left:
                b = self.rfile.read(min(left, BLOCK))
                if not b:
                    raise ConnectionError("eof in body")
                r.feed(b)
                left -= len(b)
        return r, chunked

    # -- replies ----------------------------------------------------------
    def reply(self, status, headers, body, extra_close=False):
        self.send_response(status)
        have_len = False
        for k, v in headers:
            if k.lower() == "content-length":
                have_len = True
            self.send_header(k, v)
        if not have_len:
            self.send_header("Content-Length", str(len(body)))
        if extra_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def reply_json(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.reply(status, [("Content-Type", "application/json")], body)

    def encoded(self, rule, headers, data):
        """headers and data in the rule's "encoding", if it applies."""
        coding = rule.get("encoding")
        if not coding or (rule.get("if_accepted") and
                          not accepts(self.headers.get("Accept-Encoding"), coding)):
            return headers, data
        label = "deflate" if coding == "deflate-raw" else coding
        return headers + [("Content-Encoding", label)], encode_body(coding, data)

    def start_chunked(self, status, headers, default_type):
        self.send_response(status)
        have_type = False
        for k, v in headers:
            if k.lower() == "content-type":
                have_type = True
            self.send_header(k, v)
        if not have_type:
            self.send_header("Content-Type", default_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        if self.command == "HEAD":
            return
        if data:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunked(self):
        if self.command == "HEAD":
            return
        self.wfile.write(b"0\r\n\r\n")

    # -- dispatch ---------------------------------------------------------
    def handle_any(self):
        path = self.path
        if path.startswith(CONTROL):
            return self.control()
        try:
            body, chunked = self.read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        rec = {
            "method": self.command,
            "path": path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": body.length,
            "body_sha256": body.sha.hexdigest(),
            "body_b64": base64.b64encode(bytes(body.kept)).decode() if body.keep else None,
            "chunked": chunked,
            "conn_id": self.conn_id,
            "peer_port": self.peer[1],
            "time": time.time(),
        }
        with S.lock:
            rec["id"] = len(S.requests)
            S.requests.append(rec)
            S.used.add(self.conn_id)
            S.cond.notify_all()
        rule = S.pick_rule(self.command, path, self.headers.get("Authorization")) or {"mode": "echo"}
        try:
            self.run_rule(rule, rec, body)
        except (BrokenPipeError, ConnectionError, socket.timeout):
            self.close_connection = True

    def run_rule(self, rule, rec, body):
        mode = rule.get("mode", "plain")
        status = int(rule.get("status", 200))
        headers = [tuple(h) for h in rule.get("headers", [])]
        if rule.get("hang"):
            ev = S.event(rule.get("event", "never-%s" % uuid.uuid4()))
            ev.wait(float(rule["hang"]))
        if "body_b64" in rule:
            payload = base64.b64decode(rule["body_b64"])
        else:
            payload = rule.get("body", "").encode()

        if mode == "plain" or mode == "hang":
            self.reply(status, *self.encoded(rule, headers, payload))
        elif mode == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif mode == "echo":
            obj = {
                "method": rec["method"], "path": rec["path"], "headers": rec["headers"],
                "body_len": rec["body_len"], "body_sha256": rec["body_sha256"],
                "chunked": rec["chunked"], "conn_id": rec["conn_id"], "stub": S.name,
            }
            if body.keep:
                obj["body"] = bytes(body.kept).decode("utf-8", "replace")
            data = json.dumps(obj, ensure_ascii=False).encode()
            self.reply(status, *self.encoded(rule, headers + [("Content-Type", "application/json")], data))
        elif mode == "sse":
            self.start_chunked(status, headers, "text/event-stream")
            events = rule.get("events", ["data: 1\n\n", "data: 2\n\n"])
            self.chunk(events[0].encode())
            ev = S.event(rule.get("event", "sse"))
            ev.wait(float(rule.get("timeout", 30)))
            for e in events[1:]:
                self.chunk(e.encode())
            self.end_chunked()
        elif mode == "chunked":
            self.start_chunked(status, headers, "application/octet-stream")
            for c in rule.get("chunks", ["a", "b", "c"]):
                self.chunk(c.encode())
                time.sleep(float(rule.get("gap", 0.01)))
            self.end_chunked()
        elif mode == "download":
            size = int(rule["size"])
            seed = str(rule.get("seed", "seed"))
            if rule.get("chunked"):
                self.start_chunked(status, headers, "application/octet-stream")
                for blk in download_blocks(seed, size):
                    self.chunk(blk)
                self.end_chunked()
            else:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if self.command != "HEAD":
                    for blk in download_blocks(seed, size):
                        self.wfile.write(blk)
        elif mode == "task_create":
            tid = "%s-%s" % (S.name, uuid.uuid4().hex[:16])
            with S.lock:
                S.tasks.add(tid)
            if rule.get("shape") == "suno":
                data = json.dumps({"code": "success", "message": "", "data": tid}).encode()
            else:
                data = json.dumps({"task_id": tid}).encode()
            self.reply(status, *self.encoded(rule, headers + [("Content-Type", "application/json")], data))
        elif mode == "job_submit":
            shape = JOB_SHAPES[rule["service"]]
            tid = "%s-%s" % (S.name, uuid.uuid4().hex[:16])
            with S.lock:
                if rule.get("ids"):
                    tid = rule["ids"].pop(0)    # the stored rule's list
                S.jobs[tid] = {"service": rule["service"], "state": "submitted", "reason": "",
                               "polls": 0, "auth": [], "paths": []}
                if rule.get("bound"):
                    S.jobs[tid]["key"] = self.headers.get("Authorization") or ""
                    S.jobs[tid]["refused"] = []
            data = json.dumps(shape["submit"](tid)).encode()
            self.reply(status, headers + [("Content-Type", "application/json")], data)
        elif mode == "job_poll":
            shape = JOB_SHAPES[rule["service"]]
            auth = self.headers.get("Authorization") or ""
            if rule.get("id_key"):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(rec["path"]).query)
                cands = q.get(rule["id_key"], [])[:1]
            else:
                cands = ids_in(rec, body)
            with S.lock:
                known = [c for c in cands if c in S.jobs]
                job = dict(S.jobs[known[0]]) if known else None
                if job and "key" in job and job["key"] != auth:
                    S.jobs[known[0]]["refused"].append(auth)
                    job = None
                if job:
                    j = S.jobs[known[0]]
                    j["polls"] += 1
                    j["auth"].append(auth)
                    j["paths"].append(rec["path"])
            if job is None:
                lost = JOB_LOST.get(rule["service"]) if rule.get("lost") else None
                if lost:
                    return self.reply_json(200, lost(cands[0] if cands else ""))
                return self.reply_json(404, {"error": "task not found", "stub": S.name})
            self.reply_json(200, shape["poll"](known[0], shape["values"][job["state"]], job["reason"]))
        elif mode == "task_get":
            cands = ids_in(rec, body)
            with S.lock:
                known = [c for c in cands if c in S.tasks]
            if known:
                self.reply_json(200, {"task_id": known[0], "status": "succeed", "stub": S.name})
            else:
                self.reply_json(404, {"error": "task not found", "stub": S.name})
        else:
            self.reply_json(500, {"error": "unknown stub mode %s" % mode})

    def control(self):
        try:
            body, _ = self.read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        data = bytes(body.kept) if body.keep else b""
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        what = u.path[len(CONTROL):]
        if what == "requests":
            since = int(q.get("since", 0))
            with S.lock:
                reqs = list(S.requests[since:])
            return self.reply_json(200, reqs)
        if what == "wait":
            rx = q.get("path", "")
            count = int(q.get("count", 1))
            deadline = time.time() + float(q.get("timeout", 10))
            with S.lock:
                while True:
                    found = [r for r in S.requests if re.search(rx, r["path"])]
                    if len(found) >= count:
                        break
                    left = deadline - time.time()
                    if left <= 0:
                        break
                    S.cond.wait(left)
            return self.reply_json(200 if len(found) >= count else 408, found)
        if what == "reset":
            S.reset()
            return self.reply_json(200, {"ok": True})
        if what == "connections":
            with S.lock:
                obj = {"accepted": S.accepted, "open": S.open, "used": len(S.used)}
            return self.reply_json(200, obj)
        if what == "script":
            obj = json.loads(data or b"{}")
            with S.lock:
                if obj.get("replace"):
                    S.rules = []
                S.rules.extend(obj.get("rules", []))
            return self.reply_json(200, {"ok": True})
        if what == "release":
            S.event(q.get("event", "sse")).set()
            return self.reply_json(200, {"ok": True})
        if what == "tasks":
            with S.lock:
                tasks = sorted(S.tasks)
            return self.reply_json(200, tasks)
        if what == "jobs":
            with S.lock:
                jobs = json.loads(json.dumps(S.jobs))
            return self.reply_json(200, jobs)
        if what == "job":
            obj = json.loads(data or b"{}")
            with S.lock:
                j = S.jobs.get(obj.get("id"))
                if j is None or obj.get("state") not in ("submitted", "running", "succeeded", "failed"):
                    ok = False
                else:
                    j["state"] = obj["state"]
                    j["reason"] = obj.get("reason", "")
                    ok = True
            return self.reply_json(200 if ok else 404, {"ok": ok})
        return self.reply_json(404, {"error": "unknown control call"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True


def main():
    global S
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--name", default="stub")
    ap.add_argument("port_pos", nargs="?", type=int)
    a = ap.parse_args()
    port = a.port_pos if a.port_pos is not None else a.port
    S = State(a.name)
    srv = Server(("127.0.0.1", port), Handler)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)

        os.rename(tmp, a.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
