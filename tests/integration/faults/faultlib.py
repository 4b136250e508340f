"""Helpers of the fault tests: a toxiproxy server driven through its HTTP
API, what /proc says of a process (open fds, resident memory), and the checks
that follow every fault: one Job per stream, the inventory against the
cluster, and sluice's informer caches against the server's lists (the
digests `sluice run` logs on SIGUSR1, docs/operations.md).
"""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
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
