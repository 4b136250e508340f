#!/usr/bin/env python3
"""Integration tests of `sluice status` and of the progress line of `sluice
sync` and `sluice diff`, against the real API server (TAP).

status: two fresh namespaces, a stream kind of their own (crds/mockstream.yaml
under a random name), a tree synced with `sluice sync --once --dir` (so an
inventory ConfigMap holds a real sync status), streams made real by `sluice
run --no-sync` (a Running one, a Backfilling one with its initial
BackfillRequest, a Suspended one with a pending request) plus a Failed one
whose status the test writes. The tables are read by their header offsets:
columns, alignment and values; then -o wide, -o json, -o yaml, -n, -A, the
context's namespace, --no-headers, colour on a terminal only (and never with
NO_COLOR), `kubectl sluice status` as a plugin, and --watch.

progress: 300 ConfigMaps applied by `sluice sync --once` and dry-run by
`sluice diff` with stderr on a pseudo-terminal: the line is drawn with \\r
and cleared; with stderr piped, the output is exactly the lines sync and
diff always wrote.

Usage: status_test.py [NAME...]. Without a cluster: "1..0 # SKIP", exit 0.
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import yaml

root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../../.."))
build = os.environ.get("SLUICE_BUILD_ROOT", os.path.join(root, "build"))
sluice = os.environ.get("SLUICE_BIN", os.path.join(build, "src/cmd/sluice"))
admin = os.environ.get("SLUICE_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")
restricted = os.environ.get("SLUICE_TEST_KUBECONFIG_RESTRICTED")
kubectl = os.environ.get("SLUICE_KUBECTL") or os.path.join(build, "cluster/bin/kubectl")
if not os.access(kubectl, os.X_OK):
    kubectl = os.path.join(root, "build/cluster/bin/kubectl")
identity = restricted if restricted and os.access(restricted, os.R_OK) else admin
ESC = "\033"


def k(*args, stdin=None, check=True):
    p = subprocess.run([kubectl, "--kubeconfig", admin, *args], input=stdin, capture_output=True, text=True,
                       timeout=120)
    if check and p.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def clean_env(**extra):
    e = {n: v for n, v in os.environ.items()
         if not n.startswith("SLUICE_") or n in ("SLUICE_SOURCE_ROOT", "SLUICE_BUILD_ROOT", "SLUICE_BIN")}
    e.pop("POD_NAMESPACE", None)
    e.pop("NO_COLOR", None)
    e.update(extra)
    return e


def run(*args, env=None, timeout=120):
    """sluice with stdout and stderr piped: (exit code, stdout, stderr)."""
    p = subprocess.run([sluice, *args], capture_output=True, text=True, timeout=timeout, env=env or clean_env())
    return p.returncode, p.stdout, p.stderr


def run_pty(args, on_pty="stdout", env=None, timeout=180):
    """sluice with stdout or stderr on a pseudo-terminal (the other piped):
    (exit code, what the terminal got, what the pipe got)."""
    master, slave = pty.openpty()
    kw = {"stdout": slave, "stderr": subprocess.PIPE} if on_pty == "stdout" else \
         {"stdout": subprocess.PIPE, "stderr": slave}
    p = subprocess.Popen(args, env=env or clean_env(), **kw)
    os.close(slave)
    other = p.stderr if on_pty == "stdout" else p.stdout
    got, piped = b"", b""
    end = time.time() + timeout
    fds = [master, other.fileno()]
    while fds and time.time() < end:
        ready, _, _ = select.select(fds, [], [], 0.5)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                chunk = b""
            if not chunk:
                fds.remove(fd)
            elif fd == master:
                got += chunk
            else:
                piped += chunk
    p.wait(timeout=max(1, end - time.time()))
    os.close(master)
    other.close()
    return p.returncode, got.decode(), piped.decode()


def wait(what, fn, timeout):
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def tables(text):
    """The tables of a `sluice status` output: lists of dicts keyed by
    header. Columns start where the header words start (a header may hold
    one space, columns are three apart); every row must have its cells
    exactly there: that is the alignment."""
    out = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
        names = [m.group(0) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
        rows = []
        for line in lines[1:]:
            cells = {}
            assert len(line) >= starts[-1], f"a short row: {line!r}"
            for i, (s, n) in enumerate(zip(starts, names)):
                e = starts[i + 1] if i + 1 < len(starts) else len(line)
                cell = line[s:e]
                assert s == 0 or line[s - 1] == " ", f"column {n} not aligned in {line!r}"
                assert not cell.startswith(" "), f"column {n} not aligned in {line!r}"
                if i + 1 < len(starts):
                    assert cell.endswith("   "), f"column {n} runs into the next in {line!r}"
                cells[n] = cell.rstrip()
            rows.append(cells)
        out.append((names, rows))
    return out


def row(rows, **want):
    got = [r for r in rows if all(r.get(c) == v for c, v in want.items())]
    assert len(got) == 1, f"{len(got)} rows with {want} in {rows}"
    return got[0]


class Env:
    """Two namespaces, a stream kind and a tree of manifests."""

    def __init__(self, name):
        self.id = uuid.uuid4().hex[:6]
        self.a, self.b = f"st-{name}-{self.id}-a", f"st-{name}-{self.id}-b"
        self.kind, self.plural = f"St{self.id}Stream", f"st{self.id}streams"
        self.source = f"st-{self.id}"
        self.tmp = tempfile.mkdtemp(prefix=f"sluice-status-{name}-")
        self.tree = os.path.join(self.tmp, "tree")
        self.procs = []
        crd = open(os.path.join(root, "crds/mockstream.yaml")).read()
        crd = crd.replace("mockstreams.streaming", f"{self.plural}.streaming").replace(
            "MockStreamList", f"{self.kind}List").replace("kind: MockStream", f"kind: {self.kind}")
        crd = crd.replace("plural: mockstreams", f"plural: {self.plural}").replace(
            "singular: mockstream", f"singular: st{self.id}stream").replace("shortNames: [ms]", "shortNames: []")
        k("apply", "-f", os.path.join(root, "crds"))
        k("apply", "-f", "-", stdin=crd)
        k("wait", "--for=condition=Established", f"crd/{self.plural}.streaming.sneaksanddata.com", "--timeout=60s")
        k("create", "namespace", self.a)
        k("create", "namespace", self.b)

    def write(self, path, text):
        p = os.path.join(self.tree, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def stream(self, ns, name, suspended=False, backfill=False):
        return f"""apiVersion: streaming.sneaksanddata.com/v1
kind: {self.kind}
metadata:
  name: {name}
  namespace: {ns}
spec:
  suspended: {"true" if suspended else "false"}
  jobTemplateRef:
    name: streaming
{"  backfillJobTemplateRef:" + chr(10) + "    name: backfill" + chr(10) if backfill else ""}  source: generator://{name}
"""

    def template(self, ns, name):
        return f"""apiVersion: streaming.sneaksanddata.com/v1
kind: StreamingJobTemplate
metadata:
  name: {name}
  namespace: {ns}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: {name}
          image: busybox:1.36
"""

    def sync_args(self, *extra):
        return ["--once", "--dir", self.tree, "--kubeconfig", admin, "--inventory-namespace", self.a,
                "--source-id", self.source, *extra]

    def start_controller(self):
        log = open(os.path.join(self.tmp, "controller.log"), "w+")
        p = subprocess.Popen([sluice, "run", "--no-sync", "--kubeconfig", identity, "--watch-namespace",
                              f"{self.a},{self.b}", "--listen", "off", "--log-level", "debug"],
                             stdout=log, stderr=subprocess.STDOUT, env=clean_env())
        p.logf = log
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in (self.a, self.b):
            k("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
        k("delete", "streamclass", self.plural, "--ignore-not-found", check=False)
        k("delete", "crd", f"{self.plural}.streaming.sneaksanddata.com", "--wait=false", "--ignore-not-found",
          check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def phase(env, ns, name):
    return k("-n", ns, "get", env.plural, name, "-o", "jsonpath={.status.phase}", check=False)


def make_streams(env):
    """The tree synced, the controller run until every stream settled, then
    stopped; a Failed stream with a status written by hand."""
    env.write("class.yaml", f"""apiVersion: streaming.sneaksanddata.com/v1
kind: StreamClass
metadata:
  name: {env.plural}
spec:
  apiGroupRef: streaming.sneaksanddata.com
  apiVersion: v1
  kindRef: {env.kind}
  pluralName: {env.plural}
  secretRefs: []
""")
    env.write("templates.yaml", "---\n".join([env.template(env.a, "streaming"), env.template(env.a, "backfill"),
                                               env.template(env.b, "streaming")]))
    env.write("streams.yaml", "---\n".join([env.stream(env.a, "run1"), env.stream(env.a, "bf1", backfill=True),
                                             env.stream(env.a, "sus1", suspended=True, backfill=True),
                                             env.stream(env.b, "other1")]))
    env.write("backfills.yaml", f"""apiVersion: streaming.sneaksanddata.com/v1
kind: BackfillRequest
metadata:
  name: sus1-reload
  namespace: {env.a}
spec:
  streamClass: {env.plural}
  streamId: sus1
  completed: false
""")
    code, out, err = run("sync", *env.sync_args())
    assert code == 0, f"sync exit {code}: {err}"
    ctl = env.start_controller()
    for ns, name, want in ((env.a, "run1", "Running"), (env.a, "bf1", "Backfilling"), (env.a, "sus1", "Suspended"),
                           (env.b, "other1", "Running")):
        wait(f"{name} {want}", lambda: phase(env, ns, name) == want, 60)
    ctl.send_signal(signal.SIGTERM)
    assert ctl.wait(30) == 0
    k("apply", "-f", "-", stdin=env.stream(env.a, "bad1"))
    status = {"status": {"phase": "Failed", "conditions": [
        {"type": "Ready", "status": "False", "reason": "JobFailed",
         "message": "job bad1 failed: BackoffLimitExceeded"}]}}
    k("-n", env.a, "patch", env.plural, "bad1", "--subresource=status", "--type=merge", "-p", json.dumps(status))


# ---- tests ------------------------------------------------------------------


def test_status(env):
    """The tables, their columns and values, and every output format."""
    make_streams(env)
    code, out, err = run("status", "-n", env.a, "--kubeconfig", admin)
    assert code == 0, f"exit {code}: {err}"
    print("# sluice status -n " + env.a)
    for line in out.splitlines():
        print("#   " + line)
    assert ESC not in out, "colour on a pipe"
    (src_cols, srcs), (st_cols, streams) = tables(out)
    assert src_cols == ["SOURCE", "REVISION", "LAST SYNC", "RESULT", "APPLIED", "PRUNED", "FAILED"], src_cols
    s = row(srcs, SOURCE=env.source)
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", s["REVISION"]), s
    assert re.fullmatch(r"[0-9]+s|[0-9]+m[0-9]*s?", s["LAST SYNC"]), s
    # the class, three templates, four streams, one BackfillRequest
    assert (s["RESULT"], s["APPLIED"], s["PRUNED"], s["FAILED"]) == ("ok", "9", "0", "0"), s
    assert st_cols == ["KIND", "NAME", "PHASE", "JOB", "BACKFILL", "AGE", "MESSAGE"], st_cols
    assert [r["NAME"] for r in streams if r["KIND"] == env.kind] == ["bad1", "bf1", "run1", "sus1"], streams
    r = row(streams, NAME="run1", KIND=env.kind)
    assert (r["PHASE"], r["JOB"], r["BACKFILL"]) == ("Running", "job/run1", "<none>"), r
    assert re.fullmatch(r"[0-9]+s|[0-9]+m[0-9]*s?", r["AGE"]), r
    r = row(streams, NAME="bf1", KIND=env.kind)
    assert (r["PHASE"], r["JOB"]) == ("Backfilling", "job/bf1-backfill"), r
    assert r["BACKFILL"].startswith("bf1-initial-backfill-"), r
    r = row(streams, NAME="sus1", KIND=env.kind)
    assert (r["PHASE"], r["JOB"], r["BACKFILL"]) == ("Suspended", "<none>", "sus1-reload"), r
    r = row(streams, NAME="bad1", KIND=env.kind)
    assert (r["PHASE"], r["JOB"], r["MESSAGE"]) == ("Failed", "<none>", "job bad1 failed: BackoffLimitExceeded"), r
    assert r["MESSAGE"] and row(streams, NAME="run1")["MESSAGE"], "the Ready condition's message"

    # -o wide: more columns, the whole revision
    code, out, err = run("status", "-n", env.a, "-o", "wide", "--kubeconfig", admin)
    assert code == 0, err
    (src_cols, srcs), (st_cols, streams) = tables(out)
    assert src_cols[-4:] == ["UNCHANGED", "OBJECTS", "DURATION", "MESSAGE"], src_cols
    s = row(srcs, SOURCE=env.source)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", s["REVISION"]) and s["OBJECTS"] == "9", s
    assert st_cols == ["KIND", "NAME", "CLASS", "PHASE", "READY", "JOB", "JOB STATE", "BACKFILL", "PENDING", "AGE",
                       "MESSAGE"], st_cols
    r = row(streams, NAME="bf1")
    assert (r["CLASS"], r["READY"], r["JOB STATE"], r["PENDING"]) == (env.plural, "False", "Active", "1"), r
    r = row(streams, NAME="run1")
    assert (r["READY"], r["JOB STATE"], r["PENDING"]) == ("True", "Active", "0"), r

    # -o json: the model
    code, out, err = run("status", "-n", env.a, "-o", "json", "--kubeconfig", admin)
    assert code == 0, err
    m = json.loads(out)
    assert set(m) == {"sources", "streams", "warnings"}, m.keys()
    src = [x for x in m["sources"] if x["name"] == env.source][0]
    assert src["configMap"] == f"sluice-inventory-{env.source}" and src["namespace"] == env.a, src
    assert (src["result"], src["applied"], src["objects"], src["errorCount"], src["errors"]) == ("ok", 9, 9, 0, []), src
    assert src["revision"].startswith("sha256:") and src["end"].endswith("Z"), src
    st = {x["name"]: x for x in m["streams"] if x["kind"] == env.kind}
    assert st["run1"]["job"] == {"kind": "Job", "name": "run1", "state": "Active"}, st["run1"]
    assert st["run1"]["backfillRequest"] is None and st["run1"]["ready"]["status"] == "True", st["run1"]
    assert st["bf1"]["backfillRequest"]["state"] == "Running", st["bf1"]
    assert st["sus1"]["backfillRequest"] == {"name": "sus1-reload", "state": "Pending"}, st["sus1"]
    assert st["sus1"]["suspended"] is True and st["sus1"]["pendingBackfills"] == 1, st["sus1"]
    assert st["bad1"]["phase"] == "Failed" and st["bad1"]["ready"]["reason"] == "JobFailed", st["bad1"]
    assert st["bad1"]["apiVersion"] == "streaming.sneaksanddata.com/v1" and st["bad1"]["streamClass"] == env.plural
    assert out.startswith("{\n    \""), "indented as kubectl does"

    # -o yaml: the same model
    code, out, err = run("status", "-n", env.a, "-o", "yaml", "--kubeconfig", admin)
    assert code == 0, err
    assert yaml.safe_load(out) == m or yaml.safe_load(out)["streams"] == m["streams"], out

    # -A: a NAMESPACE column, both namespaces; the context's namespace by default
    code, out, err = run("status", "-A", "--kubeconfig", admin)
    assert code == 0, err
    (src_cols, srcs), (st_cols, streams) = tables(out)
    assert src_cols[0] == "NAMESPACE" and st_cols[:3] == ["NAMESPACE", "KIND", "NAME"], (src_cols, st_cols)
    row(srcs, NAMESPACE=env.a, SOURCE=env.source)
    assert [(r["NAMESPACE"], r["NAME"]) for r in streams if r["KIND"] == env.kind] == [
        (env.a, "bad1"), (env.a, "bf1"), (env.a, "run1"), (env.a, "sus1"), (env.b, "other1")], streams
    kc = os.path.join(env.tmp, "kubeconfig")
    shutil.copy(admin, kc)
    subprocess.run([kubectl, "--kubeconfig", kc, "config", "set-context", "--current", f"--namespace={env.b}"],
                   check=True, capture_output=True)
    code, out, err = run("status", "--kubeconfig", kc)
    assert code == 0, err
    [(st_cols, streams)] = tables(out)  # no source in that namespace: one table
    assert st_cols[0] == "KIND" and [r["NAME"] for r in streams] == ["other1"], out
    code, out, err = run("status", "--no-headers", "-n", env.b, "--kubeconfig", admin)
    assert code == 0 and out.startswith(env.kind) and "KIND" not in out, out
    code, out, err = run("status", "-n", env.a + "-none", "--kubeconfig", admin)
    assert code == 0 and out == "" and "No resources found in " + env.a + "-none namespace." in err, (out, err)
    code, out, err = run("status", "-o", "xml", "--kubeconfig", admin)
    assert code == 2 and "--output" in err, err


def test_colour_plugin_watch(env):
    """Colours on a terminal only, never with NO_COLOR; the kubectl plugin;
    --watch prints again when a stream changes."""
    make_streams(env)
    args = [sluice, "status", "-n", env.a, "--kubeconfig", admin]
    code, tty, _ = run_pty(args)
    assert code == 0, tty
    assert f"{ESC}[31mFailed{ESC}[0m" in tty and f"{ESC}[32mRunning{ESC}[0m" in tty, repr(tty)
    assert f"{ESC}[32mok{ESC}[0m" in tty, repr(tty)
    plain = re.sub(r"\033\[[0-9;]*m", "", tty).replace("\r\n", "\n")
    (_, _), (_, streams) = tables(plain)  # colour keeps the columns aligned
    assert row(streams, NAME="bad1")["PHASE"] == "Failed"
    code, tty, _ = run_pty(args, env=clean_env(NO_COLOR="1"))
    assert code == 0 and ESC not in tty, repr(tty)

    # kubectl finds kubectl-sluice on PATH and hands it the words after "sluice"
    plugin_dir = os.path.dirname(sluice)
    assert os.access(os.path.join(plugin_dir, "kubectl-sluice"), os.X_OK), "kubectl-sluice next to sluice"
    e = clean_env(PATH=plugin_dir + os.pathsep + os.environ.get("PATH", ""), KUBECONFIG=admin)
    p = subprocess.run([kubectl, "sluice", "status", "-n", env.a], capture_output=True, text=True, timeout=60, env=e)
    assert p.returncode == 0, p.stderr
    (_, srcs), (_, streams) = tables(p.stdout)
    row(srcs, SOURCE=env.source)
    assert row(streams, NAME="sus1")["BACKFILL"] == "sus1-reload"
    p = subprocess.run([kubectl, "sluice", "--help"], capture_output=True, text=True, timeout=60, env=e)
    assert p.returncode == 0 and p.stdout.startswith("usage: kubectl sluice COMMAND"), p.stdout

    # --watch: a change to a stream prints the tables again
    w = subprocess.Popen([sluice, "status", "-n", env.a, "--kubeconfig", admin, "--watch", "--interval", "300ms"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        first = w.stdout.readline()
        assert first.startswith("SOURCE"), first
        status = {"status": {"phase": "Pending", "conditions": [
            {"type": "Ready", "status": "False", "reason": "Restarting", "message": "restarting after the test"}]}}
        k("-n", env.a, "patch", env.plural, "bad1", "--subresource=status", "--type=merge", "-p", json.dumps(status))
        seen = first
        end = time.time() + 30
        while "restarting after the test" not in seen:
            assert time.time() < end, seen
            seen += w.stdout.readline()
        assert seen.count("\nSOURCE") >= 1, seen  # printed again, whole
    finally:
        w.send_signal(signal.SIGINT)
        assert w.wait(10) == 0


def big_tree(env, n, value):
    for f in range(3):
        docs = [f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {env.a}\ndata:\n"
                f"  v: \"{value}\"\n" for i in range(f * n // 3, (f + 1) * n // 3)]
        env.write(f"many-{f}.yaml", "---\n".join(docs))


SYNC_LINE = re.compile(r"^.*sync sha256:[0-9a-f]{64}: ok: applied ([0-9]+), unchanged ([0-9]+), pruned 0, problems 0, "
                       r"prune skipped 0, [0-9]+ write\(s\), [0-9]+ ms$")
DIFF_LINE = re.compile(r"^.*diff sha256:[0-9a-f]{64}: ([0-9]+) object\(s\) would change, ([0-9]+) unchanged "
                       r"\([0-9]+ ms\)$")


def test_progress(env):
    """A progress line on a terminal for a large source; piped, nothing but
    the lines sync and diff always wrote."""
    n = 300
    big_tree(env, n, "one")
    code, term, out = run_pty([sluice, "sync", *env.sync_args()], on_pty="stderr")
    assert code == 0, term
    assert out == "", out
    draws = re.findall(r"\rsluice sync: ([0-9]+)/300 objects, ([0-9]+) applied, [0-9]+ unchanged, 0 failed, "
                       r"[0-9]+\.[0-9]s\033\[K", term)
    assert draws, repr(term[:2000])
    done = [int(d) for d, _ in draws]
    assert done == sorted(done) and done[-1] <= n, f"counts only grow: {done}"
    assert "\r\033[K" in term and term.index("\r\033[K") > term.index("\rsluice sync:"), "the line is cleared"
    tail = term[term.rindex("\r\033[K") + 4:].strip().splitlines()
    assert len(tail) == 1 and SYNC_LINE.match(tail[0]), repr(term[-600:])
    print(f"# {len(draws)} progress line(s) drawn, the last: {draws[-1]}")

    # piped: one line, no carriage return, no escape sequence
    big_tree(env, n, "two")
    code, out, err = run("sync", *env.sync_args())
    assert code == 0, err
    assert out == "" and "\r" not in err and ESC not in err, repr(err)
    lines = err.splitlines()
    assert len(lines) == 1 and SYNC_LINE.match(lines[0]).group(1) == str(n), lines

    # diff: the progress line on stderr, stdout the same diff as piped
    big_tree(env, n, "three")
    code, term, diff_tty = run_pty([sluice, "diff", *env.sync_args()[1:]], on_pty="stderr")
    assert code == 1, term
    assert re.search(r"\rsluice diff: [0-9]+/300 objects, [0-9]+ would change, [0-9]+ unchanged, 0 failed", term), \
        repr(term[:2000])
    tail = term[term.rindex("\r\033[K") + 4:].strip().splitlines()
    assert len(tail) == 1 and DIFF_LINE.match(tail[0]), tail
    code, diff_pipe, err = run("diff", *env.sync_args()[1:])
    assert code == 1 and "\r" not in err and ESC not in err, repr(err)
    lines = err.splitlines()
    assert len(lines) == 1 and DIFF_LINE.match(lines[0]).group(1) == str(n), lines
    assert diff_tty == diff_pipe and diff_pipe.count("+++ ") == n, "the diff does not depend on the terminal"

    # a small source on a terminal: no line at all (it would only flicker)
    for f in os.listdir(env.tree):
        os.remove(os.path.join(env.tree, f))
    env.write("one.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small\n  namespace: {env.a}\n")
    code, term, _ = run_pty([sluice, "sync", *env.sync_args("--source-id", "small-" + env.id)], on_pty="stderr")
    # (the terminal itself turns "\n" into "\r\n")
    assert code == 0 and not re.search("\r(?!\n)", term) and "objects," not in term, repr(term)


TESTS = [("status", test_status), ("colour-plugin-watch", test_colour_plugin_watch), ("progress", test_progress)]


def main():
    if not admin or not os.access(admin, os.R_OK):
        print("1..0 # SKIP no cluster: set SLUICE_TEST_KUBECONFIG or run tests/cluster/up")
        sys.exit(0)  # meson reads the TAP plan "1..0 # SKIP" as skipped
    want = sys.argv[1:]
    selected = [t for t in TESTS if not want or t[0] in want]
    print(f"1..{len(selected)}", flush=True)
    failed = 0
    for i, (name, fn) in enumerate(selected, 1):
        env = None
        try:
            env = Env(name[:8].rstrip("-"))
            fn(env)
            print(f"ok {i} - {name}", flush=True)
        except Exception as e:  # noqa: BLE001 (a test's failure, reported in TAP)
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for line in f"{type(e).__name__}: {e}".splitlines()[:60]:
                print("# " + line)
            for p in env.procs if env else []:
                p.logf.flush()
                with open(p.logf.name) as f:
                    for line in f.read().splitlines()[-25:]:
                        print("# " + line)
        finally:
            if env:
                env.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
