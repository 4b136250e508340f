#!/usr/bin/env python3
"""The shell completion of sluice, run by the shells themselves (TAP, no
cluster): `sluice completion bash` sourced into bash, its function called
as bash calls it (COMP_WORDS, COMP_CWORD); `sluice completion zsh` checked
with `zsh -n` and driven in an interactive zsh on a pseudo-terminal when zsh
is installed (else its structure is checked); every flag `sluice COMMAND
--help` lists is completed; `sluice --help` lists the commands."""
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

root = os.environ.get("SLUICE_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../../.."))
build = os.environ.get("SLUICE_BUILD_ROOT", os.path.join(root, "build"))
sluice = os.environ.get("SLUICE_BIN", os.path.join(build, "src/cmd/sluice"))
COMMANDS = ["run", "sync", "diff", "status", "validate", "plan", "completion", "version"]


def out(*args):
    p = subprocess.run([sluice, *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"sluice {' '.join(args)}: exit {p.returncode}: {p.stderr}"
    return p.stdout


def bash_complete(*words, cur=None):
    """COMPREPLY for the command line words (the last one is being
    completed), as bash's programmable completion would compute it."""
    script = out("completion", "bash")
    words = list(words)
    line = " ".join(words)
    quoted = " ".join(repr(w) if w else '""' for w in words)
    prog = (f'{script}\nCOMP_WORDS=({quoted})\n'
            f"COMP_CWORD={len(words) - 1}\nCOMP_LINE={line!r}\nCOMP_POINT=${{#COMP_LINE}}\n"
            '_sluice sluice "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.split("\n") if w]


def help_flags(cmd):
    """The long flags `sluice CMD --help` lists."""
    return set(re.findall(r"^  (?:-[a-zA-Z], )?--([a-z0-9-]+)", out(cmd, "--help"), re.M))


def test_help():
    text = out("--help")
    for c in COMMANDS:
        assert re.search(rf"^  {c} +\S", text, re.M), f"{c} not in --help:\n{text}"
    plugin = os.path.join(os.path.dirname(sluice), "kubectl-sluice")
    p = subprocess.run([plugin, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("usage: kubectl sluice COMMAND"), p.stdout
    p = subprocess.run([sluice, "completion", "fish"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "bash or zsh" in p.stderr, p.stderr


def test_bash():
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        f"source <({sluice} completion bash) && complete -p sluice && complete -p kubectl-sluice"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "complete -F _sluice sluice\ncomplete -F _sluice kubectl-sluice\n", p.stdout
    assert bash_complete("sluice", "sy") == ["sync"]
    assert bash_complete("sluice", "s") == ["sync", "status"]
    assert bash_complete("sluice", "") == COMMANDS + ["--help", "--version"]
    assert bash_complete("sluice", "run", "--no-c") == ["--no-controller"]
    assert bash_complete("sluice", "status", "-o", "") == ["wide", "json", "yaml"]
    assert bash_complete("sluice", "status", "--output", "=", "j") == ["json"]
    assert bash_complete("sluice", "status", "-A", "--w") == ["--watch"]
    assert bash_complete("sluice", "completion", "") == ["bash", "zsh"]
    assert bash_complete("sluice", "sync", "--git", "") == [], "a URL is nobody's guess"
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "tree"))
        open(os.path.join(d, "tree.yaml"), "w").close()
        assert bash_complete("sluice", "sync", "--dir", os.path.join(d, "tr")) == [os.path.join(d, "tree")]
        assert sorted(bash_complete("sluice", "validate", os.path.join(d, "tr"))) == \
            [os.path.join(d, "tree"), os.path.join(d, "tree.yaml")]
    # every flag --help lists, for every command
    for c in COMMANDS[:-1]:
        got = {w[2:] for w in bash_complete("sluice", c, "--")}
        want = help_flags(c) | {"help"}
        assert got == want, f"{c}: completed {sorted(got - want)} extra, {sorted(want - got)} missing"


def zsh_complete(script_dir, line, want):
    """What an interactive zsh shows after line and a TAB (read until the
    pattern want shows, or 5 s)."""
    master, slave = pty.openpty()
    env = dict(os.environ, ZDOTDIR=script_dir, TERM="dumb", HOME=script_dir,
               PATH=os.path.dirname(sluice) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.Popen(["zsh", "-i"], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)

    def read(until, timeout):
        got, end = b"", time.time() + timeout
        while time.time() < end and not re.search(until, got):
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    got += os.read(master, 4096)
                except OSError:
                    break
        return got.decode(errors="replace")

    try:
        read(b"READY", 10)
        os.write(master, line.encode() + b"\t")
        shown = read(want.encode(), 5)
    finally:
        p.kill()
        p.wait()
        os.close(master)
    return shown


def test_zsh():
    script = out("completion", "zsh")
    assert script.startswith("#compdef sluice kubectl-sluice\n"), script[:80]
    for c in COMMANDS:
        assert f"\n    ({c})\n" in script, c
        assert re.search(rf"^        '{c}:", script, re.M), c
    for f in help_flags("run"):
        assert f"'--{f}" in script, f
    assert "'(-o --output)'{-o+,--output=}'[" in script and ":FORMAT:(wide json yaml)'" in script
    if not shutil.which("zsh"):
        print("# zsh is not installed: its script was checked for structure only")
        return
    d = tempfile.mkdtemp(prefix="sluice-zsh-")
    try:
        with open(os.path.join(d, "_sluice"), "w") as f:
            f.write(script)
        p = subprocess.run(["zsh", "-n", os.path.join(d, "_sluice")], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        with open(os.path.join(d, ".zshrc"), "w") as f:
            f.write(f"PS1='%% '\nfpath=({d} $fpath)\nautoload -U compinit && compinit -u -D\necho READY\n")
        for line, want in (("sluice sy", r"sluice sync "), ("sluice run --no-c", r"sluice run --no-controller "),
                           ("sluice status -o ", r"json +wide +yaml"), ("kubectl-sluice stat", r"kubectl-sluice status ")):
            shown = zsh_complete(d, line, want)
            assert re.search(want, shown), f"{line!r}: {shown!r}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


TESTS = [("help", test_help), ("bash", test_bash), ("zsh", test_zsh)]


def main():
    print(f"1..{len(TESTS)}", flush=True)
    failed = 0
    for i, (name, fn) in enumerate(TESTS, 1):
        try:
            fn()
            print(f"ok {i} - {name}", flush=True)
        except Exception as e:  # noqa: BLE001 (a test's failure, reported in TAP)
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for line in f"{type(e).__name__}: {e}".splitlines()[:40]:
                print("# " + line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
