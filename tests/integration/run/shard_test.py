#!/usr/bin/env python3
"""Sharding of `sluice run` against the real API server (TAP).

Streams labelled sluice.dev/shard=a, =b and unlabelled (SLUICE_SHARD_STREAMS
in all, default 3,000: a third each) are applied by one `sluice sync --once`;
then four replicas start: two of shard a with --leader-elect (one leads, one
stands by), one of shard b and one default replica (no --shard), each with
leader election on a Lease of its own. Checked as a user would: every stream
gets its Job; each Job and each stream status was written by the field
manager of the stream's shard only (managedFields), the Job carries the
stream's shard label, each replica created as many Jobs as its shard has
streams; the StreamClass status is the default shard's. Then the leader of
shard a is killed (SIGKILL): its standby takes the Lease after it expires
and new streams of shard a get their Jobs; streams of the other shards are
not touched. Then a Running stream moves from the default shard to b: its
Job follows (same uid, label b) and shard b acts on it (suspend). Last, in a
namespace of its own, write-back across shards: the default shard syncs a
Git repository with --write-back, shard a runs the backfill of a
BackfillRequest labelled a, and the default shard commits its completion.

Prints the time to converge and each replica's RSS as TAP comments (and
writes them as JSON to $SLUICE_SHARD_RESULTS when set); SLUICE_SHARD_KEEP=1
keeps the replicas' logs of a failed run.
Usage: shard_test.py. Exit 0 with "1..0 # SKIP" without a cluster."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_test as rt  # noqa: E402  (its helpers: kubectl, waits, metrics)

N = int(os.environ.get("SLUICE_SHARD_STREAMS", "3000"))
SHARDS = ["a", "b", None]  # None: the default shard (no label)
FM = {"a": "sluice-controller/a", "b": "sluice-controller/b", None: "sluice-controller"}
# Lease timings (duration, renew deadline, retry period; SLUICE_SHARD_LEASE)
# and 8 workers a replica (SLUICE_SHARD_WORKERS). On a loaded two-core
# machine, three leaders creating 1,000 Jobs each (with 32 workers), or
# listing 3,000 Jobs with their managedFields, kept the API server so busy
# that a Lease renewal took longer than a renew deadline of 10 s and its
# leader stepped down (sluice itself used about 1 s of CPU per 1,000
# streams); the API server's throughput is the same with 8 workers.
LEASE_S = os.environ.get("SLUICE_SHARD_LEASE", "30s,20s,4s").split(",")
LEASE = ["--leader-elect-lease-duration", LEASE_S[0], "--leader-elect-renew-deadline", LEASE_S[1],
         "--leader-elect-retry-period", LEASE_S[2]]
WORKERS = os.environ.get("SLUICE_SHARD_WORKERS", "8")

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))
    return ok


def k(*args, stdin=None, check=True):
    return rt.k(*args, stdin=stdin, check=check)


def wait(what, fn, timeout):
    """rt.wait, polling every half second (kubectl is not free on a busy
    machine)."""
    return rt.wait(what, fn, timeout, step=0.5)


def seconds(d):
    return int(d[:-1]) * (60 if d.endswith("m") else 1)


def get_json(*args):
    """kubectl get -o json with managedFields."""
    return json.loads(k("get", *args, "-o", "json", "--show-managed-fields"))


def managers(obj, subresource=None):
    """Field managers of obj's managedFields (of the subresource, or of the
    main resource when None)."""
    return sorted({m["manager"] for m in obj["metadata"].get("managedFields", [])
                   if m.get("subresource") == subresource})


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        v = {l.split(":")[0]: l.split()[1] for l in f if l.startswith(("VmRSS", "VmHWM"))}
    return int(v["VmRSS"]) / 1024, int(v["VmHWM"]) / 1024


def shard_of(i):
    return SHARDS[i % 3]


class Env:
    def __init__(self):
        self.id = uuid.uuid4().hex[:6]
        self.ns = f"shard-{self.id}"
        self.kind = f"Shard{self.id}Stream"
        self.plural = f"shard{self.id}streams"
        self.tmp = tempfile.mkdtemp(prefix="sluice-shard-")
        self.procs = []
        crd = open(os.path.join(rt.root, "crds/mockstream.yaml")).read()
        crd = crd.replace("mockstreams.streaming", f"{self.plural}.streaming").replace(
            "MockStreamList", f"{self.kind}List").replace("kind: MockStream", f"kind: {self.kind}").replace(
            "plural: mockstreams", f"plural: {self.plural}").replace(
            "singular: mockstream", f"singular: shard{self.id}stream").replace("shortNames: [ms]", "shortNames: []")
        k("apply", "-f", "-", stdin=crd)
        k("wait", "--for=condition=Established", f"crd/{self.plural}.streaming.sneaksanddata.com", "--timeout=60s")
        k("create", "namespace", self.ns)

    def stream(self, name, shard, suspended=False):
        label = f"\n  labels:\n    sluice.dev/shard: {shard}" if shard else ""
        return (f"apiVersion: streaming.sneaksanddata.com/v1\nkind: {self.kind}\nmetadata:\n  name: {name}\n"
                f"  namespace: {self.ns}{label}\nspec:\n  suspended: {'true' if suspended else 'false'}\n"
                f"  jobTemplateRef:\n    name: streaming\n  source: generator://{name}\n")

    def tree(self, n):
        """The class, the template and n streams, in files of at most 500."""
        d = os.path.join(self.tmp, "tree")
        os.makedirs(d)
        with open(os.path.join(d, "class.yaml"), "w") as f:
            f.write(f"""apiVersion: streaming.sneaksanddata.com/v1
kind: StreamClass
metadata:
  name: {self.plural}
spec:
  apiGroupRef: streaming.sneaksanddata.com
  apiVersion: v1
  kindRef: {self.kind}
  pluralName: {self.plural}
  secretRefs: []
---
apiVersion: streaming.sneaksanddata.com/v1
kind: StreamingJobTemplate
metadata:
  name: streaming
  namespace: {self.ns}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: stream
          image: busybox:1.36
""")
        for f0 in range(0, n, 500):
            with open(os.path.join(d, f"streams-{f0:05d}.yaml"), "w") as f:
                f.write("---\n".join(self.stream(f"s{i:05d}", shard_of(i)) for i in range(f0, min(n, f0 + 500))))
        return d

    def start(self, shard, name):
        port = rt.free_port()
        log = open(os.path.join(self.tmp, f"sluice-{name}.log"), "w+")
        e = {v: x for v, x in os.environ.items()
             if not v.startswith("SLUICE_") or v in ("SLUICE_SOURCE_ROOT", "SLUICE_BUILD_ROOT", "SLUICE_BIN")}
        e.pop("POD_NAMESPACE", None)
        e["POD_NAME"] = name
        if shard:
            e["SLUICE_SHARD"] = shard  # the variable, as the chart sets it
        cmd = [rt.sluice, "run", "--kubeconfig", rt.identity, f"--listen=127.0.0.1:{port}", "--log-level", "info",
               "--watch-namespace", self.ns, "--workers", WORKERS, "--leader-elect", "--leader-elect-namespace",
               self.ns, *LEASE]
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=e)
        p.port, p.logf, p.name, p.shard = port, log, name, shard
        self.procs.append(p)
        return p

    def log(self, p):
        return rt.proc_log(p)

    def metrics(self, p):
        code, text = rt.http(p.port, "/metrics")
        return rt.parse_metrics(text)[0] if code == 200 else {}

    def running(self, p):
        return int(self.metrics(p).get(f'sluice_streams{{stream_class="{self.plural}",phase="Running"}}', 0))

    def created(self, p):
        return int(self.metrics(p).get('sluice_jobs_created_total{type="streaming"}', 0))

    def stop(self):
        """SIGTERM to the replicas still running: each exits 0 (and gives
        its Lease back); none reported a sanitizer error (instrumented
        builds)."""
        running = [p for p in self.procs if p.poll() is None]
        for p in running:
            p.send_signal(signal.SIGTERM)
        codes = {}
        for p in running:
            try:
                codes[p.name] = p.wait(30)
            except subprocess.TimeoutExpired:
                codes[p.name] = "still running"
        check("SIGTERM: every replica exits 0", all(c == 0 for c in codes.values()), json.dumps(codes))
        reports = [p.name for p in self.procs if "Sanitizer" in self.log(p)]
        check("no sanitizer report in the replicas' logs", not reports, ", ".join(reports))

    def close(self, keep=False):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        k("delete", "namespace", self.ns, "--wait=false", "--ignore-not-found", check=False)
        k("delete", "streamclass", self.plural, "--ignore-not-found", check=False)
        k("delete", "crd", f"{self.plural}.streaming.sneaksanddata.com", "--wait=false", "--ignore-not-found",
          check=False)
        if keep:
            print(f"# logs kept in {self.tmp}")
        else:
            subprocess.run(["rm", "-rf", self.tmp])


def flags():
    """--shard: a bad name, and --no-controller, exit 2 with a reason."""
    for args, want in [(["--shard", "Shard_A"], "lowercase"), (["--shard", "a", "--no-controller", "--dir", "/tmp"],
                                                                 "--shard contradicts --no-controller")]:
        p = subprocess.run([rt.sluice, "run", *args], capture_output=True, text=True, timeout=30)
        check(f"sluice run {' '.join(args)}: exit 2 naming the problem", p.returncode == 2 and want in p.stderr,
              p.stderr)


def split(env):
    """3 shards, N streams: each replica handles its own, nothing else."""
    d = env.tree(N)
    t0 = time.time()
    p = subprocess.run([rt.sluice, "sync", "--once", "--dir", d, "--kubeconfig", rt.identity, "--inventory-namespace",
                        env.ns, "--source-id", "shard-" + env.id], capture_output=True, text=True, timeout=600)
    check(f"sluice sync --once applies the {N} streams of every shard", p.returncode == 0, p.stdout + p.stderr)
    print(f"# sync of {N} streams: {time.time() - t0:.1f} s", flush=True)

    t0 = time.time()
    a1 = env.start("a", "a-1")
    wait("a-1 leads shard a", lambda: "is now the leader" in env.log(a1), 60)
    a2 = env.start("a", "a-2")
    b = env.start("b", "b-1")
    dflt = env.start(None, "default-1")
    leaders = [a1, b, dflt]
    per_shard = {s: sum(1 for i in range(N) if shard_of(i) == s) for s in SHARDS}
    end = time.time() + max(300, N // 5)
    while not all(env.running(p) >= per_shard[p.shard] for p in leaders):
        gone = [p.name for p in env.procs if p.poll() is not None]
        if gone or time.time() > end:
            raise AssertionError(f"not every stream Running after {time.time() - t0:.0f} s"
                                 + (f"; exited: {', '.join(gone)}" if gone else ""))
        time.sleep(1)
    took = time.time() - t0
    rss = {p.name: rss_mib(p.pid) for p in env.procs}
    created = {p.name: env.created(p) for p in env.procs}
    print(f"# {N} streams over shards a, b and default: converged in {took:.1f} s "
          f"(from the start of the replicas to every stream Running in the leaders' caches)", flush=True)
    for name, (cur, peak) in rss.items():
        print(f"# RSS {name}: {cur:.1f} MiB (peak {peak:.1f} MiB)", flush=True)
    env.figures = {"streams": N, "converge_s": took, "rss": rss}

    # the Leases: one per shard, each held by a replica of its shard
    for lease, holder in [("sluice-a", "a-1_"), ("sluice-b", "b-1_"), ("sluice", "default-1_")]:
        h = k("-n", env.ns, "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}", check=False)
        check(f"Lease {lease} is held by {holder[:-1]}", h.startswith(holder), h)
    check("the standby of shard a is started and not ready",
          rt.http(a2.port, "/startup")[0] == 200 and rt.http(a2.port, "/readyz")[0] == 503)

    # every stream has its Job, written by its own shard only
    jobs = {j["metadata"]["name"]: j for j in get_json("-n", env.ns, "jobs")["items"]}
    streams = {s["metadata"]["name"]: s for s in get_json("-n", env.ns, env.plural)["items"]}
    check(f"{N} streams, {N} Jobs", len(streams) == N and len(jobs) == N, f"{len(streams)} streams, {len(jobs)} Jobs")
    bad_job, bad_label, bad_status, bad_phase = [], [], [], []
    for name, s in streams.items():
        shard = s["metadata"].get("labels", {}).get("sluice.dev/shard")
        j = jobs.get(name)
        if not j or managers(j) != [FM[shard]]:
            bad_job.append(f"{name}: {managers(j) if j else 'no Job'}")
        elif j["metadata"].get("labels", {}).get("sluice.dev/shard") != shard:
            bad_label.append(name)
        if managers(s, "status") != [FM[shard]]:
            bad_status.append(f"{name}: {managers(s, 'status')}")
        if s.get("status", {}).get("phase") != "Running":
            bad_phase.append(name)
    check("every Job was written by its stream's shard alone (managedFields)", not bad_job, "; ".join(bad_job[:5]))
    check("every Job carries its stream's shard label", not bad_label, ", ".join(bad_label[:5]))
    check("every stream status was written by its shard alone (managedFields)", not bad_status,
          "; ".join(bad_status[:5]))
    check("every stream is Running", not bad_phase, ", ".join(bad_phase[:5]))
    check("each leader created the Jobs of its shard and the standby none",
          created == {"a-1": per_shard["a"], "a-2": 0, "b-1": per_shard["b"], "default-1": per_shard[None]},
          json.dumps(created))
    cls = get_json("streamclass", env.plural)
    check("the StreamClass status is the default shard's", managers(cls, "status") == ["sluice-controller"]
          and cls.get("status", {}).get("phase") == "Ready", f"{managers(cls, 'status')} {cls.get('status')}")
    env.replicas = {"a1": a1, "a2": a2, "b": b, "default": dflt}
    env.per_shard = per_shard
    gone = [p.name for p in env.procs if p.poll() is not None]
    check("every replica still runs (no leader stepped down)", not gone, ", ".join(gone))


def failover(env):
    """SIGKILL the leader of shard a: the standby takes over after the lease
    expires; new streams of shard a get Jobs; the other shards are left be."""
    a1, a2, b, dflt = (env.replicas[x] for x in ("a1", "a2", "b", "default"))
    before = {p.name: env.created(p) for p in (b, dflt)}
    a1.kill()
    killed = time.time()
    a1.wait()
    new = [f"new{i}" for i in range(5)]
    k("apply", "--server-side", "--field-manager", "test", "-f", "-",
      stdin="---\n".join(env.stream(n, "a") for n in new))
    wait("a-2 leads shard a", lambda: "is now the leader" in env.log(a2), seconds(LEASE_S[0]) + 30)
    print(f"# shard a failover after SIGKILL of its leader: {time.time() - killed:.1f} s", flush=True)
    wait("Jobs of the new streams of shard a",
            lambda: all(rt.job_exists(env.ns, n) for n in new), 60)
    print(f"# new streams of shard a have Jobs {time.time() - killed:.1f} s after the kill", flush=True)
    h = k("-n", env.ns, "get", "lease", "sluice-a", "-o", "jsonpath={.spec.holderIdentity}")
    check("after the kill, Lease sluice-a is held by a-2", h.startswith("a-2_"), h)
    check("a-2 created the Jobs of the new streams", env.created(a2) == len(new), str(env.created(a2)))
    wrong = [n for n in new if managers(get_json("-n", env.ns, "job", n)) != [FM["a"]]]
    check("the new Jobs were written by shard a", not wrong, ", ".join(wrong))
    check("shards b and default created nothing more", {p.name: env.created(p) for p in (b, dflt)} == before)


def move(env):
    """A Running stream of the default shard is labelled b: its Job follows
    (relabelled, same uid), and shard b acts on it from then on."""
    b, dflt = env.replicas["b"], env.replicas["default"]
    name = next(f"s{i:05d}" for i in range(N) if shard_of(i) is None)
    uid = k("-n", env.ns, "get", "job", name, "-o", "jsonpath={.metadata.uid}")
    k("-n", env.ns, "label", env.plural, name, "sluice.dev/shard=b")
    wait("the Job labelled b", lambda: k("-n", env.ns, "get", "job", name, "-o",
                                             "jsonpath={.metadata.labels.sluice\\.dev/shard}") == "b", 30)
    check("the moved stream kept its Job (same uid)",
          k("-n", env.ns, "get", "job", name, "-o", "jsonpath={.metadata.uid}") == uid)
    conflicts = int(env.metrics(b).get('sluice_api_requests_total{verb="create",code="409"}', 0))
    check("shard b waited for the Job it took over (no create answered AlreadyExists)", conflicts == 0,
          str(conflicts))
    wait("shard b counts the moved stream",
            lambda: env.running(b) == env.per_shard["b"] + 1 and env.running(dflt) == env.per_shard[None] - 1, 30)
    k("-n", env.ns, "patch", env.plural, name, "--type=merge", "-p", '{"spec":{"suspended":true}}')
    wait("the moved stream Suspended", lambda: k("-n", env.ns, "get", env.plural, name, "-o",
                                                     "jsonpath={.status.phase}") == "Suspended", 30)
    wait("its Job deleted", lambda: not rt.job_exists(env.ns, name), 30)
    s = get_json("-n", env.ns, env.plural, name)
    check("shard b wrote the moved stream's status", FM["b"] in managers(s, "status"), str(managers(s, "status")))


def writeback():
    """Write-back across shards: the default shard syncs a repository (with
    --write-back) whose stream and BackfillRequest are labelled for shard
    a; shard a runs the backfill, the default shard commits its completion."""
    env = rt.Env("shardwb")
    try:
        def labelled(doc):
            return doc.replace("metadata:\n", "metadata:\n  labels:\n    sluice.dev/shard: a\n", 1)
        env.write("streams/s1.yaml", labelled(env.stream("s1", backfill=True)))
        env.push("add s1")
        d = env.start(*env.git_args("--interval", "2s", "--write-back"))
        a = env.start(env={"SLUICE_SHARD": "a"})
        wait("Job s1-backfill (the initial backfill)", lambda: rt.job_exists(env.ns, "s1-backfill"), 90)
        rt.job_finish(env.ns, "s1-backfill")
        wait("Job s1", lambda: rt.job_exists(env.ns, "s1"), 60)
        env.write("backfills/b1.yaml", labelled(f"""apiVersion: streaming.sneaksanddata.com/v1
kind: BackfillRequest
metadata:
  name: s1-reload
  namespace: {env.ns}
spec:
  streamClass: {env.plural}
  streamId: s1
  completed: false
"""))
        before = env.push("ask for a reload")
        wait("Job s1-backfill for the reload", lambda: rt.job_exists(env.ns, "s1-backfill"), 60)
        rt.job_finish(env.ns, "s1-backfill")
        head = ""

        def committed():
            nonlocal head
            head = rt.git(env.remote, "rev-parse", "main").strip()
            return head != before
        wait("a write-back commit", committed, 60)
        diff = rt.git(env.remote, "diff", before, head)
        changed = [l for l in diff.splitlines() if l[:1] in "+-" and not l.startswith(("+++", "---"))]
        check("the default shard commits the completion of a backfill shard a ran",
              changed == ["-  completed: false", "+  completed: true"], diff)
        created = {n: int(env_metrics(p).get('sluice_jobs_created_total{type="backfill"}', 0))
                   for n, p in (("default", d), ("a", a))}
        check("shard a ran both backfills, the default shard none", created == {"default": 0, "a": 2},
              json.dumps(created))
    except Exception:
        for n, p in enumerate(env.procs):
            print(f"# --- log of write-back replica #{n} (last lines)")
            for line in env.log(p).splitlines()[-15:]:
                print("# " + line)
        raise
    finally:
        env.close()


def env_metrics(p):
    code, text = rt.http(p.port, "/metrics")
    return rt.parse_metrics(text)[0] if code == 200 else {}


def write_results(env):
    path = os.environ.get("SLUICE_SHARD_RESULTS")
    if path and getattr(env, "figures", None):
        with open(path, "w") as f:
            json.dump(env.figures, f, indent=1)


def main():
    if not rt.admin or not os.access(rt.admin, os.R_OK):
        print("1..0 # SKIP no cluster: set SLUICE_TEST_KUBECONFIG or run tests/cluster/up")
        sys.exit(0)
    flags()
    env = Env()
    try:
        for step in (split, failover, move):
            n = len(results)
            step(env)
            if any(not ok for _, ok, _ in results[n:]):
                break
        if all(ok for _, ok, _ in results):
            env.stop()
        if all(ok for _, ok, _ in results):
            writeback()
    except Exception as e:  # noqa: BLE001 (reported in TAP)
        check(f"no exception ({type(e).__name__})", False, str(e))
    finally:
        failed = [r for r in results if not r[1]]
        if failed:
            for p in env.procs:
                print(f"# --- log of {p.name} (last lines)")
                for line in env.log(p).splitlines()[-15:]:
                    print("# " + line)
        write_results(env)
        env.close(keep=bool(failed) and bool(os.environ.get("SLUICE_SHARD_KEEP")))
    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            for line in str(detail).splitlines()[:20]:
                print("# " + line)
    sys.exit(1 if any(not ok for _, ok, _ in results) else 0)


if __name__ == "__main__":
    main()
