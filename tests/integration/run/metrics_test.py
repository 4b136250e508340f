#!/usr/bin/env python3
"""/metrics of a real `sluice run` (TAP): the controller on, a directory
source with a few objects and one stream, against tests/cluster. The stream
backfills, then runs; the metrics the docs promise are there with the values
that run gives, the families are exactly those of docs/operations.md, and
`promtool check metrics` has nothing to say about the output.
Skipped without a cluster; the promtool check is skipped (with the reason)
when tests/tools/build has not built promtool.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_test as rt  # noqa: E402 (the helpers of the run suite)

PROMTOOL = os.environ.get("SLUICE_PROMTOOL") or os.path.join(rt.build, "tools/bin/promtool")


def documented():
    """{name: type} from the metrics table of docs/operations.md."""
    out = {}
    with open(os.path.join(rt.root, "docs/operations.md")) as f:
        for line in f:
            m = re.match(r"^\| `(sluice_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


def scrape(p):
    code, text = rt.http(p.port, "/metrics")
    assert code == 200, code
    return text


def objects(env, d):
    """The StreamClass and templates of Env, three ConfigMaps, one stream
    with a backfill template."""
    for f in ("class.yaml", "templates.yaml"):
        shutil.copy(os.path.join(env.work, f), os.path.join(d, f))
    with open(os.path.join(d, "config.yaml"), "w") as f:
        f.write("---\n".join(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m-{i}\n  namespace: {env.ns}\n"
                             f"data:\n  i: \"{i}\"\n" for i in range(3)))
    with open(os.path.join(d, "stream.yaml"), "w") as f:
        f.write(env.stream("m1", backfill=True))


def test_metrics(env, tap):
    d = os.path.join(env.tmp, "dir")
    os.makedirs(d)
    objects(env, d)
    source = "metrics-" + env.id
    p = env.start("--dir", d, "--inventory-namespace", env.ns, "--source-id", source, "--interval", "2s")
    cls = env.plural

    # while the stream backfills: its start is exported for its class
    rt.wait("Job m1-backfill", lambda: rt.job_exists(env.ns, "m1-backfill"), 90)
    series = f'sluice_backfill_oldest_start_timestamp_seconds{{stream_class="{cls}"}}'
    start = rt.wait("the backfill's start in /metrics", lambda: rt.parse_metrics(scrape(p))[0].get(series), 30)
    assert time.time() - 300 < start <= time.time() + 5, start
    s, _ = rt.parse_metrics(scrape(p))
    assert s.get(f'sluice_streams{{stream_class="{cls}",phase="Backfilling"}}') == 1, s
    rt.job_finish(env.ns, "m1-backfill")
    rt.wait("Job m1 (streaming)", lambda: rt.job_exists(env.ns, "m1"), 60)
    rt.wait("m1 Running", lambda: rt.parse_metrics(scrape(p))[0].get(
        f'sluice_streams{{stream_class="{cls}",phase="Running"}}') == 1, 60)
    rt.wait("a second sync", lambda: rt.parse_metrics(scrape(p))[0].get(
        f'sluice_syncs_total{{source="{source}",result="ok"}}', 0) >= 2, 30)
    text = scrape(p)
    s, types = rt.parse_metrics(text)
    tap("the stream's life in the metrics", check_values, s, source, cls, text)
    tap("the families are those of docs/operations.md", check_documented, types)
    tap("promtool check metrics", check_promtool, text)
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0


def check_values(s, source, cls, text):
    src = f'source="{source}"'
    # 2 templates, the class, 3 ConfigMaps, the stream
    assert s.get(f'sluice_sync_objects_total{{{src},outcome="applied"}}', 0) >= 7, text
    assert s.get(f'sluice_sync_objects_total{{{src},outcome="failed"}}') == 0
    assert s.get(f'sluice_sync_objects_total{{{src},outcome="pruned"}}') == 0
    assert s.get(f'sluice_sync_duration_seconds_count{{{src}}}', 0) >= 2
    assert s.get(f'sluice_sync_duration_seconds_bucket{{{src},le="+Inf"}}') == \
        s.get(f'sluice_sync_duration_seconds_count{{{src}}}')
    now = time.time()
    ok = s.get(f'sluice_sync_last_success_timestamp_seconds{{{src}}}', 0)
    assert now - 120 < ok <= now + 1, ok
    assert s.get(f'sluice_sync_last_end_timestamp_seconds{{{src}}}') >= ok
    revs = [k for k in s if k.startswith(f'sluice_sync_revision_info{{{src},revision="')]
    assert len(revs) == 1 and s[revs[0]] == 1, revs
    assert s.get(f'sluice_source_checks_total{{{src},result="ok"}}', 0) >= 1
    assert s.get(f'sluice_source_last_success_timestamp_seconds{{{src}}}', 0) > now - 120
    assert s.get(f'sluice_streams{{stream_class="{cls}",phase="Running"}}') == 1
    assert s.get(f'sluice_streams{{stream_class="{cls}",phase="Backfilling"}}') == 0
    assert f'sluice_backfill_oldest_start_timestamp_seconds{{stream_class="{cls}"}}' not in s, text
    assert s.get('sluice_jobs_created_total{type="backfill"}', 0) >= 1
    assert s.get('sluice_jobs_created_total{type="streaming"}', 0) >= 1
    assert s.get("sluice_backfill_requests_completed_total", 0) >= 1
    n = s.get("sluice_reconcile_duration_seconds_count", 0)
    assert n >= 3 and n == sum(v for k, v in s.items() if k.startswith("sluice_reconciles_total{")), text
    assert s.get('sluice_reconcile_duration_seconds_bucket{le="+Inf"}') == n
    assert s.get('sluice_api_requests_total{verb="create",code="201"}', 0) >= 3
    assert s.get("sluice_workqueue_depth") is not None
    assert s.get("sluice_leader") == 1
    assert s.get('sluice_stream_classes{state="ready"}', 0) >= 1


def check_documented(types):
    docs = documented()
    assert len(docs) >= 30, f"the metrics table of docs/operations.md: {sorted(docs)}"
    missing = sorted(set(docs) - set(types))
    extra = sorted(set(types) - set(docs))
    assert not missing and not extra, f"documented but not exported: {missing}; exported but not documented: {extra}"
    wrong = {n: (types[n], docs[n]) for n in docs if types[n] != docs[n]}
    assert not wrong, f"types (exported, documented): {wrong}"


class Skip(Exception):
    pass


def check_promtool(text):
    if not os.access(PROMTOOL, os.X_OK):
        raise Skip(f"promtool not built ({PROMTOOL}): run tests/tools/build or make check")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    out = (p.stdout + p.stderr).strip()
    # promtool prints one line per lint problem; anything at all is a failure
    assert p.returncode == 0 and not out, f"promtool check metrics (exit {p.returncode}):\n{out}"


def main():
    if not rt.admin or not os.access(rt.admin, os.R_OK):
        print("1..0 # SKIP no cluster: set SLUICE_TEST_KUBECONFIG or run tests/cluster/up")
        sys.exit(0)
    results = []

    def tap(name, fn, *args):
        try:
            fn(*args)
            results.append(("ok", name, ""))
        except Skip as e:
            results.append(("ok", name, f" # SKIP {e}"))
        except Exception as e:  # noqa: BLE001 (reported in TAP)
            results.append(("not ok", name, "\n" + "\n".join("# " + l for l in f"{e}".splitlines()[:60])))

    env = rt.Env("metrics")
    failed = None
    try:
        test_metrics(env, tap)
    except Exception as e:  # noqa: BLE001
        failed = e
        for n, p in enumerate(env.procs):
            print(f"# --- log of sluice #{n} (last lines)")
            for line in env.log(p).splitlines()[-25:]:
                print("# " + line)
    finally:
        env.close()
    if failed:
        results.append(("not ok", "run", "\n" + "\n".join(
            "# " + l for l in f"{type(failed).__name__}: {failed}".splitlines()[:40])))
    print(f"1..{len(results)}")
    for i, (st, name, extra) in enumerate(results, 1):
        print(f"{st} {i} - {name}{extra}")
    sys.exit(1 if any(r[0] == "not ok" for r in results) else 0)


if __name__ == "__main__":
    main()
