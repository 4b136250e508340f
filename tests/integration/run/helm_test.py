#!/usr/bin/env python3
"""The Helm chart of deploy/helm/sluice with the real helm (TAP).

helm is built from the module pinned in tests/tools/helm (tests/tools/build,
`make tools-bin`; `make check` builds it). Against the local control plane:
lint, the values schema, every `sluice run` flag as a value, `helm template`
through `kubectl apply --dry-run=server`, then install, upgrade with changed
values and uninstall in a fresh namespace (no kubelet: pods never run, the
objects are what is checked). Without a cluster or helm: "1..0 # SKIP"."""
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

import yaml

root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../../.."))
build = os.environ.get("SLUICE_BUILD_ROOT", os.path.join(root, "build"))
sluice = os.environ.get("SLUICE_BIN", os.path.join(build, "src/cmd/sluice"))
helm = os.environ.get("SLUICE_HELM") or os.path.join(build, "tools/bin/helm")
kubectl = os.environ.get("SLUICE_KUBECTL") or os.path.join(build, "cluster/bin/kubectl")
kubeconfig = os.environ.get("SLUICE_TEST_KUBECONFIG")
chart = os.path.join(root, "deploy/helm/sluice")
HELM_VERSION = "v3.22.0"

if not kubeconfig or not os.access(kubeconfig, os.R_OK) or not os.access(kubectl, os.X_OK):
    print("1..0 # SKIP no cluster (SLUICE_TEST_KUBECONFIG and SLUICE_KUBECTL)")
    sys.exit(0)
if not os.access(helm, os.X_OK):
    print(f"1..0 # SKIP no helm at {helm} (make tools-bin, or tests/tools/build)")
    sys.exit(0)
if not os.access(sluice, os.X_OK):
    print(f"1..0 # SKIP no sluice binary at {sluice}")
    sys.exit(0)

results = []
tmp = tempfile.TemporaryDirectory(prefix="sluice-helm-")
# helm keeps its own state out of the user's home
env = dict(os.environ, KUBECONFIG=kubeconfig, HELM_CACHE_HOME=os.path.join(tmp.name, "cache"),
           HELM_CONFIG_HOME=os.path.join(tmp.name, "config"), HELM_DATA_HOME=os.path.join(tmp.name, "data"))


def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))
    return ok


def run(argv, stdin=None):
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=180, env=env)
    return p.returncode, p.stdout, p.stderr


def helm_run(*args, stdin=None):
    return run([helm, *args], stdin)


def kubectl_run(*args, stdin=None):
    return run([kubectl, "--kubeconfig", kubeconfig, *args], stdin)


def values_file(name, values):
    path = os.path.join(tmp.name, name)
    with open(path, "w") as f:
        yaml.safe_dump(values, f)
    return path


def render(*args):
    """helm template of the chart: (rc, documents, stderr)."""
    rc, out, err = helm_run("template", "rel", chart, *args)
    return rc, ([d for d in yaml.safe_load_all(out) if d] if rc == 0 else []), err


def container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env_of(deployment):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment).get("env", [])}


def one(documents, kind):
    found = [d for d in documents if d["kind"] == kind]
    return found[0] if len(found) == 1 else None


# ---- the tool and the chart, offline -------------------------------------
rc, out, err = helm_run("version", "--short")
check(f"helm is {HELM_VERSION} (tests/tools/helm/go.mod)", rc == 0 and out.strip().split("+")[0] == HELM_VERSION,
      out + err)
print(f"# helm version: {out.strip()}")

rc, out, err = helm_run("lint", "--strict", chart)
check("helm lint --strict deploy/helm/sluice", rc == 0 and "0 chart(s) failed" in out, out + err)

# Every flag of `sluice run` is a value: the renders below together set
# every SLUICE_* variable of `sluice run --help-env`.
p = subprocess.run([sluice, "run", "--help-env"], capture_output=True, text=True, timeout=30)
wanted = set(re.findall(r"^\s+(SLUICE_[A-Z_]+)\s+--", p.stdout, re.M))
check("sluice run --help-env lists the variables", p.returncode == 0 and len(wanted) > 30, p.stdout + p.stderr)
full = {
    "source": {
        "git": {"url": "https://git.example.com/streams.git", "ref": "release", "path": "clusters/prod",
                "allowHttp": True, "author": "Sluice Bot <bot@example.com>", "writeBack": True, "timeout": "45s",
                "credentials": {"method": "basic", "existingSecret": "git-basic"},
                "ca": {"existingConfigMap": "git-ca", "key": "bundle.pem"}},
        "interval": "5m", "sourceId": "prod", "inventoryNamespace": "sluice-inventory",
        "prune": True, "allowEmptyPrune": True},
    "sync": {"enabled": True},
    "controller": {"enabled": False, "workers": 8},
    "watchNamespaces": ["streams-a", "streams-b"],
    "leaderElection": {"enabled": True, "namespace": "sluice-leases", "name": "sluice-prod",
                       "leaseDuration": "20s", "renewDeadline": "15s", "retryPeriod": "3s"},
    "listen": "0.0.0.0:9090",
    "webhook": {"existingSecret": "hook", "key": "token"},
    "kubeconfig": {"existingSecret": "remote", "key": "config", "context": "prod"},
    "cacheDir": "/cache", "shutdownTimeout": "20s", "logFormat": "text", "logLevel": "debug",
}
ssh = {"source": {"git": {"url": "ssh://git@git.example.com/streams.git",
                          "credentials": {"method": "ssh", "existingSecret": "git-ssh"}}},
       "controller": {"shard": "shard-1"}}
dirsrc = {"source": {"dir": "/manifests"}, "sync": {"enabled": False}, "replicas": 1,
          "leaderElection": {"enabled": False}, "listen": "off"}
seen = set()
renders = {}
for name, vals in [("full", full), ("ssh", ssh), ("dir", dirsrc)]:
    rc, docs, err = render("-n", "sluice-system", "-f", values_file(name + ".yaml", vals))
    dep = one(docs, "Deployment")
    check(f"helm template with the {name} values renders one Deployment", rc == 0 and dep, err)
    renders[name] = docs
    if dep:
        seen |= set(env_of(dep))
missing = sorted(wanted - seen)
check("every `sluice run` flag is a chart value (rendered as its SLUICE_* variable)", not missing,
      "not rendered: " + ", ".join(missing))

dep = one(renders["full"], "Deployment")
if dep:
    e = env_of(dep)
    pod = dep["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(dep)["volumeMounts"]}
    check("full values: flags carry the values",
          e.get("SLUICE_GIT_URL") == "https://git.example.com/streams.git" and e.get("SLUICE_WORKERS") == "8" and e.get("SLUICE_GIT_TIMEOUT") == "45s"
          and e.get("SLUICE_NO_CONTROLLER") == "true" and e.get("SLUICE_WATCH_NAMESPACE") == "streams-a,streams-b"
          and e.get("SLUICE_LISTEN") == "0.0.0.0:9090" and e.get("SLUICE_CONTEXT") == "prod", json.dumps(e))
    check("full values: the Git password and user come from the existing Secret",
          vols.get("git-credentials", {}).get("secret", {}).get("secretName") == "git-basic"
          and vols["git-credentials"]["secret"]["items"] == [{"key": "password", "path": "password"}]
          and mounts.get("git-credentials") == "/etc/sluice/git"
          and e.get("SLUICE_GIT_PASSWORD_FILE") == "/etc/sluice/git/password"
          and e.get("SLUICE_GIT_USERNAME") == {"secretKeyRef": {"name": "git-basic", "key": "username"}},
          json.dumps([vols.get("git-credentials"), e.get("SLUICE_GIT_USERNAME")]))
    check("full values: the webhook secret, CA bundle and kubeconfig are mounted from their Secret/ConfigMap",
          vols.get("webhook", {}).get("secret", {}).get("items") == [{"key": "token", "path": "secret"}]
          and e.get("SLUICE_WEBHOOK_SECRET_FILE") == mounts.get("webhook") + "/secret"
          and vols.get("git-ca", {}).get("configMap", {}).get("name") == "git-ca"
          and e.get("SLUICE_GIT_CA_FILE") == mounts.get("git-ca") + "/ca.crt"
          and vols.get("kubeconfig", {}).get("secret", {}).get("secretName") == "remote"
          and e.get("SLUICE_KUBECONFIG") == mounts.get("kubeconfig") + "/kubeconfig", json.dumps(vols))
    check("full values: port and probes follow --listen",
          container(dep)["ports"][0]["containerPort"] == 9090 and mounts.get("cache") == "/cache")
    roles = [(d["kind"], d["metadata"].get("namespace")) for d in renders["full"]
             if d["kind"] in ("Role", "ClusterRole")]
    check("full values: Roles in the watched namespaces and where the Lease and inventory live",
          sorted(roles) == sorted([("ClusterRole", None), ("Role", "streams-a"), ("Role", "streams-b"),
                                   ("Role", "sluice-system"), ("Role", "sluice-leases"),
                                   ("Role", "sluice-inventory")]), str(roles))
dep = one(renders["ssh"], "Deployment")
if dep:
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    check("ssh values: the key and known_hosts come from the existing Secret",
          vols.get("git-credentials", {}).get("secret", {}).get("items")
          == [{"key": "ssh-privatekey", "path": "ssh-key"}, {"key": "known_hosts", "path": "known_hosts"}]
          and env_of(dep).get("SLUICE_GIT_SSH_KEY") == "/etc/sluice/git/ssh-key", json.dumps(vols))
    check("controller.shard: --shard as SLUICE_SHARD", env_of(dep).get("SLUICE_SHARD") == "shard-1",
          json.dumps(env_of(dep)))
if renders["dir"]:
    kinds = sorted(d["kind"] for d in renders["dir"])
    dep = one(renders["dir"], "Deployment")
    check("listen off: no Service, no probes", "Service" not in kinds and dep and "livenessProbe" not in container(dep),
          str(kinds))

# ---- the schema and the checks of the templates ---------------------------
for args, field, what in [(["--set", "replicas=abc"], "/replicas", "got string, want integer"),
                          (["--set", "replica=3"], "'replica'", "not allowed"),
                          (["--set", "logLevel=verbose"], "/logLevel", "must be one of"),
                          (["--set", "leaderElection.leaseDuration=soon"], "/leaderElection/leaseDuration", "pattern"),
                          (["--set", "source.git.credentials.method=token"], "/source/git/credentials/method",
                           "must be one of"),
                          (["--set", "controller.shard=Shard_A"], "/controller/shard", "pattern")]:
    rc, docs, err = render(*args)
    check(f"helm template {' '.join(args)} fails naming {field}", rc != 0 and field in err and what in err, err)
rc, docs, err = render("--set", "replicas=3", "--set", "leaderElection.enabled=false")
check("replicas 3 without leader election is refused", rc != 0 and "leaderElection.enabled" in err, err)
rc, docs, err = render("--set", "source.git.url=https://x/y.git", "--set", "source.dir=/m")
check("--git and --dir together are refused", rc != 0 and "source.dir" in err, err)
rc, docs, err = render("--set", "controller.shard=a", "--set", "controller.enabled=false",
                       "--set", "source.dir=/m")
check("a shard without the controller is refused", rc != 0 and "controller.shard" in err, err)

# ---- CRDs: the chart installs those of crds/ (deploy_check.py checks that
# its crds/ is a byte-identical copy) ----------------------------------------
top = os.path.join(root, "crds")
crd_names = []
for f in sorted(os.listdir(top)):
    crd_names += [d["metadata"]["name"] for d in yaml.safe_load_all(open(os.path.join(top, f))) if d]

rc, out, err = helm_run("show", "crds", chart)
# (helm prints the files one after another, without "---" between them)
check("helm show crds: the chart's crds/ holds the CRDs of crds/",
      rc == 0 and all(re.search(r"^  name: " + re.escape(n) + "$", out, re.M) for n in crd_names), out + err)

# ---- against the control plane --------------------------------------------
tag = uuid.uuid4().hex[:6]
ns = "run-helm-" + tag
rel = "sluice-" + tag
installed = False
rc, out, err = kubectl_run("create", "namespace", ns)
check("create a fresh namespace " + ns, rc == 0, out + err)
try:
    rc, out, err = helm_run("template", rel, chart, "-n", ns, "--include-crds")
    rc2, out2, err2 = kubectl_run("apply", "--dry-run=server", "-f", "-", stdin=out) if rc == 0 else (1, "", "")
    check("helm template --include-crds | kubectl apply --dry-run=server", rc == 0 and rc2 == 0, err + out2 + err2)
    full_ns = json.loads(json.dumps(full).replace("sluice-leases", ns).replace("sluice-inventory", ns)
                         .replace("streams-a", ns).replace("streams-b", "default"))
    rc, out, err = helm_run("template", rel, chart, "-n", ns, "-f", values_file("full-ns.yaml", full_ns))
    rc2, out2, err2 = kubectl_run("apply", "--dry-run=server", "-f", "-", stdin=out) if rc == 0 else (1, "", "")
    check("helm template with every value set | kubectl apply --dry-run=server", rc == 0 and rc2 == 0,
          err + out2 + err2)

    # install: one replica without leader election, the image of 0.1.0
    rc, out, err = helm_run("install", rel, chart, "-n", ns, "--set", "replicas=1",
                            "--set", "leaderElection.enabled=false", "--set", "image.tag=0.1.0")
    installed = rc == 0
    check("helm install", rc == 0, out + err)
    objects = [("deployment", rel, ns), ("serviceaccount", rel, ns), ("service", rel, ns),
               ("clusterrole", rel, None), ("clusterrolebinding", rel, None)]
    for kind, name, where in objects:
        rc, out, err = kubectl_run("get", kind, name, *(["-n", where] if where else []), "-o", "name")
        check(f"installed: {kind}/{name}", rc == 0, out + err)
    rc, out, err = kubectl_run("get", "deployment", rel, "-n", ns, "-o", "json")
    dep = json.loads(out) if rc == 0 else None
    if dep:
        e = env_of(dep)
        check("installed Deployment: 1 replica, no leader election, image 0.1.0, hardened",
              dep["spec"]["replicas"] == 1 and e.get("SLUICE_LEADER_ELECT") == "false"
              and container(dep)["image"].endswith(":0.1.0")
              and container(dep)["securityContext"]["readOnlyRootFilesystem"] is True
              and dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, json.dumps(e))
    rc, out, err = kubectl_run("get", "crd", *crd_names, "-o", "name")
    check("the chart's CRDs exist", rc == 0 and len(out.split()) == len(crd_names), out + err)

    # upgrade: image tag, --git URL, resources, leader election with 2 replicas,
    # credentials and the webhook secret from existing Secrets
    kubectl_run("create", "secret", "generic", "git-creds", "-n", ns, "--from-literal=username=bot",
                "--from-literal=password=s3cret")
    kubectl_run("create", "secret", "generic", "hook", "-n", ns, "--from-literal=secret=h00k")
    upgrade = {
        "image": {"tag": "0.2.0"},
        "replicas": 2,
        "leaderElection": {"enabled": True, "leaseDuration": "30s"},
        "source": {"git": {"url": "https://git.example.com/streams.git", "ref": "prod",
                           "credentials": {"method": "basic", "existingSecret": "git-creds"}}},
        "webhook": {"existingSecret": "hook"},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
    }
    rc, out, err = helm_run("upgrade", rel, chart, "-n", ns, "-f", values_file("upgrade.yaml", upgrade))
    check("helm upgrade with changed values", rc == 0, out + err)
    rc, out, err = kubectl_run("get", "deployment", rel, "-n", ns, "-o", "json")
    dep = json.loads(out) if rc == 0 else None
    if check("the upgraded Deployment is readable", dep, err):
        e = env_of(dep)
        c = container(dep)
        check("upgrade: image tag 0.2.0", c["image"] == "ghcr.io/sluice-dev/sluice:0.2.0", c["image"])
        check("upgrade: the --git URL and ref", e.get("SLUICE_GIT_URL") == "https://git.example.com/streams.git"
              and e.get("SLUICE_GIT_REF") == "prod", json.dumps(e))
        check("upgrade: resources", c["resources"] == upgrade["resources"], json.dumps(c["resources"]))
        check("upgrade: leader election on with 2 replicas", dep["spec"]["replicas"] == 2
              and e.get("SLUICE_LEADER_ELECT") == "true" and e.get("SLUICE_LEADER_ELECT_LEASE_DURATION") == "30s",
              json.dumps(e))
        vols = {v["name"]: v.get("secret", {}).get("secretName") for v in dep["spec"]["template"]["spec"]["volumes"]}
        check("upgrade: Git credentials and webhook secret from the existing Secrets",
              vols.get("git-credentials") == "git-creds" and vols.get("webhook") == "hook"
              and e.get("SLUICE_GIT_PASSWORD_FILE") == "/etc/sluice/git/password"
              and e.get("SLUICE_WEBHOOK_SECRET_FILE") == "/etc/sluice/webhook/secret", json.dumps(vols))
    rc, out, err = helm_run("history", rel, "-n", ns, "-o", "json")
    hist = json.loads(out) if rc == 0 else []
    check("helm history: revision 2 deployed", [h["revision"] for h in hist] == [1, 2]
          and hist[-1]["status"] == "deployed", out + err)

    rc, out, err = helm_run("uninstall", rel, "-n", ns)
    installed = installed and rc != 0
    check("helm uninstall", rc == 0, out + err)
    for kind, name, where in objects:
        rc, out, err = kubectl_run("get", kind, name, *(["-n", where] if where else []), "--ignore-not-found",
                                   "-o", "name")
        check(f"uninstalled: {kind}/{name} is gone", rc == 0 and out.strip() == "", out + err)
    rc, out, err = kubectl_run("get", "crd", *crd_names, "-o", "name")
    check("uninstalled: the CRDs stay (helm never deletes crds/)", rc == 0 and len(out.split()) == len(crd_names),
          out + err)
finally:
    if installed:
        helm_run("uninstall", rel, "-n", ns)
    kubectl_run("delete", "namespace", ns, "--wait=false", "--ignore-not-found")
    tmp.cleanup()

print(f"1..{len(results)}")
failed = 0
for i, (name, ok, detail) in enumerate(results, 1):
    if ok:
        print(f"ok {i} - {name}")
    else:
        failed += 1
        print(f"not ok {i} - {name}")
        for line in str(detail).splitlines()[:20]:
            print("# " + line)
sys.exit(1 if failed else 0)
