#!/usr/bin/env python3
"""deploy/monitoring/ checked without a cluster (TAP): the PrometheusRule is
rules.yaml's groups; the alerts, their unit tests and the Grafana dashboard
name only metrics sluice exports (the table of docs/operations.md, which the
run suite holds against a live /metrics); and, with promtool (built by
tests/tools/build into build/tools/bin), `promtool check rules` passes on
both rule files without a word of lint, the dashboard's expressions parse,
and `promtool test rules` passes tests/monitoring/rules-test.yaml.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
build = os.environ.get("SLUICE_BUILD_ROOT", os.path.join(root, "build"))
PROMTOOL = os.environ.get("SLUICE_PROMTOOL") or os.path.join(build, "tools/bin/promtool")
MON = os.path.join(root, "deploy/monitoring")
RULES = os.path.join(MON, "rules.yaml")
RULE_TESTS = os.path.join(root, "tests/monitoring/rules-test.yaml")


class Skip(Exception):
    pass


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def documented():
    """{name: type} from the metrics table of docs/operations.md."""
    out = {}
    with open(os.path.join(root, "docs/operations.md")) as f:
        for line in f:
            m = re.match(r"^\| `(sluice_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


def exported_series():
    """Every series name sluice exports: histograms with their suffixes."""
    names = set()
    for n, t in documented().items():
        names.add(n)
        if t == "histogram":
            names |= {n + "_bucket", n + "_sum", n + "_count"}
    return names


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression reads: identifiers left once
    strings, label matchers, ranges, grouping clauses and Grafana variables
    are taken out, that are not functions, keywords or parts of numbers."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        w = m.group(0)
        before = e[m.start() - 1] if m.start() else ""
        if e[m.end():].lstrip().startswith("(") or w.lower() in KEYWORDS or before.isdigit() or before == ".":
            continue
        names.add(w)
    return names


def rule_exprs(groups):
    return [(f"{r.get('alert') or r.get('record')}", r["expr"]) for g in groups for r in g["rules"]]


def dashboard_exprs():
    """(where, PromQL) of every panel target and template variable query."""
    with open(os.path.join(MON, "dashboard.json")) as f:
        d = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((f"panel {p.get('title')!r}", t["expr"]))
            walk(p.get("panels", []))

    walk(d["panels"])
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") != "query" or not q:
            continue
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q)
        out.append((f"variable {v['name']}", m.group(1) if m else q))
    return out


# ---- the checks --------------------------------------------------------------


def check_prometheusrule_agrees():
    pr = load_yaml(os.path.join(MON, "prometheusrule.yaml"))
    assert pr["apiVersion"] == "monitoring.coreos.com/v1" and pr["kind"] == "PrometheusRule", pr.get("kind")
    assert pr["spec"]["groups"] == load_yaml(RULES)["groups"], \
        "prometheusrule.yaml differs from rules.yaml: run deploy/monitoring/generate"
    p = subprocess.run([sys.executable, os.path.join(MON, "generate"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, "prometheusrule.yaml is not what deploy/monitoring/generate writes: run it"


def check_alerts():
    alerts = {r["alert"] for g in load_yaml(RULES)["groups"] for r in g["rules"] if "alert" in r}
    want = {"SluiceSyncFailing", "SluiceSourceUnreachable", "SluiceStreamFailed", "SluiceBackfillStuck",
            "SluiceNoLeader"}
    assert want <= alerts, f"missing alerts: {sorted(want - alerts)}"
    tested = {t["alertname"] for tc in load_yaml(RULE_TESTS)["tests"] for t in tc.get("alert_rule_test", [])
              if t.get("exp_alerts")}
    quiet = {t["alertname"] for tc in load_yaml(RULE_TESTS)["tests"] for t in tc.get("alert_rule_test", [])
             if not t.get("exp_alerts")}
    assert alerts <= tested and alerts <= quiet, \
        f"alerts without a firing test: {sorted(alerts - tested)}; without a quiet one: {sorted(alerts - quiet)}"


def check_names():
    assert metric_names('sum by (le) (rate(a_bucket{x="b{c}"}[5m] offset 1h)) / on (x) b > 1e3 and $v') == \
        {"a_bucket", "b"}, "the PromQL name scanner"
    allowed = exported_series()
    assert len(allowed) > 30, "the metrics table of docs/operations.md"
    used, bad = set(), []
    exprs = [("rules.yaml " + w, e) for w, e in rule_exprs(load_yaml(RULES)["groups"])]
    exprs += [("dashboard.json " + w, e) for w, e in dashboard_exprs()]
    for tc in load_yaml(RULE_TESTS)["tests"]:
        exprs += [("rules-test.yaml input", s["series"]) for s in tc.get("input_series", [])]
    for where, e in exprs:
        names = metric_names(e)
        assert names, f"{where}: no metric in {e!r}"
        used |= names
        bad += [f"{where}: {n}" for n in sorted(names - allowed)]
    assert not bad, "names sluice does not export:\n" + "\n".join(bad)


def promtool(*args, stdin=None):
    if not os.access(PROMTOOL, os.X_OK):
        raise Skip(f"promtool not built ({PROMTOOL}): run tests/tools/build or make check")
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=120)


def check_rules(path):
    p = promtool("check", "rules", "--lint=all", "--lint-fatal", path)
    # stdout: "Checking FILE" and "SUCCESS: N rules found"; lint goes to stderr
    assert p.returncode == 0 and not p.stderr.strip() and "SUCCESS" in p.stdout, \
        f"promtool check rules {path} (exit {p.returncode}):\n{p.stdout}{p.stderr}"


def check_rules_files():
    check_rules(RULES)
    # the PrometheusRule's own groups, as the operator hands them to Prometheus
    pr = load_yaml(os.path.join(MON, "prometheusrule.yaml"))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"groups": pr["spec"]["groups"]}, f)
        f.flush()
        check_rules(f.name)


def check_dashboard_parses():
    """Every dashboard expression, Grafana's variables filled in, as a
    recording rule: promtool parses it."""
    rules = []
    for i, (where, e) in enumerate(dashboard_exprs()):
        e = e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        e = re.sub(r"\$\{?\w+\}?", ".*", e)
        rules.append({"record": f"dashboard:expr_{i}:check", "expr": e})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        f.flush()
        p = promtool("check", "rules", "--lint=none", f.name)
        assert p.returncode == 0, f"dashboard expressions:\n{p.stdout}{p.stderr}"


def check_rule_tests():
    p = promtool("test", "rules", RULE_TESTS)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, f"promtool test rules (exit {p.returncode}):\n{p.stdout}{p.stderr}"


TESTS = [
    ("prometheusrule.yaml is rules.yaml's groups", check_prometheusrule_agrees),
    ("every alert exists and is tested firing and quiet", check_alerts),
    ("rules, rule tests and dashboard name only exported metrics", check_names),
    ("promtool check rules", check_rules_files),
    ("dashboard expressions parse", check_dashboard_parses),
    ("promtool test rules", check_rule_tests),
]


def main():
    print(f"1..{len(TESTS)}")
    failed = False
    for i, (name, fn) in enumerate(TESTS, 1):
        try:
            fn()
            print(f"ok {i} - {name}")
        except Skip as e:
            print(f"ok {i} - {name} # SKIP {e}")
        except Exception as e:  # noqa: BLE001 (reported in TAP)
            failed = True
            print(f"not ok {i} - {name}")
            for line in f"{type(e).__name__}: {e}".splitlines()[:60]:
                print("# " + line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
