#!/usr/bin/env python3
"""Checks offline (TAP) that crds/ stays schema-compatible with the arcane-crd
v0.0.9 CRDs of tests/data/arcane/arcane-crds.yaml, so either can replace the
other on a cluster and objects valid under one are valid under the other:

- the same metadata.name, group, scope, names, versions, status subresource;
- the same required lists, enums, defaults and nullable flags wherever
  arcane-crd declares them, and every arcane-crd property also in ours
  (for StreamingJobTemplate: ours keeps unknown fields under spec instead, as
  it also takes the Job spec shape);
- the same selectableFields; arcane-crd's printer columns are among ours.

tests/integration/manifest/test-arcane.c does the same on the API server."""
import os
import sys

import yaml

root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../../.."))
results = []


def check(name, ok, detail=""):
    results.append((name, ok, detail))


def crds(paths):
    out = {}
    for p in paths:
        with open(p) as f:
            for d in yaml.safe_load_all(f):
                if d and d.get("kind") == "CustomResourceDefinition":
                    out[d["spec"]["names"]["kind"]] = d
    return out


def walk(theirs, ours, path, problems, preserving=False):
    """Every constraint of theirs at path holds the same in ours."""
    if ours is None:
        if not preserving:
            problems.append(f"{path}: missing in crds/")
        return
    for k in ("type", "format", "enum", "default", "nullable", "required", "x-kubernetes-int-or-string"):
        a, b = theirs.get(k), ours.get(k)
        if k in ("enum", "required") and isinstance(a, list) and isinstance(b, list):
            a, b = sorted(map(repr, a)), sorted(map(repr, b))  # order does not matter
        if k in theirs and a != b and not (preserving and k == "required"):
            problems.append(f"{path}: {k} is {ours.get(k)!r} in crds/, {theirs[k]!r} in arcane-crd")
    if theirs.get("x-kubernetes-preserve-unknown-fields") and not ours.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: arcane-crd keeps unknown fields, crds/ does not")
    keep = preserving or bool(ours.get("x-kubernetes-preserve-unknown-fields"))
    for name, sub in (theirs.get("properties") or {}).items():
        walk(sub, (ours.get("properties") or {}).get(name), f"{path}.{name}", problems, keep)
    for k in ("items", "additionalProperties"):
        if isinstance(theirs.get(k), dict):
            walk(theirs[k], ours.get(k) if isinstance(ours.get(k), dict) else None, f"{path}[{k}]", problems,
                 keep)


def main():
    ours = crds(os.path.join(root, "crds", f) for f in
                ("streamclass.yaml", "streamingjobtemplate.yaml", "backfillrequest.yaml"))
    theirs = crds([os.path.join(root, "tests/data/arcane/arcane-crds.yaml")])
    check("three arcane-crd CRDs", sorted(theirs) == ["BackfillRequest", "StreamClass", "StreamingJobTemplate"],
          sorted(theirs))
    for kind, t in sorted(theirs.items()):
        o = ours.get(kind)
        check(f"{kind}: in crds/", o is not None)
        if o is None:
            continue
        check(f"{kind}: metadata.name", o["metadata"]["name"] == t["metadata"]["name"],
              (o["metadata"]["name"], t["metadata"]["name"]))
        for k in ("group", "scope", "names"):
            check(f"{kind}: spec.{k}", o["spec"][k] == t["spec"][k], (o["spec"][k], t["spec"][k]))
        tv = {v["name"]: v for v in t["spec"]["versions"]}
        ov = {v["name"]: v for v in o["spec"]["versions"]}
        check(f"{kind}: versions", sorted(tv) == sorted(ov), (sorted(ov), sorted(tv)))
        for name, v in tv.items():
            w = ov.get(name, {})
            for k in ("served", "storage", "subresources"):
                check(f"{kind} {name}: {k}", w.get(k) == v.get(k), (w.get(k), v.get(k)))
            check(f"{kind} {name}: selectableFields", w.get("selectableFields") == v.get("selectableFields"),
                  (w.get("selectableFields"), v.get("selectableFields")))
            cols = [c for c in v.get("additionalPrinterColumns", []) if c not in w.get("additionalPrinterColumns", [])]
            check(f"{kind} {name}: arcane-crd's printer columns", not cols, cols)
            problems = []
            walk(v["schema"]["openAPIV3Schema"], w.get("schema", {}).get("openAPIV3Schema"), kind, problems)
            check(f"{kind} {name}: schema", not problems, "\n".join(problems))

    print(f"1..{len(results)}")
    failed = 0
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            failed += 1
            for line in str(detail).splitlines()[:30]:
                print("# " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
