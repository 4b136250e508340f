#!/usr/bin/env python3
"""A loopback HTTP server answering like kube-apiserver does under conditions
a healthy test cluster never produces on demand: 429 and 503 with
Retry-After, a body over the client's limit, a slow answer, a watch line
over the limit, a 410 ERROR event inside a watch, connections closed before
the answer and a server that stops answering at all. Used by
test-kube-http.c. usage: fake-apiserver.py PORTFILE"""
import json, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

lock = threading.Lock()
counts = {"retry": 0, "unavail_retry": 0, "lists": 0, "watches": 0, "hangup": 0, "hangup_post": 0,
          "version": 0}
silent_until = [0.0]  # /silent: nothing answers, /version included, until then


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}


def cm(name, rv):
    return {"metadata": {"name": name, "namespace": "t", "resourceVersion": rv}, "data": {"k": "v"}}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def hang_up(self):
        """Closes the connection without a byte of answer."""
        self.close_connection = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/api/v1/namespaces/t/configmaps?fieldManager=t":
            with lock:
                counts["hangup_post"] += 1
            return self.hang_up()
        self.send_json(404, status(404, "NotFound", "no such thing"))

    def do_GET(self):
        p = self.path
        base = "/api/v1/namespaces/t/configmaps"
        if p == "/stats":
            with lock:
                return self.send_json(200, counts)
        if p == "/version":
            with lock:
                counts["version"] += 1
            time.sleep(max(0.0, silent_until[0] - time.time()))
            return self.send_json(200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0-fake"})
        if p == base + "/hangup":
            with lock:
                counts["hangup"] += 1
                n = counts["hangup"]
            if n <= 2:
                return self.hang_up()
            return self.send_json(200, cm("hangup", "1"))
        if p == base + "/silent":
            silent_until[0] = time.time() + 8
            time.sleep(8)
            return self.send_json(200, cm("silent", "1"))
        if p == base + "/retry":
            with lock:
                counts["retry"] += 1
                n = counts["retry"]
            if n == 1:
                return self.send_json(429, status(429, "TooManyRequests", "slow down"), [("Retry-After", "1")])
            return self.send_json(200, cm("retry", "1"))
        if p == base + "/unavailable":
            return self.send_json(503, status(503, "ServiceUnavailable", "down"))
        if p == base + "/unavailable-retry":
            with lock:
                counts["unavail_retry"] += 1
                n = counts["unavail_retry"]
            if n <= 2:
                return self.send_json(503, status(503, "ServiceUnavailable", "busy"), [("Retry-After", "0")])
            return self.send_json(200, cm("unavailable-retry", "1"))
        if p == base + "/big":
            return self.send_json(200, {"kind": "ConfigMap", "data": {"x": "y" * (2 << 20)}})
        if p == base + "/slow":
            time.sleep(3)
            return self.send_json(200, cm("slow", "1"))
        if p.startswith(base + "?") and "watch=1" not in p:
            with lock:
                counts["lists"] += 1
                n = counts["lists"]
            items = [cm("a", "10")] if n == 1 else [cm("b", "30")]
            return self.send_json(200, {"kind": "ConfigMapList", "apiVersion": "v1",
                                        "metadata": {"resourceVersion": "10" if n == 1 else "30"}, "items": items})
        if p.startswith(base + "?") and "watch=1" in p:
            with lock:
                counts["watches"] += 1
                n = counts["watches"]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def chunk(s):
                b = s.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                self.wfile.flush()
            try:
                if n == 1:
                    # b appears, then a line longer than the client's limit
                    chunk(json.dumps({"type": "ADDED", "object": cm("b", "11")}) + "\n")
                    chunk(json.dumps({"type": "ADDED", "object": cm("huge", "12") | {"data": {"x": "z" * 4096}}}) + "\n")
                elif n == 2:
                    chunk(json.dumps({"type": "ERROR", "object": status(410, "Expired", "too old resource version")}) + "\n")
                for _ in range(120):
                    chunk("\n")  # notices a client that went away
                    time.sleep(0.25)
                chunk("")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self.send_json(404, status(404, "NotFound", "no such thing"))


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that hang up (the point of some tests) are not news


srv = Server(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
