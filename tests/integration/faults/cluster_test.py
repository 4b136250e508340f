#!/usr/bin/env python3
"""Cluster faults under load (TAP): `sluice run` with the controller on drives
1,000 streams with backfill templates (so BackfillRequests and backfill Jobs
exist) while the cluster misbehaves:

  apiserver-restart  kube-apiserver restarted in the middle of a 10,000-object
                     sync, and again while the 1,000 streams are being created
  etcd-compaction    (after apiserver-restart, on its streams) sluice paused,
                     BackfillRequests created and Jobs deleted before and
                     after an etcd compaction, kube-apiserver restarted: the
                     watches resume from a compacted resourceVersion, get 410
                     Gone, relist, and everything changed is acted on
  webhook            a validating admission webhook rejects every fifth CREATE
                     of a Job and every fifth UPDATE of a stream's status in
                     the namespace, with a message, while the streams are
                     created; then it allows all
  rbac               sluice runs as a ServiceAccount with the Roles of
                     deploy/rbac-namespaced.yaml in two namespaces; the
                     RoleBinding of one is deleted while both work, then
                     restored

Every scenario ends converged: exactly one Job per stream (its streaming Job),
every backfill Job created once per BackfillRequest, every streaming Job
created only as often as the scenario asked for, every BackfillRequest
completed (the test completes backfill Jobs as a Job controller would, also
during the fault), and the fault reported as Kubernetes Events and in status,
not only in logs. Figures are printed as TAP comments; a table row per
scenario ("# | fault | ...") is printed at the end.
Usage: cluster_test.py [SCENARIO...] (default: all). Skipped without a
cluster; apiserver-restart and etcd-compaction need the control plane of
tests/cluster/up (they restart its kube-apiserver). Environment:
SLUICE_FAULTS_STREAMS, SLUICE_FAULTS_OBJECTS change the load;
SLUICE_FAULTS_KEEP_LOGS=DIR keeps sluice's logs.
"""
import collections
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402 (the helpers of the fault suite)

rt = fl.rt
GROUP = "/apis/streaming.sneaksanddata.com/v1"
N_STREAMS = int(os.environ.get("SLUICE_FAULTS_STREAMS", "1000"))
N_OBJECTS = int(os.environ.get("SLUICE_FAULTS_OBJECTS", "10000"))
CONVERGE_S = 300
ROWS = []


class Skip(Exception):
    pass


def row(fault, checked, result, recovery):
    ROWS.append((fault, checked, result, recovery))


def api_errors():
    return (OSError, fl.ApiError, fl.http.client.HTTPException, ValueError)


class Load:
    """Streams with a backfill template in the Git remote of an rt.Env (per
    namespace in namespaces), watched: every Job ever created is recorded by
    uid, and a finisher completes backfill Jobs as a Job controller would
    (also while the API server is away)."""

    def __init__(self, env, api, namespaces=None, per_ns=N_STREAMS):
        self.env, self.api = env, api
        self.namespaces = namespaces or [env.ns]
        self.keys = [(ns, f"s{i:04d}") for ns in self.namespaces for i in range(per_ns)]
        self.n = len(self.keys)
        self.created = {}  # Job uid -> (ns, name, BackfillRequest or "")
        self.restarts = collections.Counter()  # (ns, stream) -> streaming Jobs the test caused to go
        self.lock = threading.Lock()
        self.jobs = {ns: fl.Watcher(api, f"/apis/batch/v1/namespaces/{ns}/jobs", self._job) for ns in self.namespaces}
        self.streams = {ns: fl.Watcher(api, f"{GROUP}/namespaces/{ns}/{env.plural}", self._stream)
                        for ns in self.namespaces}
        self.bfrs = {ns: fl.Watcher(api, f"{GROUP}/namespaces/{ns}/backfillrequests") for ns in self.namespaces}
        self.conditions = collections.defaultdict(set)  # (ns, name) -> {(reason, message)} seen in status
        self.finished = set()
        self.finish_errors = 0
        self.stopping = False
        self.threads = []

    # -- the source
    def write(self):
        for ns in self.namespaces:
            names = [n for s, n in self.keys if s == ns]
            if ns != self.env.ns:
                self.env.write(f"templates-{ns}.yaml", open(os.path.join(self.env.work, "templates.yaml")).read()
                               .replace(f"namespace: {self.env.ns}", f"namespace: {ns}"))
            for f in range(0, len(names), 100):
                docs = [self.env.stream(n, backfill=True).replace(f"namespace: {self.env.ns}", f"namespace: {ns}")
                        for n in names[f:f + 100]]
                self.env.write(f"streams/{ns}-{f // 100:03d}.yaml", "---\n".join(docs))

    # -- watching
    def _job(self, job):
        md = job["metadata"]
        with self.lock:
            if md["uid"] not in self.created:
                self.created[md["uid"]] = (md["namespace"], md["name"], (md.get("annotations") or {}).get(
                    "sluice.dev/backfill-request", ""))

    def _stream(self, s):
        for c in (s.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("reason"):
                with self.lock:
                    self.conditions[(s["metadata"]["namespace"], s["metadata"]["name"])].add(
                        (c["reason"], c.get("message", "")))

    def _finish_loop(self):
        body = fl.finish_job_body()
        pause = 0.3
        while not self.stopping:
            todo = [j for w in self.jobs.values() for j in w.objects()
                    if j["metadata"]["name"].endswith("-backfill") and j["metadata"]["uid"] not in self.finished
                    and not fl.job_done(j) and not j["metadata"].get("deletionTimestamp")]

            def finish(j):
                md = j["metadata"]
                try:
                    self.api.request("PATCH", f"/apis/batch/v1/namespaces/{md['namespace']}/jobs/{md['name']}/status",
                                     body, ctype="application/merge-patch+json", ok=(200, 404, 409))
                    return md["uid"]
                except api_errors():
                    self.finish_errors += 1
                    return None

            done = fl.parallel(finish, todo, 8) if todo else []
            for uid in done:
                if uid:
                    self.finished.add(uid)
            # failures: the API server is away, back off
            pause = min(pause * 2, 5) if None in done else 0.3
            time.sleep(pause)

    def watch(self):
        ws = [*self.jobs.values(), *self.streams.values(), *self.bfrs.values()]
        for w in ws:
            w.start()
        for w in ws:
            w.synced.wait(60)
        t = threading.Thread(target=self._finish_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        self.stopping = True
        for w in [*self.jobs.values(), *self.streams.values(), *self.bfrs.values()]:
            w.stop()

    # -- what the watches show
    def count_jobs(self, suffix="", ns=None):
        return sum(1 for s, w in self.jobs.items() if ns in (None, s) for j in w.objects()
                   if j["metadata"]["name"].endswith(suffix))

    def count_created(self, suffix=""):
        """Jobs ever created (seen by the watches) whose name ends with suffix;
        unlike the live ones, a count that only grows: a backfill Job is
        deleted once it is done and its stream's streaming Job takes its place."""
        with self.lock:
            return sum(1 for ns, n, b in self.created.values() if n.endswith(suffix))

    def phases(self, ns=None):
        return collections.Counter((s.get("status") or {}).get("phase", "")
                                   for n, w in self.streams.items() if ns in (None, n) for s in w.objects())

    def open_bfrs(self, ns=None):
        return sorted((n, b["metadata"]["name"]) for n, w in self.bfrs.items() if ns in (None, n)
                      for b in w.objects() if not b["spec"].get("completed"))

    def state(self, ns=None, fresh=False):
        """What is not converged yet, as a short text ("" when converged).
        fresh: from new lists rather than the watches."""
        out = []
        for n in self.namespaces:
            if ns not in (None, n):
                continue
            if fresh:
                streams = self.api.list(f"{GROUP}/namespaces/{n}/{self.env.plural}")
                jobs = self.api.list(f"/apis/batch/v1/namespaces/{n}/jobs")
                bfrs = self.api.list(f"{GROUP}/namespaces/{n}/backfillrequests")
            else:
                streams, jobs, bfrs = self.streams[n].objects(), self.jobs[n].objects(), self.bfrs[n].objects()
            want = [k for s, k in self.keys if s == n]
            phase = {s["metadata"]["name"]: (s.get("status") or {}).get("phase") for s in streams}
            stale = [s["metadata"]["name"] for s in streams if any(
                c.get("reason") == "ReconcileError" for c in (s.get("status") or {}).get("conditions") or [])]
            per = collections.Counter(j["metadata"]["labels"].get("arcane/stream-id") for j in jobs)
            names = {j["metadata"]["name"] for j in jobs}
            missing = [k for k in want if k not in phase]
            not_running = [k for k in want if k in phase and phase[k] != "Running"]
            wrong = [k for k in want if per.get(k) != 1 or k not in names]
            open_ = [b["metadata"]["name"] for b in bfrs if not b["spec"].get("completed")]
            if missing:
                out.append(f"{n}: {len(missing)} stream(s) missing")
            if not_running:
                out.append(f"{n}: {len(not_running)} not Running (e.g. {not_running[:2]}: "
                           f"{[phase[k] for k in not_running[:2]]})")
            if wrong:
                out.append(f"{n}: {len(wrong)} without exactly one Job, the streaming one (e.g. {wrong[:2]})")
            if len(jobs) != len(want):
                out.append(f"{n}: {len(jobs)} Jobs for {len(want)} streams")
            if open_:
                out.append(f"{n}: {len(open_)} BackfillRequest(s) not completed (e.g. {open_[:2]})")
            if stale:
                out.append(f"{n}: {len(stale)} still showing ReconcileError (e.g. {stale[:2]})")
        return "; ".join(out)

    def converge(self, since, timeout=CONVERGE_S, ns=None):
        """Waits until converged (the watches, then fresh lists agree);
        returns the seconds since `since`."""
        end = time.time() + timeout
        last = ""
        while time.time() < end:
            try:
                last = self.state(ns)
                if not last:
                    took = time.time() - since
                    last = self.state(ns, fresh=True)
                    if not last:
                        return took
            except api_errors() as e:
                last = f"API: {e}"
            time.sleep(1)
        raise AssertionError(f"not converged after {timeout}s: {last}")

    def duplicates(self):
        """(BackfillRequests run by more than one Job, streams whose
        streaming Job was created more often than expected, backfill Jobs
        without a request)."""
        with self.lock:
            created = list(self.created.values())
        per_bfr = collections.Counter((ns, b) for ns, n, b in created if n.endswith("-backfill"))
        per_stream = collections.Counter((ns, n) for ns, n, b in created if not n.endswith("-backfill"))
        dup_bfr = {k: c for k, c in per_bfr.items() if c > 1}
        dup_stream = {k: c for k, c in per_stream.items() if c > 1 + self.restarts[k]}
        unnamed = sum(1 for ns, n, b in created if n.endswith("-backfill") and not b)
        return dup_bfr, dup_stream, unnamed

    def create_bfrs(self, keys, suffix):
        """A BackfillRequest per stream of keys (as a user would), in parallel;
        each will take the place of the stream's streaming Job for a while."""
        def one(k):
            ns, name = k
            self.api.create(f"{GROUP}/namespaces/{ns}/backfillrequests", {
                "apiVersion": "streaming.sneaksanddata.com/v1", "kind": "BackfillRequest",
                "metadata": {"name": f"{name}-{suffix}", "namespace": ns},
                "spec": {"streamClass": self.env.plural, "streamId": name, "completed": False}})
            with self.lock:
                self.restarts[k] += 1
        fl.parallel(one, keys, 16)


def check_end(tap, name, load, t_fault, ns=None):
    """The end state every scenario must reach: converged, nothing twice.
    Returns the recovery time (s since t_fault) or None."""
    took = None
    try:
        took = load.converge(t_fault, ns=ns)
        tap.check(f"{name}: converged: every stream Running with one Job (its streaming Job), "
                  "every BackfillRequest completed, no error left in a status", True)
    except AssertionError as e:
        tap.check(f"{name}: converged", False, str(e))
    dup_bfr, dup_stream, unnamed = load.duplicates()
    tap.check(f"{name}: no BackfillRequest run by two Jobs", not dup_bfr and not unnamed,
              f"run twice: {dict(list(dup_bfr.items())[:5])}; backfill Jobs without a request: {unnamed}")
    tap.check(f"{name}: no streaming Job created twice", not dup_stream,
              f"created more often than asked: {dict(list(dup_stream.items())[:5])}")
    return took


def events(api, ns, reason=None, type_=None, kind=None):
    return [e for e in api.list(f"/api/v1/namespaces/{ns}/events")
            if (not reason or e.get("reason") == reason) and (not type_ or e.get("type") == type_)
            and (not kind or e.get("involvedObject", {}).get("kind") == kind)]


def metrics(p):
    code, text = rt.http(p.port, "/metrics")
    return rt.parse_metrics(text)[0] if code == 200 else {}


def cm_count(api, ns):
    """ConfigMaps in ns, counted by a one-item list (remainingItemCount)."""
    body = api.get(f"/api/v1/namespaces/{ns}/configmaps?limit=1")
    return len(body.get("items") or []) + int(body["metadata"].get("remainingItemCount") or 0)


def write_objects(d, ns, n):
    os.makedirs(d, exist_ok=True)
    for f in range(0, n, 500):
        with open(os.path.join(d, f"cm-{f // 500:03d}.yaml"), "w") as fh:
            fh.write("---\n".join(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05d}\n  namespace: {ns}\n"
                                  f"data:\n  i: \"{i}\"\n" for i in range(f, min(n, f + 500))))


def inventory_status(api, ns, source):
    cm = api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/sluice-inventory-{source}", ok=(200, 404))[1]
    # a first sync in progress has only its pending objects there, no status yet
    status = ((cm or {}).get("data") or {}).get("status")
    return json.loads(status) if status else {}


def restart_apiserver(d, extra=()):
    """Stops and starts kube-apiserver (with extra flags); returns (stop
    time, seconds until /readyz)."""
    t = time.time()
    fl.stop_apiserver(d)
    stopped = time.time() - t
    fl.start_apiserver(d, extra)
    print(f"# kube-apiserver stopped in {stopped:.1f} s; then not ready: "
          + "; ".join(f"{s} s {w}" for s, w in fl.start_apiserver.trail[:12]), flush=True)
    return t, time.time() - t


def stop(tap, procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = [p.wait(60) for p in procs]
    tap.check("sluice exits 0 on SIGTERM", all(c == 0 for c in codes), f"exit codes {codes}")


def note_metrics(tap, what, p, prefixes):
    m = metrics(p)
    tap.note(f"{what}: " + ", ".join(f"{k} {v:g}" for k, v in sorted(m.items())
                                     if any(k.startswith(x) for x in prefixes)))
    return m


def keep_logs(env):
    d = os.environ.get("SLUICE_FAULTS_KEEP_LOGS")
    if d:
        os.makedirs(d, exist_ok=True)
        for i, p in enumerate(env.procs):
            with open(os.path.join(d, f"{env.ns}-{i}.log"), "w") as f:
                f.write(env.log(p))


# ---- 1 and 2: kube-apiserver restarts, etcd compaction -------------------------------------


def scenario_apiserver(tap, api, want):
    d = fl.cluster_dir()
    if not d:
        raise Skip("needs the control plane of tests/cluster/up (apiserver.args, etcd-url)")
    env = rt.Env("clapi")
    load = Load(env, api)
    ons = env.ns + "-objects"
    try:
        rt.k("create", "namespace", ons)
        load.write()
        env.push("streams")
        objs = os.path.join(env.tmp, "objects")
        write_objects(objs, ons, N_OBJECTS)
        load.watch()
        src = "objects-" + env.id
        t_sync = time.time()
        sync = env.start("--dir", objs, "--no-controller", "--inventory-namespace", ons, "--source-id", src,
                         "--interval", "10s")
        # restart 1, mid-apply: a fifth of the objects are there
        rt.wait("a fifth of the objects applied", lambda: cm_count(api, ons) >= N_OBJECTS // 5, 120)
        at_stop = cm_count(api, ons)
        # what a whole apply takes on this machine now, from the first fifth's pace (nothing else running)
        whole = N_OBJECTS * (time.time() - t_sync) / max(at_stop, 1)
        t1, away1 = restart_apiserver(d)
        tap.note(f"restart 1 (mid-apply): {at_stop} of {N_OBJECTS} objects applied at the stop; "
                 f"/readyz again after {away1:.1f} s")
        t_ctl = time.time()
        ctl = env.start(*env.git_args("--interval", "10s"))
        # restart 2, mid-reconcile: a tenth of the streams have had their backfill Job (created: the
        # backfill Jobs done are gone, replaced by streaming Jobs, so the live ones may never be a tenth)
        rt.wait("a tenth of the backfill Jobs created", lambda: load.count_created("-backfill") >= load.n // 10, 180)
        n_backfill, n_objs = load.count_created("-backfill"), cm_count(api, ons)
        n_streaming = load.count_created() - n_backfill
        n_live = load.count_jobs()
        t2, away2 = restart_apiserver(d)
        tap.note(f"restart 2 (mid-reconcile), {t2 - t_ctl:.1f} s after the controller started: {n_backfill} backfill "
                 f"and {n_streaming} streaming Jobs of {load.n} streams created ({n_live} Jobs live), {n_objs} "
                 f"objects applied at the stop; /readyz again after {away2:.1f} s")
        tap.check("restart 1 came in the middle of the sync", 0 < at_stop < N_OBJECTS, f"{at_stop} objects")
        tap.check("restart 2 came in the middle of the streams' creation (some streams without their streaming Job)",
                  0 < n_backfill and n_streaming < load.n, f"{n_backfill} backfill, {n_streaming} streaming Jobs")

        def synced():
            st = inventory_status(api, ons, src)
            return st.get("result") == "ok" and cm_count(api, ons) == N_OBJECTS + 1
        # the next run applies what is left while the controller works on 1,000 streams: a loaded
        # machine (every apply slower) gets twice the whole apply's time at the first fifth's pace
        objs_wait = round(min(max(CONVERGE_S, 2 * whole), 900))
        tap.note(f"a whole apply of the {N_OBJECTS} objects takes {whole:.0f} s at the pace of the first fifth; "
                 f"waiting up to {objs_wait} s for the sync after restart 2")
        try:
            rt.wait("the sync of the objects ok", synced, objs_wait)
            objs_took = time.time() - t2
            tap.check(f"apiserver-restart: all {N_OBJECTS} objects applied, the sync's status ok", True)
        except AssertionError as e:
            objs_took = None
            tap.check("apiserver-restart: the objects' sync recovered", False, str(e))
        # the outage is one failure of the sync, not one per object it did not get to
        lines = [l for l in env.log(sync).splitlines() if "not applied" in l]
        tap.check("apiserver-restart: the sync stops at an unreachable API server (no line per object left)",
                  len(lines) <= 200, f"{len(lines)} 'not applied' lines, e.g. {lines[:2]}")
        m = note_metrics(tap, "objects sync", sync, ("sluice_syncs_total", 'sluice_api_requests_total{verb="apply"'))
        tap.check("apiserver-restart: failed syncs counted",
                  m.get(f'sluice_syncs_total{{source="{src}",result="failed"}}', 0) >= 1)
        # its resyncs (a list of every object) would only slow the rest down
        stop(tap, [sync])
        took = check_end(tap, "apiserver-restart", load, t2)
        tap.note(f"recovery after restart 2: objects {objs_took and round(objs_took, 1)} s, "
                 f"streams {took and round(took, 1)} s")
        # the failure is on record in the cluster: the sync's Event, the streams' status
        sync_events = [e for e in events(api, ons, "SyncFailed", "Warning")]
        tap.check("apiserver-restart: the failed sync is a Warning Event SyncFailed on the inventory",
                  sync_events, f"events in {ons}: {[(e['reason'], e['message'][:100]) for e in events(api, ons)]}")
        for e in sync_events[:2]:
            tap.note(f"  Event {e['reason']}: {e['message'][:200]}")
        # writes the API server refused while it started (RBAC not loaded yet) are on the streams;
        # those it never answered are counted, not written to 1,000 streams as it comes back
        warn = events(api, env.ns, "ReconcileError", "Warning")
        errs = {k for k, v in load.conditions.items() if any(r == "ReconcileError" for r, _ in v)}
        tap.note(f"{len(errs)} streams' status and {len(warn)} Warning Events recorded a refused write; "
                 f"{collections.Counter(e['message'].split(': ', 2)[-1][:70] for e in warn).most_common(2)}")
        mc = note_metrics(tap, "controller", ctl, ("sluice_reconciles_total", "sluice_watch_re",
                                                   'sluice_api_requests_total{verb="create",code="none"'))
        tap.check("apiserver-restart: the writes the API server never answered are in the metrics",
                  mc.get('sluice_reconciles_total{result="error"}', 0) > 0 and
                  sum(v for k, v in mc.items() if k.startswith("sluice_api_requests_total") and 'code="none"' in k) > 0)
        row("kube-apiserver restarted mid-apply (10,000 ConfigMaps) and mid-reconcile (1,000 streams)",
            "objects all applied, sync status ok, sync stopped at the outage (no per-object flood), late SyncFailed "
            "Event; streams converged, no duplicate Job, no lost completion; unanswered writes in metrics", "pass" if not tap.failed else "FAIL",
            f"objects {objs_took and round(objs_took)} s, streams {took and round(took)} s after restart 2 "
            f"(API away {away2:.0f} s)")
        if "etcd-compaction" in want:
            try:
                compaction(tap, api, d, env, load, ctl)
            finally:
                stop(tap, [ctl])
                # the API server of the other tests has its watch cache
                t, away = restart_apiserver(d)
                tap.note(f"kube-apiserver back with its own flags after {away:.1f} s")
        else:
            stop(tap, [ctl])
    finally:
        load.stop()
        keep_logs(env)
        env.close()
        rt.k("delete", "namespace", ons, "--wait=false", "--ignore-not-found", check=False)


def compaction(tap, api, d, env, load, ctl):
    """Sluice paused; changes before and after an etcd compaction; the API
    server restarted without its watch cache, so that the watches resume
    at etcd from history it no longer has (with the cache, a compaction
    never reaches a watcher: a resumed watch is served from the cache, or,
    after a restart, refused because the cache is new). Its flags are put
    back afterwards."""
    failed0 = tap.failed
    m0 = metrics(ctl)
    keys = load.keys
    n_before = n_after = n_gone = len(keys) // 5
    ctl.send_signal(signal.SIGSTOP)
    try:
        load.create_bfrs(keys[:n_before], "before")
        rev = fl.etcd_compact(d)
        tap.note(f"etcd compacted at revision {rev}")
        load.create_bfrs(keys[n_before:n_before + n_after], "after")
        # streaming Jobs deleted by hand after the compaction: only a relist shows it
        gone = keys[n_before + n_after:n_before + n_after + n_gone]
        fl.parallel(lambda k: api.delete(f"/apis/batch/v1/namespaces/{k[0]}/jobs/{k[1]}?propagationPolicy=Background"),
                    gone, 16)
        for k in gone:
            load.restarts[k] += 1
        t, away = restart_apiserver(d, ["--watch-cache=false"])
    finally:
        ctl.send_signal(signal.SIGCONT)
    t_fault = time.time()
    tap.note(f"paused sluice; {n_before} BackfillRequests made before and {n_after} after the compaction, "
             f"{n_gone} streaming Jobs deleted; API away {away:.1f} s; sluice resumed")
    took = check_end(tap, "etcd-compaction", load, t_fault)
    m = note_metrics(tap, "controller", ctl, ("sluice_watch_re",))
    relists = m.get("sluice_watch_relists_total", 0) - m0.get("sluice_watch_relists_total", 0)
    gone410 = [l for l in env.log(ctl).splitlines() if "too old resource version" in l]
    tap.check("etcd-compaction: the resumed watches got 410 Gone (too old resource version) and relisted",
              gone410 and relists >= 3, f"relists {relists}; 410 lines {gone410[:2]}")
    tap.note(f"{len(gone410)} watches got 410, {relists:g} relists; e.g. {gone410[0][:200] if gone410 else ''}")
    errs = [e for e in events(api, env.ns, type_="Warning") if e.get("lastTimestamp", "") >= time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_fault - 1))]
    tap.note(f"Warning Events after resuming: {collections.Counter(e['reason'] for e in errs)}")
    row("etcd compacted under sluice's watches (paused; API server restarted without watch cache)",
        f"410 relist; {n_before + n_after} BackfillRequests ({n_after} made after the compaction) run once and "
        f"completed, {n_gone} deleted Jobs recreated once; converged", "pass" if tap.failed == failed0 else "FAIL",
        f"{took and round(took)} s after resuming ({relists:g} relists)")


# ---- 3: an admission webhook rejecting writes ------------------------------------------------


def scenario_webhook(tap, api, want):
    env = rt.Env("clhook")
    load = Load(env, api)
    counts = collections.Counter()
    state = {"on": True}

    def decide(req):
        what = "job" if req.get("resource", {}).get("resource") == "jobs" else "status"
        counts[what] += 1
        if state["on"] and counts[what] % 5 == 0:
            counts[what + "-denied"] += 1
            return f"faults test: refusing every fifth {'Job create' if what == 'job' else 'stream status update'}"
        return None

    hook = fl.Webhook(env.tmp, decide)
    name = "sluice-faults-" + env.id
    try:
        cfg = hook.configuration(name, env.ns, [
            {"operations": ["CREATE"], "apiGroups": ["batch"], "apiVersions": ["v1"], "resources": ["jobs"]},
            {"operations": ["UPDATE"], "apiGroups": ["streaming.sneaksanddata.com"], "apiVersions": ["v1"],
             "resources": [f"{env.plural}/status"]}])
        api.create("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", cfg)
        # the API server calls it once its configuration is loaded
        probe = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "probe-"},
                 "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
        rt.wait("the webhook called", lambda: (api.request("POST", f"/apis/batch/v1/namespaces/{env.ns}/jobs?dryRun=All",
                                                            probe, ok=None), hook.requests)[1] > 0, 60)
        counts.clear()
        load.write()
        env.push("streams")
        load.watch()
        t0 = time.time()
        ctl = env.start(*env.git_args("--interval", "10s"))
        # rejections while the streams are created (backfill Jobs, then streaming Jobs)
        rt.wait("half of the backfill Jobs", lambda: len(load.finished) >= load.n // 2, 240)
        state["on"] = False
        t_off = time.time()
        tap.note(f"webhook refusing for {t_off - t0:.1f} s: {counts['job-denied']} of {counts['job']} Job creates, "
                 f"{counts['status-denied']} of {counts['status']} status updates refused")
        took = check_end(tap, "webhook", load, t_off)
        msg = "faults test: refusing every fifth"
        ev = [e for e in events(api, env.ns, type_="Warning") if msg in e.get("message", "")]
        tap.check("webhook: the rejections are Warning Events on the streams with the webhook's message", ev,
                  f"Warning Events: {collections.Counter(e['reason'] for e in events(api, env.ns, type_='Warning'))}")
        for e in ev[:2]:
            tap.note(f"  Event {e['involvedObject']['name']} {e['reason']}: {e['message'][:240]}")
        in_status = {k: v for k, v in load.conditions.items() if any(msg in m for r, m in v)}
        tap.check("webhook: and in the streams' status (condition Ready) with the webhook's message", in_status,
                  f"conditions seen: {collections.Counter(r for v in load.conditions.values() for r, _ in v)}")
        tap.note(f"{len(ev)} Warning Events and {len(in_status)} streams' status showed the webhook's message")
        note_metrics(tap, "controller", ctl, ("sluice_reconciles_total", "sluice_api_requests_total{verb=\"create\""))
        row("admission webhook refusing every 5th Job CREATE and stream status UPDATE",
            f"Warning Events ({len(ev)}) and Ready condition ({len(in_status)} streams) with its message; converged, "
            "no duplicate Job, no lost completion", "pass" if not tap.failed else "FAIL",
            f"{took and round(took)} s after it allowed all")
        stop(tap, [ctl])
    finally:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}")
        hook.close()
        load.stop()
        keep_logs(env)
        env.close()


# ---- 4: RBAC revoked in one of two namespaces --------------------------------------------------


def scenario_rbac(tap, api, want):
    import yaml

    env = rt.Env("clrbac")
    nb = env.ns + "-b"
    per_ns = N_STREAMS // 2
    load = Load(env, api, [env.ns, nb], per_ns)
    sa = "sluice-" + env.id
    cluster_names = []
    try:
        rt.k("create", "namespace", nb)
        # the identity: deploy/rbac-namespaced.yaml for a ServiceAccount of this test
        docs = list(yaml.safe_load_all(open(os.path.join(rt.root, "deploy/rbac-namespaced.yaml"))))
        role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "sluice")
        classes = next(d for d in docs if d["kind"] == "ClusterRole")
        subject = [{"kind": "ServiceAccount", "name": sa, "namespace": env.ns}]
        rt.k("-n", env.ns, "create", "serviceaccount", sa)
        objs = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": sa}, "rules": classes["rules"]},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": sa},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
                 "subjects": subject}]
        cluster_names = [("clusterrolebinding", sa), ("clusterrole", sa)]
        binding = {}
        for ns in (env.ns, nb):
            objs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                         "metadata": {"name": "sluice", "namespace": ns}, "rules": role["rules"]})
            binding[ns] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                           "metadata": {"name": "sluice", "namespace": ns},
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sluice"},
                           "subjects": subject}
            objs.append(binding[ns])
        rt.k("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
        token = rt.k("-n", env.ns, "create", "token", sa, "--duration=2h").strip()
        kc = os.path.join(env.tmp, "kubeconfig-rbac")
        cfg = json.loads(rt.k("config", "view", "--raw", "--minify", "-o", "json"))
        cfg["users"] = [{"name": sa, "user": {"token": token}}]
        cfg["contexts"][0]["context"]["user"] = sa
        with open(kc, "w") as f:
            json.dump(cfg, f)
        os.chmod(kc, 0o600)
        # the StreamClass is cluster-scoped: the admin makes it; the source holds templates and streams
        rt.k("apply", "-f", os.path.join(env.work, "class.yaml"))
        os.remove(os.path.join(env.work, "class.yaml"))
        load.write()
        env.push("streams")
        load.watch()
        saved = rt.identity
        rt.identity = kc
        try:
            ctl = env.start(*env.git_args("--interval", "10s", "--prune"), watch=f"{env.ns},{nb}")
        finally:
            rt.identity = saved
        # both namespaces converge first
        t0 = time.time()
        took0 = load.converge(t0)
        tap.note(f"rbac: {load.n} streams in two namespaces converged in {took0:.1f} s")
        uids_b = {j["metadata"]["uid"] for j in load.jobs[nb].objects()}
        streams_b = {s["metadata"]["uid"] for s in load.streams[nb].objects()}
        m0 = metrics(ctl)
        # revoke in B; both namespaces get work to do (a BackfillRequest per stream)
        api.delete(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{nb}/rolebindings/sluice")
        t_revoke = time.time()
        rt.wait("the revocation in force", lambda: "no" in rt.k(
            "auth", "can-i", "create", "jobs", "-n", nb, f"--as=system:serviceaccount:{env.ns}:{sa}", check=False), 30)
        a_keys = [k for k in load.keys if k[0] == env.ns][:per_ns // 2]
        b_keys = [k for k in load.keys if k[0] == nb][:per_ns // 2]
        load.create_bfrs(a_keys, "reload")
        load.create_bfrs(b_keys, "reload")
        # A keeps working
        try:
            a_took = load.converge(time.time(), ns=env.ns)
            tap.check(f"rbac: the other namespace keeps working (its {len(a_keys)} new backfills run and complete)",
                      True)
        except AssertionError as e:
            a_took = None
            tap.check("rbac: the other namespace keeps working", False, str(e))
        time.sleep(max(0, 20 - (time.time() - t_revoke)))  # at least 20 s without the binding
        open_b = load.open_bfrs(nb)
        tap.check("rbac: the revoked namespace's BackfillRequests wait", len(open_b) == len(b_keys),
                  f"{len(open_b)} open")
        # nothing in B deleted or replaced because of the 403s
        jobs_b_now = {j["metadata"]["uid"] for j in load.jobs[nb].objects()}
        streams_b_now = {s["metadata"]["uid"] for s in load.streams[nb].objects()}
        tap.check("rbac: nothing in the revoked namespace pruned or deleted",
                  jobs_b_now == uids_b and streams_b_now == streams_b,
                  f"Jobs gone {len(uids_b - jobs_b_now)}, new {len(jobs_b_now - uids_b)}; "
                  f"streams gone {len(streams_b - streams_b_now)}")
        # Forbidden reported: the sync's Event and status (inventory in A), the metrics
        inv = inventory_status(api, env.ns, "run-" + env.id)
        text = json.dumps(inv)
        tap.check("rbac: the sync's status names the Forbidden namespace", inv.get("result") == "failed" and
                  "forbidden" in text.lower() and nb in text, f"inventory status {text[:400]}")
        ev = [e for e in events(api, env.ns, "SyncFailed", "Warning") if "forbidden" in e.get("message", "").lower()]
        tap.check("rbac: a Warning Event SyncFailed says Forbidden", ev,
                  f"events: {[(e['reason'], e['message'][:120]) for e in events(api, env.ns, type_='Warning')][:5]}")
        for e in ev[:1]:
            tap.note(f"  Event {e['reason']}: {e['message'][:240]}")
        m = note_metrics(tap, "controller", ctl, ("sluice_reconciles_total", "sluice_api_requests_total",
                                                   "sluice_syncs_total"))
        f403 = sum(v - m0.get(k, 0) for k, v in m.items() if k.startswith("sluice_api_requests_total") and 'code="403"' in k)
        tap.check("rbac: the 403s are in the metrics", f403 > 0, f"403s: {f403}")
        # restore: B converges without a restart
        rt.k("apply", "-f", "-", stdin=json.dumps(binding[nb]))
        t_restore = time.time()
        took = check_end(tap, "rbac", load, t_restore)
        tap.check("rbac: the same process (no restart)", ctl.poll() is None)
        # once it may write there again, every stream whose write was refused tells why (a stream
        # whose new BackfillRequest the forbidden watch never showed had no write refused)
        refused = {l.split(f"{nb}/", 1)[1].split(":", 1)[0] for l in env.log(ctl).splitlines()
                   if f" {nb}/s" in l and " warn " in l and "403 Forbidden" in l}
        told = {k[1] for k, v in load.conditions.items() if k[0] == nb and any(
            r == "ReconcileError" and "forbidden" in m for r, m in v)}
        ev = {e["involvedObject"]["name"] for e in events(api, nb, "ReconcileError", "Warning")
              if "forbidden" in e.get("message", "")}
        tap.check("rbac: then each of the revoked namespace's streams whose write was refused records the Forbidden "
                  "(Ready condition, Warning Event)", refused and refused <= told and refused <= ev,
                  f"{len(refused)} streams refused, {len(told)} statuses and {len(ev)} Events told; "
                  f"untold e.g. {sorted(refused - (told & ev))[:3]}")
        tap.note(f"{len(refused)} of the revoked namespace's streams had a write refused")
        for e in [e for e in events(api, nb, "ReconcileError", "Warning")][:1]:
            tap.note(f"  Event {e['involvedObject']['name']} {e['reason']}: {e['message'][:240]}")
        row("RBAC: RoleBinding of one of two watched namespaces deleted, restored",
            "other namespace kept working; revoked one: nothing pruned/deleted, Forbidden in the sync's status and "
            "Event, 403s in metrics; converged after restoring without a restart",
            "pass" if not tap.failed else "FAIL",
            f"{took and round(took)} s after restoring (revoked {t_restore - t_revoke:.0f} s; other namespace's "
            f"backfills done in {a_took and round(a_took)} s)")
        stop(tap, [ctl])
    finally:
        load.stop()
        keep_logs(env)
        env.close()
        rt.k("delete", "namespace", nb, "--wait=false", "--ignore-not-found", check=False)
        for kind, n in cluster_names:
            rt.k("delete", kind, n, "--ignore-not-found", check=False)


SCENARIOS = [("apiserver-restart", scenario_apiserver), ("etcd-compaction", None),
             ("webhook", scenario_webhook), ("rbac", scenario_rbac)]


def main():
    tap = fl.Tap()
    if not rt.admin or not os.access(rt.admin, os.R_OK):
        print("1..0 # SKIP no cluster: set SLUICE_TEST_KUBECONFIG or run tests/cluster/up")
        sys.exit(0)
    want = sys.argv[1:] or [n for n, _ in SCENARIOS]
    api = fl.Api(rt.admin)
    for name, fn in SCENARIOS:
        # etcd-compaction goes on from the streams of apiserver-restart
        if not fn or (name not in want and not (name == "apiserver-restart" and "etcd-compaction" in want)):
            continue
        t0 = time.time()
        try:
            fn(tap, api, want)
        except Skip as e:
            tap.result(True, name, skip=str(e))
        except Exception:  # noqa: BLE001 (a scenario's failure, reported in TAP)
            import traceback
            tap.result(False, name, traceback.format_exc())
        tap.note(f"{name}: {time.time() - t0:.0f} s of wall time")
    for r in ROWS:
        tap.note("| " + " | ".join(r) + " |")
    tap.end()


if __name__ == "__main__":
    main()
