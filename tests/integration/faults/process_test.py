#!/usr/bin/env python3
"""Process faults of sluice against the real API server (TAP).

Each test does to sluice what a node does to a process, with real parts (the
kube-apiserver of tests/cluster, real Git remotes) and asserts what a user
would check afterwards:

- sigkill-sync: `sluice sync --once` and `sluice run` killed with SIGKILL at
  random points of a sync (fetch, apply, prune, inventory write) while the
  source changes between runs; after every kill a fresh start converges, the
  inventory never names an object that was never applied, and a prune never
  deletes an object that is in the source.
- sigkill-writeback: `sluice run --write-back` killed between the write-back
  commit and its push, and during the push (a remote whose pre-receive hook
  is slow), and restarted while the remote refuses write-backs; after a
  restart no completion is lost, none is committed twice, and no commit
  appears that was not asked for.
- cache-full: the Git cache directory on a small tmpfs that fills up while
  the source grows: the error is reported (log, metrics, sync status), the
  last good snapshot stays applied, and the next commit is applied once
  space is freed.
- force-push: the branch rewritten and the old history collected on the
  remote: sluice follows the new head and prunes only what left it.

Figures (timings, where the kills landed) are printed as TAP comments.
Usage: process_test.py [NAME...] (default: every test). SLUICE_FAULTS_SEED
fixes the random choices (the seed in use is printed). Skipped without a
cluster.
"""
import base64
import copy
import json
import os
import random
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.parse
import uuid

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../run"))
import run_test as rt  # noqa: E402 (paths, kubectl, git, wait, job_finish, http, parse_metrics)

GROUP = "streaming.sneaksanddata.com"
SRC_ANN = "sluice.dev/source"


def wait(what, fn, timeout, step=0.01):
    """rt.wait, polling more often: the times measured here are short."""
    return rt.wait(what, fn, timeout, step)


def note(msg):
    """A figure or a fact for the reader of the TAP output."""
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


# ---- a small Kubernetes client (the checks run often: no kubectl per call) ----


class Api:
    """GET/POST/DELETE and watches with the token and CA of a kubeconfig;
    one keep-alive connection per thread."""

    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            cfg = yaml.safe_load(f)
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == cfg["current-context"])
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        u = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = u.hostname, u.port or 443
        self.token = user.get("token")
        if not self.token:
            raise RuntimeError("the test client needs a token kubeconfig (tests/cluster writes one)")
        self.tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.local = threading.local()

    def _conn(self, timeout=30):
        return http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=timeout)

    def request(self, method, path, body=None, ctype="application/json"):
        for attempt in range(2):
            c = getattr(self.local, "conn", None)
            if c is None:
                c = self.local.conn = self._conn()
            headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = ctype
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
            except (OSError, http.client.HTTPException):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
                continue
            return r.status, (json.loads(raw) if raw else None)

    def get(self, path):
        code, body = self.request("GET", path)
        if code == 404:
            return None
        if code != 200:
            raise RuntimeError(f"GET {path}: {code} {body}")
        return body

    def items(self, path):
        body = self.get(path)
        return body["items"] if body else []


def obj_key(o):
    md = o["metadata"]
    return (o["kind"], md.get("namespace", ""), md["name"])


class Watcher:
    """Watches the kinds a test syncs (one watch per kind, all namespaces,
    label app.kubernetes.io/managed-by=sluice) and records every object it
    ever saw applied by the source, every deletion, and the live uids."""

    def __init__(self, api, kinds, source_id, namespaces):
        self.api, self.kinds, self.source_id, self.namespaces = api, kinds, source_id, set(namespaces)
        self.lock = threading.Lock()
        self.ever = set()  # (kind, ns, name) seen carrying sluice.dev/source: <source_id>
        self.deleted = []  # (seq, (kind, ns, name), uid)
        self.times = []  # (seq, monotonic time) of each event of the source's objects
        self.uids = {}  # live (kind, ns, name) -> uid
        self.seq = 0
        self.errors = []
        self.stop = False
        self.threads = []
        self.conns = []
        self.ready = threading.Semaphore(0)
        # a ConfigMap of the test's own, labelled so the watch sees it: a
        # write to it that the watch has seen orders every earlier event
        self.fence_key = ("ConfigMap", namespaces[0], "faults-fence")
        self.fence = None

    def mine(self, o):
        md = o.get("metadata", {})
        ns = md.get("namespace", "")
        return ((not ns or ns in self.namespaces) and not md["name"].startswith("sluice-inventory-")
                and (md.get("annotations") or {}).get(SRC_ANN) == self.source_id)

    def _see(self, typ, o):
        k = obj_key(o)
        with self.lock:
            self.seq += 1
            if k == self.fence_key:
                self.fence = (o.get("data") or {}).get("fence")
                return
            if typ == "DELETED":
                if self.uids.pop(k, None) is not None or self.mine(o):
                    self.deleted.append((self.seq, k, o["metadata"]["uid"]))
                    self.times.append((self.seq, time.monotonic()))
            elif self.mine(o):
                self.ever.add(k)
                self.uids[k] = o["metadata"]["uid"]
                self.times.append((self.seq, time.monotonic()))

    def _run(self, kind, path):
        sel = "labelSelector=" + urllib.parse.quote("app.kubernetes.io/managed-by=sluice")
        try:
            lst = self.api.get(f"{path}?{sel}")
            for o in lst["items"]:
                o["kind"] = kind
                self._see("ADDED", o)
            rv = lst["metadata"]["resourceVersion"]
            self.ready.release()
            while not self.stop:
                c = self.api._conn(timeout=None)
                self.conns.append(c)
                c.request("GET", f"{path}?{sel}&watch=1&resourceVersion={rv}&timeoutSeconds=3600",
                          headers={"Authorization": "Bearer " + self.api.token})
                r = c.getresponse()
                if r.status != 200:
                    raise RuntimeError(f"watch {path}: {r.status} {r.read()[:300]}")
                while not self.stop:
                    line = r.readline()
                    if not line:
                        break
                    ev = json.loads(line)
                    if ev["type"] == "ERROR":
                        raise RuntimeError(f"watch {path}: {ev['object']}")
                    o = ev["object"]
                    rv = o["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        o["kind"] = kind
                        self._see(ev["type"], o)
                c.close()
        except Exception as e:  # noqa: BLE001 (reported by check())
            if self.stop:
                return
            self.errors.append(f"{kind}: {type(e).__name__}: {e}")
            self.ready.release()

    def start(self):
        for kind, path in self.kinds:
            t = threading.Thread(target=self._run, args=(kind, path), daemon=True)
            t.start()
            self.threads.append(t)
        for _ in self.kinds:
            self.ready.acquire()
        self.check()

    def check(self):
        assert not self.errors, f"the test's watch broke: {self.errors}"

    def mark(self):
        with self.lock:
            return self.seq

    def first_since(self, seq):
        """When the first change to the source's objects after seq was seen."""
        with self.lock:
            return next((t for s, t in self.times if s > seq), None)

    def deletions_since(self, seq):
        with self.lock:
            return [(k, uid) for s, k, uid in self.deleted if s > seq]

    def settle(self):
        """Waits until every event up to now has arrived: the fence is
        written and the watch must see that write."""
        _, ns, name = self.fence_key
        marker = uuid.uuid4().hex
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "sluice"}},
                "data": {"fence": marker}}
        code, resp = self.api.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/{name}?fieldManager=faults-test",
                                      body, "application/apply-patch+yaml")
        assert code in (200, 201), (code, resp)
        wait("the test's watch to catch up", lambda: self.fence == marker, 30)
        self.check()

    def close(self):
        self.stop = True
        for c in self.conns:
            try:
                c.sock.shutdown(2)
            except (OSError, AttributeError):
                pass


# ---- the source: a bare remote and a work clone --------------------------------


class Repo:
    """A bare remote and a work clone that pushes to it; direct: no clone,
    sluice fetches from the work repository itself (a commit is then two
    git commands instead of four, which counts when it is done 200 times)."""

    def __init__(self, tmp, name="remote.git", direct=False):
        self.work = os.path.join(tmp, name + "-work")
        self.direct = direct
        subprocess.run(["git", "init", "-q", "-b", "main", self.work], check=True)
        rt.git(self.work, "config", "user.name", "test")
        rt.git(self.work, "config", "user.email", "test@example.com")
        if direct:
            self.remote = os.path.join(self.work, ".git")
            # no automatic gc: the branch stays a loose ref, read without git
            rt.git(self.work, "config", "gc.auto", "0")
        else:
            self.remote = os.path.join(tmp, name)
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", self.remote], check=True)
            rt.git(self.work, "remote", "add", "origin", self.remote)

    def write(self, path, text):
        p = os.path.join(self.work, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def remove(self, path):
        os.unlink(os.path.join(self.work, path))

    def push(self, msg, force=False):
        """Commits everything and pushes it; the new head."""
        rt.git(self.work, "add", "-A")
        rt.git(self.work, "commit", "-q", "--allow-empty", "-m", msg)
        if self.direct:
            try:
                with open(os.path.join(self.remote, "refs/heads/main")) as f:
                    return f.read().strip()
            except FileNotFoundError:
                return rt.git(self.work, "rev-parse", "HEAD").strip()
        rt.git(self.work, "push", "-q", *(["-f"] if force else []), "origin", "HEAD:main")
        return rt.git(self.work, "rev-parse", "HEAD").strip()


_yaml_cache = {}


def to_yaml(objs):
    """A YAML stream of objs (each object's text is kept: most of a source
    is the same from one commit to the next)."""
    out = []
    for o in objs:
        key = json.dumps(o, sort_keys=True)
        if key not in _yaml_cache:
            _yaml_cache[key] = yaml.safe_dump(o, sort_keys=False)
        out.append(_yaml_cache[key])
    return "---\n".join(out)


def sluice_env(extra=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("SLUICE_") or k in ("SLUICE_SOURCE_ROOT", "SLUICE_BUILD_ROOT", "SLUICE_BIN")}
    e.pop("POD_NAMESPACE", None)
    e.update(extra or {})
    return e


def inventory_of(api, ns, source_id):
    """(inventory entries as {(kind, ns, name)}, status dict, the ConfigMap's data) or Nones."""
    cm = api.get(f"/api/v1/namespaces/{ns}/configmaps/sluice-inventory-{source_id}")
    if not cm:
        return None, None, None
    data = cm.get("data") or {}
    inv = set()
    if "inventory" in data:
        for gvk, by_ns in json.loads(data["inventory"])["o"].items():
            kind = gvk.rsplit("/", 1)[1]
            for ns_, names in by_ns.items():
                for name in names:
                    inv.add((kind, ns_, name))
    status = json.loads(data["status"]) if "status" in data else None
    return inv, status, data


def metric(port, name):
    code, text = rt.http(port, "/metrics")
    if code != 200:
        return None
    samples, _ = rt.parse_metrics(text)
    return samples.get(name)


def subset(want, have):
    """want is contained in have (server defaults may add fields)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and subset(v, have[k]) for k, v in want.items())
    return want == have


def content(o):
    """What a sync sets: data or spec, and the file#document it came from."""
    return {"c": o.get("data") if o["kind"] == "ConfigMap" else o.get("spec"),
            "p": (o["metadata"].get("annotations") or {}).get("sluice.dev/path")}


class Fixture:
    """Namespaces, a source id and a temporary directory of one test; cleans up."""

    def __init__(self, name, n_ns=1):
        self.id = uuid.uuid4().hex[:6]
        self.name = name
        self.api = Api(rt.admin)
        self.ns = [f"faults-{name}-{self.id}-{i}" for i in range(n_ns)]
        self.source_id = f"faults-{name}-{self.id}"
        self.tmp = tempfile.mkdtemp(prefix=f"sluice-faults-{name}-")
        self.procs = []
        self.cleanups = []
        for ns in self.ns:
            code, body = self.api.request("POST", "/api/v1/namespaces",
                                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            assert code == 201, (code, body)

    def start(self, args, log_name, env=None):
        log = open(os.path.join(self.tmp, log_name), "w+")
        p = subprocess.Popen([rt.sluice, *args], stdout=log, stderr=subprocess.STDOUT, env=sluice_env(env),
                             start_new_session=True)
        p.logf = log
        p.started = time.monotonic()
        self.procs.append(p)
        return p

    def log(self, p):
        return rt.proc_log(p)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 (cleanup goes on)
                note(f"cleanup: {e}")
        for ns in self.ns:
            self.api.request("DELETE", f"/api/v1/namespaces/{ns}")
        subprocess.run(["rm", "-rf", self.tmp])


# ---- 1: SIGKILL at random points of a sync ------------------------------------------


class World:
    """The desired objects of the sigkill-sync source and their files."""

    def __init__(self, fx, rng):
        self.fx, self.rng = fx, rng
        self.objs = {}  # (kind, ns, name) -> manifest
        self.files = {}  # as last written: path -> text
        self.next = 0
        self.class_prefix = f"fx{fx.id}-"
        for ns in fx.ns:
            self.put({"apiVersion": f"{GROUP}/v1", "kind": "StreamingJobTemplate",
                      "metadata": {"name": "streaming", "namespace": ns},
                      "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                     "containers": [{"name": "s", "image": "busybox:1.36"}]}}}})
            for _ in range(70):
                self.add_cm(ns)
            for _ in range(8):
                self.add_stream(ns)
        for _ in range(6):
            self.add_class()

    def put(self, o):
        self.objs[obj_key(o)] = o

    def name(self, prefix):
        self.next += 1
        return f"{prefix}{self.next:05d}"

    def add_cm(self, ns):
        self.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": self.name("cm-"), "namespace": ns},
                  "data": {"v": "1", "blob": "x" * self.rng.randrange(10, 400)}})

    def add_stream(self, ns):
        n = self.name("s-")
        self.put({"apiVersion": f"{GROUP}/v1", "kind": "MockStream", "metadata": {"name": n, "namespace": ns},
                  "spec": {"suspended": True, "jobTemplateRef": {"name": "streaming"},
                           "source": f"generator://{n}", "rowsPerSecond": 1}})

    def add_class(self):
        self.put({"apiVersion": f"{GROUP}/v1", "kind": "StreamClass",
                  "metadata": {"name": self.name(self.class_prefix)},
                  "spec": {"apiGroupRef": GROUP, "apiVersion": "v1", "kindRef": "MockStream",
                           "pluralName": "mockstreams", "secretRefs": []}})

    def of(self, kind):
        return [k for k in self.objs if k[0] == kind]

    def mutate(self):
        """About a third of the ConfigMaps and some streams and classes
        added, removed or changed: every sync applies and prunes."""
        rng = self.rng
        cms = self.of("ConfigMap")
        for k in rng.sample(cms, 25):
            del self.objs[k]
        for k in rng.sample(self.of("ConfigMap"), 25):
            self.objs[k]["data"]["v"] = str(int(self.objs[k]["data"]["v"]) + 1)
        for _ in range(25):
            self.add_cm(rng.choice(self.fx.ns))
        for k in rng.sample(self.of("MockStream"), 2):
            del self.objs[k]
        for k in rng.sample(self.of("MockStream"), 2):
            self.objs[k]["spec"]["rowsPerSecond"] += 1
        for _ in range(2):
            self.add_stream(rng.choice(self.fx.ns))
        if rng.random() < 0.5:
            del self.objs[rng.choice(self.of("StreamClass"))]
            self.add_class()

    def write(self, repo):
        """The files: a ConfigMap per file, the other kinds one file per
        namespace and kind (a change there moves its neighbours' document
        indexes, so they are applied again too). Only what changed is
        written."""
        groups = {}
        self.paths = {}
        for k in sorted(self.objs):
            kind, ns, name = k
            f = f"{ns}/cm/{name}.yaml" if kind == "ConfigMap" else f"{ns or 'cluster'}/{kind.lower()}.yaml"
            groups.setdefault(f, []).append(k)
        files = {}
        for f, keys in groups.items():
            files[f] = to_yaml([self.objs[k] for k in keys])
            for j, k in enumerate(keys):
                self.paths[k] = f"{f}#{j}"
        for f in set(self.files) - set(files):
            repo.remove("tree/" + f)
        for f, text in files.items():
            if self.files.get(f) != text:
                repo.write("tree/" + f, text)
        self.files = files

    def snapshot(self):
        """The desired objects as written last, with the path annotation
        a sync gives them."""
        out = {}
        for k, v in self.objs.items():
            o = out[k] = json.loads(json.dumps(v))
            o["metadata"]["annotations"] = {"sluice.dev/path": self.paths[k]}
        return out


def live_objects(fx):
    """Our objects in the cluster: (kind, ns, name) -> object."""
    out = {}
    paths = [("StreamClass", f"/apis/{GROUP}/v1/streamclasses")]
    for ns in fx.ns:
        paths += [("ConfigMap", f"/api/v1/namespaces/{ns}/configmaps"),
                  ("MockStream", f"/apis/{GROUP}/v1/namespaces/{ns}/mockstreams"),
                  ("StreamingJobTemplate", f"/apis/{GROUP}/v1/namespaces/{ns}/streamingjobtemplates")]
    for kind, path in paths:
        for o in fx.api.items(path):
            o["kind"] = kind
            md = o["metadata"]
            if (md.get("annotations") or {}).get(SRC_ANN) == fx.source_id and \
                    not md["name"].startswith("sluice-inventory-"):
                out[obj_key(o)] = o
    return out


def check_converged(desired, live, inv, data):
    missing = sorted(set(desired) - set(live))
    extra = sorted(set(live) - set(desired))
    assert not missing and not extra, f"cluster != source: missing {missing[:5]} ({len(missing)}), " \
                                      f"extra {extra[:5]} ({len(extra)})"
    wrong = [k for k in desired if not subset(content(desired[k]), content(live[k]))]
    assert not wrong, f"cluster != source: content differs for {wrong[:5]} ({len(wrong)})"
    assert inv == set(desired), f"inventory != source: extra {sorted(inv - set(desired))[:5]}, " \
                                f"missing {sorted(set(desired) - inv)[:5]}"
    leftover = {k: v for k, v in data.items() if k not in ("inventory", "status")}
    assert not leftover, f"the inventory ConfigMap keeps more than its inventory and status: {list(leftover)}"


def test_sigkill_sync(fx, rng):
    """100 syncs killed with SIGKILL at a random point; each followed by a
    fresh start that must converge."""
    runs = int(os.environ.get("SLUICE_FAULTS_RUNS", "100"))
    repo = Repo(fx.tmp, direct=True)
    world = World(fx, rng)
    kinds = [("ConfigMap", "/api/v1/configmaps"), ("MockStream", f"/apis/{GROUP}/v1/mockstreams"),
             ("StreamingJobTemplate", f"/apis/{GROUP}/v1/streamingjobtemplates"),
             ("StreamClass", f"/apis/{GROUP}/v1/streamclasses")]
    watch = Watcher(fx.api, kinds, fx.source_id, fx.ns)
    watch.start()
    fx.cleanups.append(watch.close)
    fx.cleanups.append(lambda: [fx.api.request("DELETE", f"/apis/{GROUP}/v1/streamclasses/{k[2]}")
                                for k in live_objects(fx) if k[0] == "StreamClass"])
    common = ["--git", "file://" + repo.remote, "--path", "tree", "--prune", "--source-id", fx.source_id,
              "--inventory-namespace", fx.ns[0], "--kubeconfig", rt.identity]
    modes = {
        "sync --once": ["sync", "--once", "--cache-dir", os.path.join(fx.tmp, "cache-sync"), *common],
        "run": ["run", "--no-controller", "--listen", "off", "--interval", "2s",
                "--cache-dir", os.path.join(fx.tmp, "cache-run"), *common],
    }
    counter = [0]

    def start(mode):
        counter[0] += 1
        return fx.start(modes[mode], f"{mode.split()[0]}-{counter[0]}.log")

    def converge(mode, head):
        """A fresh start to the end of a sync of head; seconds it took."""
        p = start(mode)
        if mode == "run":
            done = re.compile(rf"sync {head}: ok:")
            wait(f"sluice run to sync {head[:12]}",
                    lambda: done.search(fx.log(p)) or (p.poll() is not None and
                                                       AssertionError(f"sluice run exited: {fx.log(p)}")), 120)
            took = time.monotonic() - p.started
            assert p.poll() is None, fx.log(p)
            p.send_signal(signal.SIGTERM)
            assert p.wait(60) == 0, fx.log(p)
        else:
            rc = p.wait(120)
            took = time.monotonic() - p.started
            assert rc == 0, f"sync --once exit {rc}: {fx.log(p)[-3000:]}"
        return took

    def check_state(head, desired, what):
        watch.settle()
        live = live_objects(fx)
        inv, status, data = inventory_of(fx.api, fx.ns[0], fx.source_id)
        assert status and status["revision"] == head and status["result"] == "ok", f"{what}: status {status}"
        try:
            check_converged(desired, live, inv, data)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from None
        return live

    # the first sync, then a few whole syncs of a changed source per mode:
    # how long the window is that the kills have to cover
    world.write(repo)
    head = repo.push("initial")
    first = converge("sync --once", head)
    check_state(head, world.snapshot(), "first sync")
    note(f"first sync of {len(world.objs)} objects: {first:.2f} s")
    # the kills are drawn from [half the time to the first write, 1.1 x the
    # median of the last whole syncs of a changed source], so that they
    # cover the apply and prune phases and follow the machine's load
    whole, first = {}, {}
    for mode in modes:
        whole[mode], first[mode] = [], []
        for _ in range(3):
            world.mutate()
            world.write(repo)
            head = repo.push("calibrate")
            mark = watch.mark()
            t0 = time.monotonic()
            whole[mode].append(converge(mode, head))
            live = check_state(head, world.snapshot(), "calibration")
            first[mode].append(watch.first_since(mark) - t0)
        note(f"{mode}: a sync of a changed source ({len(world.objs)} objects, about 25 added, 25 changed, "
             f"29 removed) writes first after {statistics.median(first[mode]):.2f} s and is done after "
             f"{statistics.median(whole[mode]):.2f} s (medians of 3, from the start of the process)")

    phases = {}
    delays = []
    recovery = {m: [] for m in modes}
    reverted = 0
    for i in range(runs):
        mode = "sync --once" if i % 2 == 0 else "run"
        before = copy.deepcopy(world.objs)
        world.mutate()
        world.write(repo)
        head = repo.push(f"run {i}")
        desired = world.snapshot()
        live0 = live  # as the last check found it: nothing ran since
        mark = watch.mark()
        lo, hi = 0.5 * statistics.median(first[mode][-5:]), 1.1 * statistics.median(whole[mode][-5:])
        delay = rng.uniform(lo, max(hi, lo + 0.05))
        delays.append((delay - lo) / max(hi - lo, 0.05))
        p = start(mode)
        time.sleep(max(0.0, p.started + delay - time.monotonic()))
        exited = p.poll() is not None
        p.kill()
        p.wait()

        # what a user finds right after the crash
        watch.settle()
        live = live_objects(fx)
        inv, status, data = inventory_of(fx.api, fx.ns[0], fx.source_id)
        never = sorted(k for k in (inv or set()) if k not in watch.ever)
        assert not never, f"run {i} ({mode}, killed at {delay:.3f} s): the inventory names objects never " \
                          f"applied: {never[:5]}"
        wrong = [k for k, _ in watch.deletions_since(mark) if k in desired]
        assert not wrong, f"run {i} ({mode}, killed at {delay:.3f} s): pruned while in the source: {wrong[:5]}"
        moved = [k for k in desired if k in live0 and k in live and
                 live[k]["metadata"]["uid"] != live0[k]["metadata"]["uid"]]
        assert not moved, f"run {i}: objects of the source were re-created: {moved[:5]}"
        changed = [k for k in desired if k not in live0 or not subset(content(desired[k]), content(live0[k]))]
        removed = [k for k in live0 if k not in desired]
        n_applied = sum(1 for k in changed if k in live and subset(content(desired[k]), content(live[k])))
        n_pruned = sum(1 for k in removed if k not in live)
        if exited or (mode == "run" and status and status["revision"] == head):
            phase = "after the sync ended"
        elif n_applied == 0 and n_pruned == 0:
            phase = "before the first apply (start, fetch, plan)"
        elif n_applied < len(changed):
            phase = "during apply"
        elif n_pruned < len(removed):
            phase = "during prune"
        elif not status or status["revision"] != head:
            phase = "before the inventory write"
        else:
            phase = "after the inventory write"
        phases[phase] = phases.get(phase, 0) + 1

        # a push while sluice is down: half of the time the crashed commit
        # is reverted (what it created must go), else more changes
        pushed = rng.random() < 0.5
        if pushed:
            if rng.random() < 0.5:
                world.objs = before
                reverted += 1
            else:
                world.mutate()
            world.write(repo)
            head = repo.push(f"while down {i}")
            desired = world.snapshot()
        mark = watch.mark()
        live1 = live  # as found right after the kill
        t0 = time.monotonic()
        took = converge(mode, head)
        live = check_state(head, desired, f"run {i} ({mode}, killed at {delay:.3f} s, {phase})")
        wrong = [k for k, _ in watch.deletions_since(mark) if k in desired]
        assert not wrong, f"run {i}: the recovering sync pruned objects of the source: {wrong[:5]}"
        moved = [k for k in desired if k in live1 and live[k]["metadata"]["uid"] != live1[k]["metadata"]["uid"]]
        assert not moved, f"run {i}: the recovering sync re-created objects of the source: {moved[:5]}"
        recovery[mode].append(took)
        if pushed and watch.first_since(mark):
            # a whole sync of a changed source: the window follows the load
            whole[mode].append(took)
            first[mode].append(watch.first_since(mark) - t0)

    note(f"{runs} kills with SIGKILL ({runs - runs // 2} of sync --once, {runs // 2} of run); "
         f"{reverted} followed by a revert of the killed commit")
    note("kill times across the window, by tenth: " +
         " ".join(str(sum(1 for d in delays if int(d * 10) == t)) for t in range(10)))
    for ph, n in sorted(phases.items(), key=lambda x: -x[1]):
        note(f"  killed {ph}: {n}")
    for mode, ts in recovery.items():
        if ts:
            note(f"recovery ({mode}: restart to converged, cluster == source): median {statistics.median(ts):.2f} s, "
                 f"max {max(ts):.2f} s")
    note(f"objects ever applied: {len(watch.ever)}; deletions seen: {len(watch.deleted)}")


# ---- 2: SIGKILL during write-back ----------------------------------------------------

HOOK = """#!/bin/sh
# pre-receive of the test remote: a write-back push (author Sluice Bot) is
# slow, so that sluice can be killed while the remote holds it; each such
# push is logged when it enters and when it leaves the hook
while read old new ref; do
  if [ "$(git log -1 --format=%an "$new" 2>/dev/null)" = "Sluice Bot" ]; then
    if [ -e {refuse} ]; then
      echo "write-back refused for the test" >&2
      exit 1
    fi
    echo "start $new $(date +%s.%N)" >> {log}
    sleep "$(cat {delay})"
    echo "end $new $(date +%s.%N)" >> {log}
  fi
done
exit 0
"""


def bot_commits(remote):
    """(sha, subject) of every write-back commit on the remote's main, oldest first."""
    out = rt.git(remote, "log", "--reverse", "--format=%H %an|%s", "main")
    return [(line.split(" ", 1)[0], line.split("|", 1)[1]) for line in out.splitlines()
            if line.split(" ", 1)[1].startswith("Sluice Bot|")]


def test_sigkill_writeback(fx, rng):
    """sluice run --write-back killed in the write-back's windows: right
    after the BackfillRequest is completed in the cluster, right after the
    local commit, while the remote's pre-receive hook holds the push, and
    right after the remote moved its branch. After each restart: every
    completion is in Git exactly once, and nothing else is committed."""
    if not (os.access("/usr/sbin/nginx", os.X_OK) and os.access("/usr/sbin/fcgiwrap", os.X_OK)):
        return "nginx or fcgiwrap is not installed (scripts/install-deps installs them)"
    env = rt.Env("wb")
    fx.cleanups.append(env.close)
    fixtures = os.path.join(rt.root, "tests/integration/source")
    srv = os.path.join(env.tmp, "srv")
    port = rt.free_port()
    subprocess.run([os.path.join(fixtures, "fixture-http-start"), srv, str(port), env.tmp, "alice", "pw-1"],
                   check=True, capture_output=True, timeout=60)
    fx.cleanups.append(lambda: subprocess.run([os.path.join(fixtures, "fixture-http-stop"), srv], timeout=60))
    pw = os.path.join(env.tmp, "pw")
    with open(pw, "w") as f:
        f.write("pw-1\n")
    hook_log, delay_file = os.path.join(env.tmp, "hook.log"), os.path.join(env.tmp, "hook.delay")
    refuse = os.path.join(env.tmp, "hook.refuse")
    with open(delay_file, "w") as f:
        f.write("2\n")
    hook = os.path.join(env.remote, "hooks/pre-receive")
    with open(hook, "w") as f:
        f.write(HOOK.format(log=hook_log, delay=delay_file, refuse=refuse))
    os.chmod(hook, 0o755)
    rt.git(env.remote, "config", "http.receivepack", "true")

    env.write("streams/s1.yaml", env.stream("s1", backfill=True))
    env.push("add s1")
    cache = os.path.join(env.tmp, "cache")
    args = ["--git", f"https://127.0.0.1:{port}/git/remote.git", "--git-username", "alice",
            "--git-password-file", pw, "--git-ca-file", os.path.join(srv, "ca.pem"), "--write-back",
            "--git-author", "Sluice Bot <bot@example.com>", "--interval", "1s", "--cache-dir", cache,
            "--inventory-namespace", env.ns, "--source-id", "wb-" + env.id]
    p = env.start(*args)
    rt.wait("Job s1-backfill (the initial backfill)", lambda: rt.job_exists(env.ns, "s1-backfill"), 90)
    rt.job_finish(env.ns, "s1-backfill")
    rt.wait("Job s1 (streaming)", lambda: rt.job_exists(env.ns, "s1"), 60)

    wb_ref = os.path.join(cache, "repo.git/refs/sluice/writeback")
    remote_ref = os.path.join(env.remote, "refs/heads/main")

    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def hook_lines():
        return read(hook_log).splitlines()

    def bfr_completed(name):
        return rt.k("-n", env.ns, "get", "bfr", name, "-o", "jsonpath={.spec.completed}", check=False) == "true"

    def git_completed(name, rev="main"):
        text = rt.git(env.remote, "show", f"{rev}:backfills/{name}.yaml")
        return re.search(r"^  completed: true", text, re.M) is not None

    # where to kill, in turn; each trial asks for one backfill
    windows = ["after the completion in the cluster", "right after the local commit",
               "in the remote's pre-receive hook", "right after the remote moved its branch"]
    trials = [w for w in windows for _ in range(3)]
    rng.shuffle(trials)
    # last, a restart while the remote refuses write-backs (its hook
    # declines them): once it takes them again, the completion gets there
    # without another restart
    refusing = "after the completion, restarted while the remote refuses"
    windows.append(refusing)
    trials.append(refusing)
    results = []
    names = []
    for t, window in enumerate(trials):
        name = f"s1-bf-{t}"
        names.append(name)
        env.write(f"backfills/{name}.yaml", f"""# backfill {t}
apiVersion: {GROUP}/v1
kind: BackfillRequest
metadata:
  name: {name}
  namespace: {env.ns}
spec:
  streamClass: {env.plural}
  streamId: s1
  completed: false
""")
        rt.git(env.work, "add", "-A")
        rt.git(env.work, "commit", "-q", "-m", f"ask for backfill {t}")
        rt.git(env.work, "pull", "-q", "--rebase", "origin", "main")
        rt.git(env.work, "push", "-q", "origin", "HEAD:main")
        rt.wait(f"the backfill Job of {name}", lambda: rt.k(
            "-n", env.ns, "get", "job", "s1-backfill", "-o",
            "jsonpath={.metadata.annotations.sluice\\.dev/backfill-request}", check=False) == name, 90)
        ref0, remote0, hooks0 = read(wb_ref), read(remote_ref), len(hook_lines())
        if window == "in the remote's pre-receive hook":
            with open(delay_file, "w") as f:
                f.write("3\n")
        rt.job_finish(env.ns, "s1-backfill")
        t0 = time.monotonic()
        if window in ("after the completion in the cluster", refusing):
            if window == refusing:
                open(refuse, "w").close()
            wait(f"{name} completed in the cluster", lambda: bfr_completed(name), 60, step=0.002)
        elif window == "right after the local commit":
            wait("the write-back commit in the cache", lambda: read(wb_ref) != ref0, 60, step=0.001)
        elif window == "in the remote's pre-receive hook":
            wait("the push in the remote's hook", lambda: len(hook_lines()) > hooks0, 60, step=0.002)
            time.sleep(rng.uniform(0, 2.5))
        else:
            wait("the remote's branch to move", lambda: read(remote_ref) != remote0, 60, step=0.001)
        p.kill()
        p.wait()
        killed_at = time.monotonic() - t0
        # what the remote still does without sluice: a push held in the
        # hook goes on when its client is gone
        wait("the remote's hooks to end", lambda: sum(1 for ln in hook_lines() if ln.startswith("start")) ==
             sum(1 for ln in hook_lines() if ln.startswith("end")), 10, step=0.05)
        time.sleep(0.5)  # receive-pack moves the branch after its hook
        landed = read(remote_ref) != remote0
        hooked = len(hook_lines()) > hooks0
        with open(delay_file, "w") as f:
            f.write("2\n")

        # restart: the same cache directory, as a pod's volume
        p = env.start(*args)
        restart = time.monotonic()
        if window == refusing:
            wait("the restarted write-back to give up", lambda: "write-back failed" in env.log(p), 90, step=0.05)
            assert not git_completed(name), "a refused write-back reached Git"
            os.unlink(refuse)
            restart = time.monotonic()  # recovery counts from the remote taking pushes again
        wait(f"{name} completed in Git", lambda: git_completed(name), 60, step=0.02)
        recovered = time.monotonic() - restart
        head = read(remote_ref)
        wait(f"a sync of {head[:12]}", lambda: f"sync {head}: ok" in env.log(p), 60, step=0.05)
        time.sleep(2)  # room for a second, wrong, commit
        assert read(remote_ref) == head, f"{name}: the remote moved again after the completion was in Git"
        results.append((window, landed, hooked, killed_at, recovered))

        # what a user checks: the cluster and Git agree, each completion is
        # one commit, and sluice committed nothing else
        commits = bot_commits(env.remote)
        for n in names:
            assert bfr_completed(n), f"{n} is not completed in the cluster"
            assert git_completed(n), f"{n} is completed in the cluster but not in Git (lost)"
            mine = [c for c in commits if c[1] == f"Complete BackfillRequest {n}"]
            assert len(mine) == 1, f"{n}: {len(mine)} write-back commits: {mine}"
        other = [c for c in commits if c[1] not in {f"Complete BackfillRequest {n}" for n in names}]
        assert not other, f"commits that were not asked for: {other}"
        sha = next(c[0] for c in commits if c[1] == f"Complete BackfillRequest {name}")
        diff = rt.git(env.remote, "diff", sha + "~1", sha)
        changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        assert changed == ["-  completed: false", "+  completed: true"], diff
        rt.wait("Job s1 (streaming again)", lambda: rt.job_exists(env.ns, "s1"), 60)

    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0, env.log(p)
    note(f"{len(trials)} kills of sluice run --write-back (HTTPS remote, pre-receive hook holding the push 2-3 s; "
         f"recovery of the last from the remote taking pushes again):")
    for window in windows:
        rs = [r for r in results if r[0] == window]
        note(f"  {window}: {len(rs)} kills ({sum(1 for r in rs if r[2])} with the push in the hook, "
             f"{sum(1 for r in rs if r[1])} where it landed after the kill), killed "
             f"{statistics.median(r[3] for r in rs):.3f} s after the job finished (median); "
             f"recovery (restart to the completion in Git) median {statistics.median(r[4] for r in rs):.2f} s, "
             f"max {max(r[4] for r in rs):.2f} s")
    note(f"write-back commits on the remote: {len(bot_commits(env.remote))} for {len(names)} completions")


# ---- 3: the cache directory fills up ----------------------------------------------------


def cm_doc(ns, name, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def fill(path, leave):
    """A filler file that leaves about `leave` bytes free on path's file system."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(path, "filler")
    with open(filler, "ab") as f:
        size = os.fstat(f.fileno()).st_size + max(0, free - leave)
        os.posix_fallocate(f.fileno(), 0, size)
    return filler


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_cache_full(fx, rng):
    """sluice run with its Git cache on a 4 MiB tmpfs. The tmpfs is filled
    while the source grows: first by a commit whose pack fits but whose
    files do not (the export fails), then by one whose pack does not fit (the
    fetch fails), and sluice is killed and restarted while it is full. Each
    time: a clear error in the log, the metrics and the sync status; the
    last good snapshot stays applied (drift is still undone) and nothing is
    pruned; once the filler is removed the next commit is applied."""
    cache = os.path.join(fx.tmp, "cache")
    os.makedirs(cache)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", cache], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}"
    fx.cleanups.append(lambda: subprocess.run(["umount", "-l", cache]))
    ns = fx.ns[0]
    repo = Repo(fx.tmp)
    base = {f"base-{i:03d}": {"i": str(i)} for i in range(40)}
    objs = set(base)  # what the source holds

    def write_base():
        repo.write("base.yaml", to_yaml([cm_doc(ns, n, d) for n, d in sorted(base.items())]))

    write_base()
    head = repo.push("base")
    port = rt.free_port()
    sid = fx.source_id
    args = ["run", "--no-controller", "--git", "file://" + repo.remote, "--cache-dir", cache, "--prune",
            "--interval", "1s", "--listen", f"127.0.0.1:{port}", "--source-id", sid,
            "--inventory-namespace", ns, "--kubeconfig", rt.identity]
    p = fx.start(args, "run-0.log")
    wait(f"sync {head[:12]}", lambda: f"sync {head}: ok" in fx.log(p), 60, step=0.05)

    def uids():
        return {o["metadata"]["name"]: o["metadata"]["uid"] for o in fx.api.items(f"/api/v1/namespaces/{ns}/configmaps")
                if (o["metadata"].get("annotations") or {}).get(SRC_ANN) == sid
                and not o["metadata"]["name"].startswith("sluice-inventory-")}

    def failed_checks(p):
        return metric(p.port, f'sluice_source_checks_total{{source="{sid}",result="failed"}}') or 0

    p.port = port

    def faulty(p, good_head, want, what, restarted=False):
        """While the disk is full: the error in the log, the metrics and the
        sync status; the last good snapshot kept (and enforced, unless
        sluice restarted: then it has none), nothing pruned or added."""
        before = uids()
        n0 = failed_checks(p)
        wait(f"two failed checks ({what})", lambda: failed_checks(p) >= n0 + 2, 60, step=0.1)
        log = fx.log(p)
        m = list(re.finditer(r"warn +source .*" + re.escape(cache) + r".*No space left on device", log))
        assert m, f"{what}: the log does not say that the cache is full:\n{log[-3000:]}"
        last = metric(p.port, f'sluice_source_last_success_timestamp_seconds{{source="{sid}"}}')
        assert last is not None and (last == 0 if restarted else time.time() - last > 1.5), \
            f"{what}: last success {last}"
        wait("the sync status to name the source's error", lambda: "No space left on device" in
             (inventory_of(fx.api, ns, sid)[1].get("sourceError") or ""), 30, step=0.05)
        _, status, _ = inventory_of(fx.api, ns, sid)
        if restarted:
            assert status["result"] == "source-error", f"{what}: {status}"
        else:
            assert status["revision"] == good_head and status["result"] == "ok", f"{what}: {status}"
            # drift is still undone from the last good snapshot
            victim = sorted(objs)[rng.randrange(len(objs))]
            fx.api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/{victim}")
            wait(f"{victim} re-created from the last good snapshot", lambda: victim in uids(), 30, step=0.05)
        after = uids()
        gone = [n for n in before if n not in after]
        assert not gone, f"{what}: pruned while the disk was full: {gone}"
        assert set(after) == set(want), f"{what}: cluster {sorted(set(after) ^ set(want))[:5]} differs"
        return m[-1].group(0)

    def recover(p, head, want, what):
        t0 = time.monotonic()
        wait(f"sync {head[:12]} after the space came back", lambda: f"sync {head}: ok" in fx.log(p), 60,
             step=0.05)
        took = time.monotonic() - t0
        assert set(uids()) == set(want), f"{what}: cluster != source after recovery"
        _, status, _ = inventory_of(fx.api, ns, sid)
        assert status["result"] == "ok" and "sourceError" not in status, f"{what}: {status}"
        left = [f for f in os.listdir(os.path.join(cache, "repo.git/objects/pack")) if not f.startswith("pack-")]
        assert not left, f"{what}: temporary files left in the cache: {left}"
        return took

    good = head
    figures = []
    # (a) a commit whose pack fits but whose files do not: the export fails
    filler = fill(cache, 160 * 1024)
    note(f"tmpfs: {free_bytes(cache)} bytes free after the filler")
    big = {f"big-{i:02d}": {"blob": "y" * 60000} for i in range(8)}
    repo.write("big.yaml", to_yaml([cm_doc(ns, n, d) for n, d in sorted(big.items())]))
    del base["base-000"]
    write_base()
    head = repo.push("big, compressible")
    line = faulty(p, good, objs, "export on a full disk")
    note("the export's error: " + line[line.index("source "):])
    os.unlink(filler)
    objs = set(base) | set(big)
    figures.append(("export failed (files over the free space)", recover(p, head, objs, "export")))
    good = head

    # (b) a commit whose pack does not fit: the fetch fails; sluice is also
    # killed and restarted while the disk is full
    filler = fill(cache, 16 * 1024)
    noise = {f"noise-{i:02d}": {"blob": base64.b64encode(rng.randbytes(9000)).decode()} for i in range(8)}
    repo.write("noise.yaml", to_yaml([cm_doc(ns, n, d) for n, d in sorted(noise.items())]))
    del base["base-001"]
    write_base()
    head = repo.push("noise, incompressible")
    want = objs
    line = faulty(p, good, want, "fetch on a full disk")
    note("the fetch's error: " + line[line.index("source "):])
    p.kill()
    p.wait()
    p = fx.start(args, "run-1.log")
    p.port = port
    line = faulty(p, good, want, "restart on a full disk", restarted=True)
    note("after a restart: " + line[line.index("source "):])
    os.unlink(filler)
    objs = set(base) | set(big) | set(noise)
    figures.append(("fetch failed, and a restart while full", recover(p, head, objs, "fetch")))
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0, fx.log(p)
    for what, took in figures:
        note(f"{what}: the next commit applied {took:.2f} s after the filler was removed")


# ---- 4: a force-pushed branch -------------------------------------------------------------


def test_force_push(fx, rng):
    """The branch sluice follows is rewritten (force-push), the old commits
    are collected on the remote (reflog expired, git gc --prune=now), once
    while sluice runs and once while it is down, and once reset to an older
    commit. sluice follows the new head every time; only objects that left
    it are pruned (a watch sees every deletion), and objects the new head
    still holds keep their uid."""
    ns = fx.ns[0]
    repo = Repo(fx.tmp)
    watch = Watcher(fx.api, [("ConfigMap", f"/api/v1/namespaces/{ns}/configmaps")], fx.source_id, fx.ns)
    watch.start()
    fx.cleanups.append(watch.close)
    sid = fx.source_id
    args = ["run", "--no-controller", "--git", "file://" + repo.remote, "--cache-dir",
            os.path.join(fx.tmp, "cache"), "--prune", "--interval", "1s", "--listen", "off",
            "--source-id", sid, "--inventory-namespace", ns, "--kubeconfig", rt.identity]

    def commit(names, msg, version=1):
        repo.write("cms.yaml", to_yaml([cm_doc(ns, n, {"v": str(version), "n": n}) for n in sorted(names)]))
        return repo.push(msg, force=True)

    def collect():
        """What a hosting service does some time after a force-push."""
        rt.git(repo.remote, "reflog", "expire", "--expire=now", "--all")
        rt.git(repo.remote, "gc", "-q", "--prune=now")

    def live():
        return {o["metadata"]["name"]: o["metadata"]["uid"] for o in fx.api.items(f"/api/v1/namespaces/{ns}/configmaps")
                if (o["metadata"].get("annotations") or {}).get(SRC_ANN) == sid
                and not o["metadata"]["name"].startswith("sluice-inventory-")}

    def converged(p, head, want, before, mark, what):
        t0 = time.monotonic()
        wait(f"{what}: sync {head[:12]}", lambda: f"sync {head}: ok" in fx.log(p), 60, step=0.02)
        took = time.monotonic() - t0
        watch.settle()
        now = live()
        assert set(now) == set(want), f"{what}: cluster != new head: {sorted(set(now) ^ set(want))}"
        wrong = [k for k, _ in watch.deletions_since(mark) if k[2] in want]
        assert not wrong, f"{what}: pruned objects the new head holds: {wrong}"
        moved = [n for n in want if n in before and before[n] != now[n]]
        assert not moved, f"{what}: re-created: {moved}"
        inv, status, _ = inventory_of(fx.api, ns, sid)
        assert status["revision"] == head and inv == {("ConfigMap", ns, n) for n in want}, f"{what}: {status}"
        return took

    base = {f"a-{i:02d}" for i in range(20)}
    a = commit(base, "A")
    rt.git(repo.work, "branch", "-f", "old-a", "HEAD")
    b = commit(base | {f"b-{i}" for i in range(5)}, "B")
    c_set = base | {f"b-{i}" for i in range(5)} | {f"c-{i}" for i in range(3)}
    c = commit(c_set, "C")
    p = fx.start(args, "run-0.log")
    mark = watch.mark()
    converged(p, c, c_set, {}, mark, "first sync")
    figures = []

    # (1) rewritten while sluice runs, 8 times: the commits after A are
    # replaced by one that keeps some of their objects (changed), drops the
    # rest and adds new ones; the remote collects the old commits at once,
    # racing sluice's fetch
    cur, old = c_set, [b, c]
    took = []
    for i in range(8):
        before, mark = live(), watch.mark()
        rt.git(repo.work, "reset", "-q", "--hard", a)
        extra = sorted(cur - base)
        cur = base | set(rng.sample(extra, len(extra) // 2)) | {f"r{i}-{j}" for j in range(3)}
        head = commit(cur, f"rewrite {i}", version=i + 2)
        collect()
        for gone in old:
            r = subprocess.run(["git", "-C", repo.remote, "cat-file", "-e", gone], capture_output=True)
            assert r.returncode != 0, f"{gone} is still on the remote after gc"
        old = [head]
        took.append(converged(p, head, cur, before, mark, f"rewrite {i}"))
    figures.append(("force-push and gc while sluice runs (8 times)", statistics.median(took)))

    # (2) rewritten while sluice is down (SIGKILL), then restarted on a
    # cache that holds the vanished commits
    p.kill()
    p.wait()
    before, mark = live(), watch.mark()
    rt.git(repo.work, "reset", "-q", "--hard", a)
    c2_set = base - {"a-00", "a-01"} | set(sorted(cur - base)[:2]) | {f"e-{i}" for i in range(4)}
    c2 = commit(c2_set, "C''", version=20)
    collect()
    p = fx.start(args, "run-1.log")
    figures.append(("force-push and gc while sluice is down, then a restart",
                    converged(p, c2, c2_set, before, mark, "rewrite while down")))

    # (3) the branch reset to an older commit (a rollback), collected
    before, mark = live(), watch.mark()
    rt.git(repo.work, "reset", "-q", "--hard", "old-a")
    rt.git(repo.work, "push", "-q", "-f", "origin", "HEAD:main")
    rt.git(repo.work, "branch", "-D", "old-a")
    collect()
    figures.append(("reset to an older commit", converged(p, a, base, before, mark, "rollback")))
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0, fx.log(p)

    # (4) a sync pinned to a commit the remote no longer has, from a fresh
    # cache: a clear error, nothing applied or pruned
    before, mark = live(), watch.mark()
    q = fx.start(["sync", "--once", "--git", "file://" + repo.remote, "--ref", c2, "--prune", "--source-id", sid,
                  "--inventory-namespace", ns, "--kubeconfig", rt.identity], "sync-vanished.log")
    assert q.wait(60) != 0, fx.log(q)
    assert f"commit {c2} not found on the remote" in fx.log(q), fx.log(q)
    watch.settle()
    assert live() == before and not watch.deletions_since(mark), "a sync of a vanished commit changed the cluster"
    _, status, _ = inventory_of(fx.api, ns, sid)
    assert status["result"] == "source-error" and "not found" in status.get("sourceError", ""), status
    deletions = len(watch.deleted)
    for what, took in figures:
        note(f"{what}: the new head applied {took:.2f} s after the force-push and gc (or the restart)")
    note(f"deletions seen: {deletions}, each of an object the new head no longer held")


TESTS = [("sigkill-sync", test_sigkill_sync, 3), ("sigkill-writeback", test_sigkill_writeback, 0),
         ("cache-full", test_cache_full, 1), ("force-push", test_force_push, 1)]


def main():
    if not rt.admin or not os.access(rt.admin, os.R_OK):
        print("1..0 # SKIP no cluster: set SLUICE_TEST_KUBECONFIG or run tests/cluster/up")
        sys.exit(0)
    want = sys.argv[1:]
    selected = [t for t in TESTS if not want or t[0] in want]
    seed = int(os.environ.get("SLUICE_FAULTS_SEED") or random.SystemRandom().randrange(1 << 30))
    print(f"1..{len(selected)}", flush=True)
    note(f"seed {seed} (SLUICE_FAULTS_SEED={seed} repeats the random choices)")
    failed = 0
    for i, (name, fn, n_ns) in enumerate(selected, 1):
        fx = None
        t0 = time.monotonic()
        try:
            fx = Fixture(name.split("-")[-1][:8], n_ns)
            res = fn(fx, random.Random(f"{seed}/{name}"))
            if isinstance(res, str):
                print(f"ok {i} - {name} # SKIP {res}", flush=True)
            else:
                print(f"ok {i} - {name}", flush=True)
        except Exception as e:  # noqa: BLE001 (a test's failure, reported in TAP)
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for line in f"{type(e).__name__}: {e}".splitlines()[:40]:
                note(line)
            if fx:
                for n, p in enumerate(fx.procs[-3:]):
                    note(f"--- log of {' '.join(p.args[1:3])} (last lines)")
                    for line in fx.log(p).splitlines()[-20:]:
                        note(line)
        finally:
            note(f"{name}: {time.monotonic() - t0:.0f} s")
            if fx:
                fx.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
