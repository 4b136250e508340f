#!/usr/bin/env python3
"""Checks deploy/ against the real API server and the sluice binary (TAP).

- every manifest of deploy/ (and the sidecar examples) passes
  `kubectl apply --dry-run=server` (schema, defaults and admission);
- the Deployment is hardened as promised (non-root, read-only root
  filesystem, capabilities dropped, seccomp RuntimeDefault, probes on the
  endpoints, resources);
- every flag the manifests pass to `sluice run` is one `sluice run --help`
  lists, and every SLUICE_* variable the Helm chart sets is one
  `sluice run --help-env` lists;
- the Helm chart, offline (the helm test renders and installs it): every
  .Values reference in its templates exists in values.yaml, Chart.yaml has
  the fields helm requires, and its crds/ is a byte-identical copy of the
  repository's crds/ (refresh it with `cp crds/*.yaml deploy/helm/sluice/crds/`).
Without a cluster the dry-run checks are skipped (TAP "# SKIP" lines when nothing else
could run either)."""
import os
import re
import subprocess
import sys
import tempfile
import uuid

import yaml

root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../../.."))
deploy = os.path.join(root, "deploy")
build = os.environ.get("SLUICE_BUILD_ROOT", os.path.join(root, "build"))
sluice = os.environ.get("SLUICE_BIN", os.path.join(build, "src/cmd/sluice"))
kubeconfig = os.environ.get("SLUICE_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")
kubectl = os.environ.get("SLUICE_KUBECTL") or os.path.join(build, "cluster/bin/kubectl")
if not os.access(kubectl, os.X_OK):
    kubectl = os.path.join(root, "build/cluster/bin/kubectl")

results = []


def check(name, ok, detail=""):
    results.append((name, ok, detail))


def skip(name, why):
    results.append((name, None, why))


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def kubectl_run(*args, stdin=None):
    p = subprocess.run([kubectl, "--kubeconfig", kubeconfig, *args], input=stdin, capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


# ---- hardening of the Deployment (offline) -------------------------------
dep = [d for d in docs(os.path.join(deploy, "deployment.yaml")) if d["kind"] == "Deployment"][0]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
sc = c.get("securityContext", {})
check("deployment: runs as non-root", pod["securityContext"].get("runAsNonRoot") is True
      and pod["securityContext"].get("runAsUser", 0) != 0)
check("deployment: read-only root filesystem", sc.get("readOnlyRootFilesystem") is True)
check("deployment: capabilities dropped, no privilege escalation",
      sc.get("capabilities", {}).get("drop") == ["ALL"] and sc.get("allowPrivilegeEscalation") is False)
check("deployment: seccomp RuntimeDefault", pod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault")
check("deployment: probes on /healthz and /readyz",
      c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz")
check("deployment: resources set", "requests" in c.get("resources", {}) and "limits" in c.get("resources", {}))
check("deployment: leader election on with 2 replicas", dep["spec"]["replicas"] >= 2 and "--leader-elect" in c["args"])

# ---- flags used in manifests and chart exist in `sluice run --help` -------
used = set()
for f in ["deployment.yaml", "examples/sidecar-configmap.yaml", "examples/sidecar-git-sync.yaml"]:
    for d in docs(os.path.join(deploy, f)):
        if d["kind"] in ("Deployment", "Pod"):
            spec = d["spec"]["template"]["spec"] if d["kind"] == "Deployment" else d["spec"]
            for ct in spec["containers"]:
                if "sluice" in ct["image"]:
                    used.update(re.match(r"--[a-z-]+", a).group(0) for a in ct.get("args", []) if a.startswith("--"))
tmpl_dir = os.path.join(deploy, "helm/sluice/templates")
used_env = set()
for t in os.listdir(tmpl_dir):
    used_env.update(re.findall(r"\b(SLUICE_[A-Z_]+)\b", open(os.path.join(tmpl_dir, t)).read()))
if os.access(sluice, os.X_OK):
    p = subprocess.run([sluice, "run", "--help"], capture_output=True, text=True, timeout=30)
    helptext = p.stdout + p.stderr
    missing = sorted(f for f in used if not re.search(re.escape(f) + r"\b", helptext))
    check("every flag in deploy/ is a `sluice run` flag", p.returncode == 0 and not missing,
          "unknown: " + ", ".join(missing) if missing else "")
    p = subprocess.run([sluice, "run", "--help-env"], capture_output=True, text=True, timeout=30)
    known = set(re.findall(r"^\s+(SLUICE_[A-Z_]+)\s", p.stdout, re.M))
    missing = sorted(used_env - known)
    check("every SLUICE_* variable of the chart is a `sluice run` variable", p.returncode == 0 and not missing,
          "unknown: " + ", ".join(missing) if missing else "")
else:
    skip("every flag in deploy/ is a `sluice run` flag", "no sluice binary at " + sluice)
    skip("every SLUICE_* variable of the chart is a `sluice run` variable", "no sluice binary at " + sluice)

# ---- Helm chart: references and metadata -----------------------------------
chart = os.path.join(deploy, "helm/sluice")
meta = yaml.safe_load(open(os.path.join(chart, "Chart.yaml")))
check("chart: Chart.yaml has apiVersion v2, name, version",
      meta.get("apiVersion") == "v2" and meta.get("name") == "sluice" and meta.get("version"))
values = yaml.safe_load(open(os.path.join(chart, "values.yaml")))
bad = []
for t in sorted(os.listdir(tmpl_dir)):
    text = open(os.path.join(tmpl_dir, t)).read()
    for ref in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
        node = values
        for part in ref.strip(".").split("."):
            if not isinstance(node, dict) or part not in node:
                bad.append(f"{t}: .Values{ref}")
                break
            node = node[part]
check("chart: every .Values reference exists in values.yaml", not bad, "; ".join(bad))
top, copy = os.path.join(root, "crds"), os.path.join(chart, "crds")
differ = sorted(set(os.listdir(top)) ^ set(os.listdir(copy)))
differ += sorted(f for f in set(os.listdir(top)) & set(os.listdir(copy))
                 if open(os.path.join(top, f), "rb").read() != open(os.path.join(copy, f), "rb").read())
check("chart: crds/ is byte-identical to the repository's crds/", not differ,
      "differ: " + ", ".join(differ) + " (cp crds/*.yaml deploy/helm/sluice/crds/)")

# ---- server-side dry run -----------------------------------------------------
if not kubeconfig or not os.access(kubeconfig, os.R_OK) or not os.access(kubectl, os.X_OK):
    for n in ["namespace.yaml + rbac.yaml", "deployment.yaml", "rbac-namespaced.yaml",
              "examples/sidecar-configmap.yaml", "examples/sidecar-git-sync.yaml"]:
        skip("dry-run=server " + n, "no cluster")
else:
    for n in ["namespace.yaml", "rbac.yaml", "deployment.yaml"]:
        rc, out = kubectl_run("apply", "--dry-run=server", "-f", os.path.join(deploy, n))
        check("dry-run=server " + n, rc == 0, out.strip())
    ns = "run-deploy-" + uuid.uuid4().hex[:6]
    rc, out = kubectl_run("create", "namespace", ns)
    try:
        check("create a test namespace", rc == 0, out.strip())
        # the namespaced RBAC variant names the watched namespace "streams"
        text = open(os.path.join(deploy, "rbac-namespaced.yaml")).read().replace("namespace: streams", "namespace: " + ns)
        rc, out = kubectl_run("apply", "--dry-run=server", "-f", "-", stdin=text)
        check("dry-run=server rbac-namespaced.yaml", rc == 0, out.strip())
        for n in ["examples/sidecar-configmap.yaml", "examples/sidecar-git-sync.yaml"]:
            rc, out = kubectl_run("apply", "--dry-run=server", "-n", ns, "-f", os.path.join(deploy, n))
            check("dry-run=server " + n, rc == 0, out.strip())
    finally:
        kubectl_run("delete", "namespace", ns, "--wait=false", "--ignore-not-found")

print(f"1..{len(results)}")
failed = 0
for i, (name, ok, detail) in enumerate(results, 1):
    if ok is None:
        print(f"ok {i} - {name} # SKIP {detail}")
    elif ok:
        print(f"ok {i} - {name}")
    else:
        failed += 1
        print(f"not ok {i} - {name}")
        for line in str(detail).splitlines()[:20]:
            print("# " + line)
sys.exit(1 if failed else 0)
