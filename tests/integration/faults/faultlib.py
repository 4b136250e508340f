"""Helpers of the fault tests: a toxiproxy server driven through its HTTP
API, what /proc says of a process (open fds, resident memory), and the checks
that follow every fault: one Job per stream, the inventory against the
cluster, and sluice's informer caches against the server's lists (the
digests `sluice run` logs on SIGUSR1, docs/operations.md).

Also: a small Kubernetes REST client (the admin identity, many requests in
parallel without a kubectl process each), watches that go on through
restarts and compactions, the local control plane's own files (restart
kube-apiserver from apiserver.args, compact etcd), a CA and serving
certificates, an admission webhook server, and TAP output with figures.
The control plane helpers need the directory tests/cluster/up made (the
directory of the admin kubeconfig, holding apiserver.pid, apiserver.args,
etcd-url and logs/); cluster_dir() is None on another cluster and the tests
that need it are skipped.
"""
import base64
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../run"))
import run_test as rt  # noqa: E402 (the helpers of the run suite)

TOOLS = os.path.join(rt.build, "tools/bin")
TOXIPROXY = os.environ.get("SLUICE_TOXIPROXY") or os.path.join(TOOLS, "toxiproxy-server")


# ---- toxiproxy ----------------------------------------------------------------


class Toxiproxy:
    """A toxiproxy-server on loopback, stopped by stop(). Proxies and toxics
    go through its HTTP API (https://github.com/Shopify/toxiproxy#http-api)."""

    def __init__(self, logdir):
        self.port = rt.free_port()
        self.log = open(os.path.join(logdir, "toxiproxy.log"), "w")
        self.proc = subprocess.Popen([TOXIPROXY, "-host", "127.0.0.1", "-port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        rt.wait("toxiproxy's API", lambda: self._up(), 20)

    def _up(self):
        assert self.proc.poll() is None, "toxiproxy-server exited"
        try:
            self.api("GET", "/version")
            return True
        except OSError:
            return False

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"toxiproxy {method} {path}: {e.code} {e.read().decode()}") from None
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def proxy(self, name, upstream):
        """A proxy from a free loopback port to upstream ("host:port"); its port."""
        port = rt.free_port()
        self.api("POST", "/proxies", {"name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream,
                                      "enabled": True})
        return port

    def toxic(self, proxy, name, type_, stream="downstream", **attributes):
        self.api("POST", f"/proxies/{proxy}/toxics", {"name": name, "type": type_, "stream": stream,
                                                       "toxicity": 1.0, "attributes": attributes})

    def untoxic(self, proxy, name):
        self.api("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def enable(self, proxy, on):
        """Disabling closes every connection and stops listening."""
        self.api("POST", f"/proxies/{proxy}", {"enabled": on})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# the server of a kubeconfig in YAML or JSON (scripts/restricted-kubeconfig)
SERVER = re.compile(r"(\bserver\"?\s*:\s*\"?https://127\.0\.0\.1:)(\d+)")


def kubeconfig_via(src, dst, port):
    """A copy of kubeconfig src whose server is https://127.0.0.1:port (the
    API server's certificate names IP 127.0.0.1, so TLS passes the TCP proxy
    and is still verified)."""
    text = open(src).read()
    out, n = re.subn(SERVER, rf"\g<1>{port}", text)
    assert n >= 1, f"no https://127.0.0.1 server in {src}"
    with open(dst, "w") as f:
        f.write(out)
    return dst


def apiserver_address(kubeconfig):
    m = re.search(SERVER, open(kubeconfig).read())
    assert m, f"no https://127.0.0.1 server in {kubeconfig}"
    return m.group(1)[m.group(1).index("127.0.0.1"):] + m.group(2)


# ---- the process ----------------------------------------------------------------


def kill_lingering(path):
    """Ends the processes whose command line names path (fixture-http-stop
    ends fcgiwrap's parent; the workers it forked stay), by pid."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if path in cmd:
            try:
                os.kill(int(pid), signal.SIGTERM)
            except OSError:
                pass


def fds(pid):
    """Open file descriptors of pid."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    """Resident set size of pid, KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# ---- the cluster ------------------------------------------------------------------


def jobs_by_stream(ns):
    """{stream id: [Job names]} of the Jobs labelled arcane/stream-id in ns."""
    items = json.loads(rt.k("-n", ns, "get", "jobs", "-l", "arcane/stream-id", "-o", "json"))["items"]
    out = {}
    for j in items:
        out.setdefault(j["metadata"]["labels"]["arcane/stream-id"], []).append(j["metadata"]["name"])
    return out


def one_job_per_stream(ns, streams):
    """None when every stream has exactly one Job and no other stream has
    any; else what is wrong (for a TAP comment)."""
    got = jobs_by_stream(ns)
    missing = sorted(s for s in streams if s not in got)
    extra = sorted(s for s, js in got.items() if len(js) != 1 or s not in streams)
    if missing or extra:
        return f"{len(missing)} streams without a Job {missing[:5]}, {len(extra)} with another count {extra[:5]}"
    return None


def inventory(ns, source_id):
    """{(group, version, kind, namespace, name)} of the inventory ConfigMap, and its status."""
    cm = json.loads(rt.k("-n", ns, "get", "configmap", f"sluice-inventory-{source_id}", "-o", "json"))
    inv = json.loads(cm["data"]["inventory"])
    assert inv.get("v") == 1, inv.get("v")
    out = set()
    for gvk, by_ns in inv["o"].items():
        g, v, kind = gvk.split("/")
        for obj_ns, names in by_ns.items():
            for name in (names if isinstance(names, list) else list(names)):
                out.add((g, v, kind, obj_ns, name))
    return out, json.loads(cm["data"].get("status") or "{}")


def inventory_matches(ns, source_id, want):
    """None when the inventory holds exactly the objects of the source (want:
    {(kind, namespace, name)}) and each of them exists with the source's
    annotation; else what differs."""
    inv, status = inventory(ns, source_id)
    have = {(kind, obj_ns, name) for _, _, kind, obj_ns, name in inv}
    if have != want:
        return f"inventory {len(have)} objects, source {len(want)}: missing {sorted(want - have)[:3]}, " \
               f"extra {sorted(have - want)[:3]}"
    by_kind = {}
    for g, v, kind, obj_ns, name in inv:
        by_kind.setdefault((g, v, kind, obj_ns), set()).add(name)
    for (g, v, kind, obj_ns), names in by_kind.items():
        res = kind.lower() + ("s" if not kind.lower().endswith("s") else "es")
        args = ["get", f"{res}.{v}.{g}" if g else f"{res}.{v}", "-o", "json"]
        if obj_ns:
            args = ["-n", obj_ns] + args
        items = json.loads(rt.k(*args))["items"]
        live = {i["metadata"]["name"] for i in items
                if (i["metadata"].get("annotations") or {}).get("sluice.dev/source") == source_id}
        if not names <= live:
            return f"{kind} in the inventory but not in the cluster: {sorted(names - live)[:5]}"
    return None


# ---- the caches -----------------------------------------------------------------

CACHE_LINE = re.compile(r"cache (\S+)/(\S+) ns=(\S+)(?: selector=(\S+))?(?: fields=(\S+))?: (\d+) objects, "
                        r"digest sha256:([0-9a-f]{64})( \(not synced yet\))?$")


def digest_of(items):
    """The digest of docs/operations.md ("Inspecting the caches")."""
    lines = sorted(f"{i['metadata'].get('namespace', '')}/{i['metadata']['name']} "
                   f"{i['metadata'].get('resourceVersion', '')}\n" for i in items)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def cache_lines(env, p, timeout=10):
    """Sends SIGUSR1 to sluice process p; the cache lines it logs, parsed:
    [(resource, group, version, ns, selector, count, digest, synced)]."""
    before = len(env.log(p))
    p.send_signal(signal.SIGUSR1)
    end = time.time() + timeout
    while True:
        text = env.log(p)[before:]
        if " cache " in text and text.endswith("\n"):
            time.sleep(0.2)
            text = env.log(p)[before:]
            break
        assert time.time() < end, "no cache lines after SIGUSR1"
        time.sleep(0.05)
    out = []
    for line in text.splitlines():
        i = line.find(" cache ")
        if i < 0:
            continue
        m = CACHE_LINE.search(line[i + 1:])
        assert m, f"cache line not understood: {line!r}"
        res, version, ns, sel, fields, n, dig, unsynced = m.groups()
        plural, _, group = res.partition(".")
        out.append((plural, group, version, ns, sel, fields, int(n), dig, not unsynced))
    return out


def server_list(plural, group, version, ns, sel, fields):
    args = ["get", f"{plural}.{version}.{group}" if group else f"{plural}.{version}", "-o", "json"]
    args += ["-A"] if ns == "all" else ["-n", ns]
    if sel:
        args += ["-l", sel]
    if fields:
        args += ["--field-selector", fields]
    return json.loads(rt.k(*args))["items"]


def caches_differ(env, p):
    """None when every synced cache of p holds what the server lists with
    the same selector (same count and digest); else the differences."""
    diffs = []
    lines = cache_lines(env, p)
    if not lines:
        return "no informers"
    for plural, group, version, ns, sel, fields, n, dig, synced in lines:
        if not synced:
            diffs.append(f"{plural}.{group} ns={ns} not synced")
            continue
        try:
            items = server_list(plural, group, version, ns, sel, fields)
        except RuntimeError as e:
            # a kind of another suite's StreamClass may be gone meanwhile
            if "the server doesn't have a resource type" in str(e):
                continue
            raise
        if len(items) != n or digest_of(items) != dig:
            diffs.append(f"{plural}.{group} ns={ns}: cache {n} objects, server {len(items)}")
    return "; ".join(diffs) or None


def caches_match(env, p, timeout):
    """Waits until caches_differ is None; the seconds it took. Events in
    flight make one comparison differ for a moment, so it is repeated."""
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        last = caches_differ(env, p)
        if last is None:
            return time.time() - t0
        time.sleep(0.5)
    raise AssertionError(f"caches differ from the server after {timeout}s: {last}")


# ---- a REST client, the control plane, certificates, watches, a webhook (cluster_test.py)


class ApiError(Exception):
    def __init__(self, status, body, what):
        self.status, self.body = status, body
        msg = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{what}: {status} {msg}")


class Api:
    """The REST API with the credentials of a kubeconfig (token or client
    certificate), one keep-alive connection per thread."""

    def __init__(self, kubeconfig, timeout=60):
        self.timeout = timeout
        cfg = json.loads(subprocess.run([rt.kubectl, "--kubeconfig", kubeconfig, "config", "view", "--raw",
                                         "--minify", "-o", "json"], capture_output=True, text=True,
                                        check=True, timeout=60).stdout)
        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        u = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = u.hostname, u.port or 443
        self.prefix = u.path.rstrip("/")
        self._tmp = tempfile.mkdtemp(prefix="sluice-faults-api-")
        ctx = ssl.create_default_context()
        if cluster.get("certificate-authority-data"):
            ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            ctx.load_verify_locations(cafile=cluster["certificate-authority"])
        cert, key = user.get("client-certificate"), user.get("client-key")
        if user.get("client-certificate-data"):
            cert, key = self._file("crt", user["client-certificate-data"]), self._file("key", user["client-key-data"])
        if cert:
            ctx.load_cert_chain(cert, key)
        self.ctx = ctx
        self.token = user.get("token")
        self.local = threading.local()

    def _file(self, name, data):
        p = os.path.join(self._tmp, name)
        with open(p, "wb") as f:
            f.write(base64.b64decode(data))
        os.chmod(p, 0o600)
        return p

    def _conn(self, fresh=False):
        c = getattr(self.local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, ctype="application/json", ok=(200, 201, 202)):
        """(status, decoded body); raises ApiError for a status not in ok
        (ok=None: never)."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = ctype
        for attempt in range(2):
            c = self._conn(fresh=attempt > 0)
            try:
                c.request(method, self.prefix + path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                break
            except (OSError, http.client.HTTPException):
                if attempt:
                    raise
        try:
            out = json.loads(raw) if raw else None
        except ValueError:
            out = raw.decode(errors="replace")
        if ok is not None and r.status not in ok:
            raise ApiError(r.status, out, f"{method} {path}")
        return r.status, out

    def get(self, path, ok=(200,)):
        return self.request("GET", path, ok=ok)[1]

    def list(self, path, limit=500):
        """Every item of a collection, page by page."""
        items, cont = [], ""
        while True:
            q = f"?limit={limit}" + (f"&continue={urllib.parse.quote(cont)}" if cont else "")
            body = self.get(path + q)
            items += body.get("items") or []
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                return items

    def create(self, path, obj):
        return self.request("POST", path, obj)[1]

    def merge(self, path, patch):
        return self.request("PATCH", path, patch, ctype="application/merge-patch+json")[1]

    def delete(self, path):
        return self.request("DELETE", path, ok=(200, 202, 404))[1]


def parallel(fn, items, workers=16):
    """fn over items on a thread pool; the results in order, the first
    exception raised."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def finish_job_body():
    """The status a Job controller writes when the Job succeeded (rt.job_finish)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"status": {"startTime": now, "completionTime": now, "succeeded": 1, "active": 0, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now},
        {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now}]}}


def job_done(job):
    return any(c.get("type") == "Complete" and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


# ---- the local control plane ------------------------------------------------------


def cluster_dir():
    """The directory of tests/cluster/up, or None (another cluster)."""
    d = os.path.dirname(os.path.abspath(rt.admin)) if rt.admin else None
    if d and all(os.path.exists(os.path.join(d, f)) for f in ("apiserver.pid", "apiserver.args", "etcd-url")):
        return d
    return None


def cluster_bin():
    return os.environ.get("SLUICE_CLUSTER_BIN") or os.path.dirname(rt.kubectl)


def apiserver_ready(timeout=300, trail=None):
    """Waits until /readyz answers ok (the admin identity, a request at a
    time: spawning kubectl on a loaded machine takes seconds itself).
    trail (a list) gets (seconds, what was not ready) at every change."""
    api = Api(rt.admin, timeout=10)
    t0 = time.time()
    end, last = t0 + timeout, None
    while time.time() < end:
        try:
            status, body = api.request("GET", "/readyz?verbose", ok=None)
            if status == 200:
                return True
            now = ", ".join(l[3:].split(" ")[0] for l in str(body).splitlines() if l.startswith("[-]"))
            now = now or f"HTTP {status}"
        except (OSError, http.client.HTTPException) as e:
            now = type(e).__name__
        if trail is not None and now != last:
            trail.append((round(time.time() - t0, 1), now))
        last = now
        time.sleep(0.2)
    return False


def stop_apiserver(d):
    """Stops kube-apiserver (SIGTERM, SIGKILL after 10 s)."""
    with open(os.path.join(d, "apiserver.pid")) as f:
        pid = int(f.read().strip())
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    time.sleep(0.2)


def start_apiserver(d, extra=()):
    """Starts kube-apiserver again with its flags of apiserver.args (and
    extra ones) and waits for /readyz; returns the seconds that took."""
    t0 = time.time()
    with open(os.path.join(d, "apiserver.args")) as f:
        args = f.read().split() + list(extra)
    log = open(os.path.join(d, "logs/apiserver.log"), "a")
    p = subprocess.Popen([os.path.join(cluster_bin(), "kube-apiserver"), *args], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    with open(os.path.join(d, "apiserver.pid"), "w") as f:
        f.write(f"{p.pid}\n")
    trail = []
    ok = apiserver_ready(trail=trail)
    start_apiserver.trail = trail
    if not ok:
        raise AssertionError(f"kube-apiserver did not become ready within 300 s of its restart: {trail[-5:]}")
    return time.time() - t0


def etcd_url(d):
    with open(os.path.join(d, "etcd-url")) as f:
        return f.read().strip()


def etcd_post(d, path, body):
    req = urllib.request.Request(etcd_url(d) + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def etcd_compact(d):
    """Compacts etcd at its current revision (the v3 JSON gateway): every
    resourceVersion before it is history. Returns the revision."""
    rev = int(etcd_post(d, "/v3/kv/range", {"key": "AA=="})["header"]["revision"])
    etcd_post(d, "/v3/kv/compaction", {"revision": str(rev), "physical": True})
    return rev


# ---- certificates -------------------------------------------------------------------


def make_ca(tmp, name):
    """A CA and a serving certificate for 127.0.0.1 signed by it: (ca.crt,
    server.crt, server.key) paths."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    ca, cakey = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
    crt, key, csr, ext = (os.path.join(d, f) for f in ("server.crt", "server.key", "server.csr", "server.ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n")

    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}-ca", "-keyout",
         cakey, "-out", ca)
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-days", "1", "-extfile", ext,
         "-out", crt)
    return ca, crt, key


# ---- TAP ------------------------------------------------------------------------------


class Tap:
    """ok/not ok lines with figures as comments, a plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def note(self, text):
        for line in str(text).splitlines():
            print("# " + line, flush=True)

    def result(self, ok, name, detail="", skip=None):
        self.n += 1
        if skip:
            print(f"ok {self.n} - {name} # SKIP {skip}", flush=True)
            return
        print(f"{'ok' if ok else 'not ok'} {self.n} - {name}", flush=True)
        if not ok:
            self.failed += 1
            self.note(detail)

    def check(self, name, cond, detail=""):
        self.result(bool(cond), name, detail)
        return bool(cond)

    def end(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed else 0)


# ---- watching -------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Lists, then watches a collection in a thread, through restarts of the
    API server and compactions (410: lists again). Keeps the live objects by
    name and calls seen(obj) for every object state it receives, so a test
    can record every Job ever created (by uid) while faults go on."""

    def __init__(self, api, path, seen=None):
        super().__init__(daemon=True)
        self.api, self.path, self.seen = api, path, seen
        self.live = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.relists = 0
        self.synced = threading.Event()

    def objects(self):
        with self.lock:
            return list(self.live.values())

    def _see(self, obj):
        if self.seen:
            self.seen(obj)

    def _list(self):
        body, items, cont = None, [], ""
        while True:
            q = "?limit=500" + (f"&continue={urllib.parse.quote(cont)}" if cont else "")
            body = self.api.get(self.path + q)
            items += body.get("items") or []
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                break
        with self.lock:
            self.live = {o["metadata"]["name"]: o for o in items}
        for o in items:
            self._see(o)
        self.synced.set()
        return body["metadata"]["resourceVersion"]

    def _watch(self, rv):
        """Returns the resourceVersion to go on from, None to list again."""
        headers = {"Accept": "application/json"}
        if self.api.token:
            headers["Authorization"] = "Bearer " + self.api.token
        c = http.client.HTTPSConnection(self.api.host, self.api.port, context=self.api.ctx, timeout=90)
        try:
            c.request("GET", f"{self.api.prefix}{self.path}?watch=1&allowWatchBookmarks=true"
                      f"&resourceVersion={rv}&timeoutSeconds=60", headers=headers)
            r = c.getresponse()
            if r.status == 410:
                return None
            if r.status != 200:
                r.read()
                time.sleep(0.5)
                return rv
            while not self.stopping:
                line = r.readline()
                if not line:
                    return rv
                ev = json.loads(line)
                obj = ev.get("object") or {}
                if ev.get("type") == "ERROR":
                    return None if obj.get("code") == 410 else rv
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if ev.get("type") == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                with self.lock:
                    if ev["type"] == "DELETED":
                        self.live.pop(name, None)
                    else:
                        self.live[name] = obj
                self._see(obj)
            return rv
        finally:
            c.close()

    def run(self):
        rv, pause = None, 0.2
        while not self.stopping:
            try:
                if rv is None:
                    if self.synced.is_set():
                        self.relists += 1
                    rv = self._list()
                rv = self._watch(rv)
                pause = 0.2
            except (OSError, http.client.HTTPException, ValueError, ApiError):
                # the API server is away: do not add to its load when it comes back
                time.sleep(pause)
                pause = min(pause * 2, 5)

    def stop(self):
        self.stopping = True


# ---- an admission webhook ---------------------------------------------------------------


class Webhook:
    """A validating admission webhook on https://127.0.0.1:PORT/validate with a
    certificate of its own CA. decide(request) returns None to allow, or the
    message to deny with; every request is counted."""

    def __init__(self, tmp, decide):
        import http.server

        self.ca, crt, key = make_ca(tmp, "webhook")
        self.decide = decide
        self.lock = threading.Lock()
        self.requests = 0
        self.denied = 0
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                review = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                req = review.get("request") or {}
                with hook.lock:
                    hook.requests += 1
                    msg = hook.decide(req)
                    if msg:
                        hook.denied += 1
                resp = {"uid": req.get("uid", ""), "allowed": not msg}
                if msg:
                    resp["status"] = {"code": 403, "reason": "Forbidden", "message": msg}
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": resp}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def configuration(self, name, ns, rules):
        """A ValidatingWebhookConfiguration calling this server for rules
        in namespace ns only, failurePolicy Fail."""
        with open(self.ca, "rb") as f:
            bundle = base64.b64encode(f.read()).decode()
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": name},
                "webhooks": [{"name": f"{name}.faults.sluice.dev", "admissionReviewVersions": ["v1"],
                              "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 5,
                              "clientConfig": {"url": f"https://127.0.0.1:{self.port}/validate",
                                               "caBundle": bundle},
                              "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                              "rules": rules}]}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
