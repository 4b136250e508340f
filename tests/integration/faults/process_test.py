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
  is slow); after a restart no completion is lost, none is committed twice,
  and no commit appears that was not asked for.
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
import copy
import json
import os
import random
import re
import shutil
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
            elif self.mine(o):
                self.ever.add(k)
                self.uids[k] = o["metadata"]["uid"]

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
        rt.wait("the test's watch to catch up", lambda: self.fence == marker, 30)
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
    def __init__(self, tmp, name="remote.git"):
        self.remote = os.path.join(tmp, name)
        self.work = os.path.join(tmp, name + "-work")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", self.remote], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", self.work], check=True)
        rt.git(self.work, "config", "user.name", "test")
        rt.git(self.work, "config", "user.email", "test@example.com")
        rt.git(self.work, "remote", "add", "origin", self.remote)

    def write(self, path, text):
        p = os.path.join(self.work, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def remove(self, path):
        os.unlink(os.path.join(self.work, path))

    def push(self, msg, force=False):
        rt.git(self.work, "add", "-A")
        rt.git(self.work, "commit", "-q", "--allow-empty", "-m", msg)
        rt.git(self.work, "push", "-q", *(["-f"] if force else []), "origin", "HEAD:main")
        return rt.git(self.work, "rev-parse", "HEAD").strip()


def to_yaml(objs):
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)


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
        p.logf.flush()
        with open(p.logf.name) as f:
            return f.read()

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
        """The files: one per namespace and kind, ConfigMaps 25 to a file."""
        shutil.rmtree(os.path.join(repo.work, "tree"), ignore_errors=True)
        groups = {}
        self.paths = {}
        for k in sorted(self.objs):
            kind, ns, name = k
            groups.setdefault((ns or "cluster", kind), []).append(k)
        for (ns, kind), keys in groups.items():
            for i in range(0, len(keys), 25):
                f = f"{ns}/{kind.lower()}-{i // 25}.yaml"
                repo.write("tree/" + f, to_yaml([self.objs[k] for k in keys[i:i + 25]]))
                for j, k in enumerate(keys[i:i + 25]):
                    self.paths[k] = f"{f}#{j}"

    def snapshot(self):
        """The desired objects as written last, with the path annotation
        a sync gives them."""
        out = {}
        for k, v in self.objs.items():
            o = out[k] = json.loads(json.dumps(v))
            o["metadata"]["annotations"] = {"sluice.dev/path": self.paths[k]}
        return out


def live_objects(fx, world):
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
    repo = Repo(fx.tmp)
    world = World(fx, rng)
    kinds = [("ConfigMap", "/api/v1/configmaps"), ("MockStream", f"/apis/{GROUP}/v1/mockstreams"),
             ("StreamingJobTemplate", f"/apis/{GROUP}/v1/streamingjobtemplates"),
             ("StreamClass", f"/apis/{GROUP}/v1/streamclasses")]
    watch = Watcher(fx.api, kinds, fx.source_id, fx.ns)
    watch.start()
    fx.cleanups.append(watch.close)
    fx.cleanups.append(lambda: [fx.api.request("DELETE", f"/apis/{GROUP}/v1/streamclasses/{k[2]}")
                                for k in live_objects(fx, world) if k[0] == "StreamClass"])
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
            rt.wait(f"sluice run to sync {head[:12]}",
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
        live = live_objects(fx, world)
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
    window = {}
    for mode in modes:
        ts = []
        for _ in range(3):
            world.mutate()
            world.write(repo)
            head = repo.push("calibrate")
            ts.append(converge(mode, head))
            check_state(head, world.snapshot(), "calibration")
        window[mode] = max(ts) * 1.15
        note(f"{mode}: a sync of a changed source ({len(world.objs)} objects, about 25 added, 25 changed, "
             f"29 removed) takes {statistics.median(ts):.2f} s (median of 3) from start to done; "
             f"kills drawn from [0, {window[mode]:.2f}] s")

    phases = {}
    recovery = {m: [] for m in modes}
    reverted = 0
    for i in range(runs):
        mode = "sync --once" if i % 2 == 0 else "run"
        before = copy.deepcopy(world.objs)
        world.mutate()
        world.write(repo)
        head = repo.push(f"run {i}")
        desired = world.snapshot()
        live0 = live_objects(fx, world)
        mark = watch.mark()
        delay = rng.uniform(0, window[mode])
        p = start(mode)
        time.sleep(max(0.0, p.started + delay - time.monotonic()))
        exited = p.poll() is not None
        p.kill()
        p.wait()

        # what a user finds right after the crash
        watch.settle()
        live = live_objects(fx, world)
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
        if rng.random() < 0.5:
            if rng.random() < 0.5:
                world.objs = before
                reverted += 1
            else:
                world.mutate()
            world.write(repo)
            head = repo.push(f"while down {i}")
            desired = world.snapshot()
        mark = watch.mark()
        live1 = live_objects(fx, world)
        took = converge(mode, head)
        live = check_state(head, desired, f"run {i} ({mode}, killed at {delay:.3f} s, {phase})")
        wrong = [k for k, _ in watch.deletions_since(mark) if k in desired]
        assert not wrong, f"run {i}: the recovering sync pruned objects of the source: {wrong[:5]}"
        moved = [k for k in desired if k in live1 and live[k]["metadata"]["uid"] != live1[k]["metadata"]["uid"]]
        assert not moved, f"run {i}: the recovering sync re-created objects of the source: {moved[:5]}"
        recovery[mode].append(took)

    note(f"{runs} kills with SIGKILL ({runs - runs // 2} of sync --once, {runs // 2} of run); "
         f"{reverted} followed by a revert of the killed commit")
    for ph, n in sorted(phases.items(), key=lambda x: -x[1]):
        note(f"  killed {ph}: {n}")
    for mode, ts in recovery.items():
        if ts:
            note(f"recovery ({mode}: restart to converged, cluster == source): median {statistics.median(ts):.2f} s, "
                 f"max {max(ts):.2f} s")
    note(f"objects ever applied: {len(watch.ever)}; deletions seen: {len(watch.deleted)}")


TESTS = [("sigkill-sync", test_sigkill_sync, 3)]


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
