#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Cloud Hypervisor patch series, from one source of truth.

vendor-patches/ holds two `git format-patch` series: `main/` against
current Cloud Hypervisor main (the upstream submission) and `v53.0/`
against the latest release (the distribution backport). Both come from:

- the crates of this repository for the files the series carries
  verbatim ("owned" files: the `ras` engine crate, the edge files under
  hypervisor/ and vmm/src/ras/), listed per commit in
  vendor-patches/manifest.toml;
- the patches of `main/` themselves for everything else (the Cloud
  Hypervisor glue, written in a Cloud Hypervisor tree and exported);
- vendor-patches/backport/NNNN.patch: a commit's glue on the release,
  where main's does not apply there (API differences); owned files are
  written from crates/ in both series.

Commands (a Cloud Hypervisor checkout is given by the user; this script
never downloads anything):

  regen CH            rebuild main/ in a scratch worktree of CH at the
                      main base: each patch applied without its owned
                      files, the owned files written from crates/ (the
                      ras lib.rs and cper/mod.rs list only the modules the
                      commit has so far), Cargo.lock resolved offline,
                      the commit amended; then re-export.
  backport CH         rebuild v53.0/ from main/: each patch's glue (or
                      backport/NNNN.patch) applied on the release, owned
                      files written from crates/, Cargo.lock resolved.
  export CH [BASE]    re-export the series committed on top of the base in
                      CH (after editing glue in a Cloud Hypervisor tree).
  place N CH          write the owned files of commit N into CH (to start
                      or edit a commit by hand).
  check               without Cloud Hypervisor: both series list only
                      existing patches, apply owned files exactly as
                      crates/ has them (intermediate lib.rs included), and
                      name no package registry (nor do backport/ patches).
  fix-lock CH [BASE]  restore the `source` lines of Cargo.lock entries that
                      a local, uncommitted [patch] (micro_http) removed.

Only the Python standard library is used (tomllib: Python >= 3.11).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# VENDOR_PATCHES: another vendor-patches directory (as for
# scripts/lib/ch-series.sh and verify-series.sh; the self-test of `check`
# in scripts/check-vendor-patches.sh damages a copy).
VP = Path(os.environ.get("VENDOR_PATCHES") or REPO / "vendor-patches")
MANIFEST = VP / "manifest.toml"
DATE = "Mon, 30 Nov 2026 12:00:00 +0000"


def die(msg):
    print(f"{Path(sys.argv[0]).name}: {msg}", file=sys.stderr)
    sys.exit(1)


def manifest():
    m = tomllib.loads(MANIFEST.read_text())
    for s in m["series"].values():
        s["dir"] = VP / s["dir"]
    return m


# ------------------------------------------------------------ owned files


def git_repo(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=True).stdout


def repo_file(path):
    """A file of this repository as committed (HEAD), so that work in
    progress never leaks into the series; the work tree without git."""
    try:
        return git_repo("show", f"HEAD:{path}")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return (REPO / path).read_bytes()


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in sorted(v)) + "]"
    if isinstance(v, dict):
        keys = [k for k in ("workspace",) if k in v] + sorted(k for k in v if k != "workspace")
        return "{ " + ", ".join(f"{k} = {toml_value(v[k])}" for k in keys) + " }"
    die(f"unsupported TOML value {v!r}")


def cargo_toml(data, ch_deps):
    """Our Cargo.toml of the engine crate, written as Cloud Hypervisor's
    crates write theirs: workspace edition and MSRV, dependencies from its
    [workspace.dependencies] (the same versions) with the features our
    workspace gives them."""
    root = tomllib.loads(repo_file("Cargo.toml").decode())
    ws = root["workspace"]
    src = tomllib.loads(data.decode())
    pkg = src["package"]
    out = ["[package]", f'authors = {toml_value(ws["package"]["authors"])}',
           "edition.workspace = true", f'name = {toml_value(pkg["name"])}',
           "rust-version.workspace = true", f'version = {toml_value(ws["package"]["version"])}']
    for sect in ("dependencies", "dev-dependencies"):
        if sect not in src:
            continue
        out += ["", f"[{sect}]"]
        for name in sorted(src[sect]):
            spec = dict(src[sect][name])
            if not spec.pop("workspace", False) or name not in ch_deps:
                die(f"{name}: the engine may only use Cloud Hypervisor's workspace dependencies")
            rdef = ws["dependencies"][name]
            feats = set(spec.pop("features", []))
            if isinstance(rdef, dict):
                feats |= set(rdef.get("features", []))
            dep = {"workspace": True, **spec}
            if feats:
                dep["features"] = sorted(feats)
            out.append(f"{name} = {toml_value(dep)}")
    out += ["", "[lints]", "workspace = true"]
    if set(src) - {"package", "dependencies", "dev-dependencies", "lints"}:
        die("the engine's Cargo.toml has sections the series cannot carry")
    return ("\n".join(out) + "\n").encode()


MOD_DECL = re.compile(rb"^pub mod (\w+);\n", re.M)
MOD_USE = re.compile(rb"^pub use (\w+)::(?:\{[^}]*\}|[^;]*);\n", re.M | re.S)


def progressive_mods(data, present):
    """`data` (a lib.rs or mod.rs) without the `pub mod`/`pub use` lines of
    modules not in `present` (the commits that add them come later)."""
    out = MOD_DECL.sub(lambda m: m.group(0) if m.group(1).decode() in present else b"", data)
    out = MOD_USE.sub(lambda m: m.group(0) if m.group(1).decode() in present else b"", out)
    # rustfmt keeps at most one blank line: the removed lines leave none.
    return re.sub(rb"\n\n\n+", b"\n\n", out) if out != data else out


def owned_upto(m, series, n):
    """[(commit index, entry)] of the owned files of commits 1..n."""
    out = []
    for i, c in enumerate(m["commit"][:n], start=1):
        for e in c.get("owned", []):
            out.append((i, e))
    return out


def owned_content(m, series, n):
    """{path in Cloud Hypervisor: bytes} of the owned files as they are
    after commit n."""
    entries = owned_upto(m, series, n)
    dests = {e["to"] for _, e in entries}
    files = {}
    for _, e in entries:
        data = repo_file(e["from"])
        t = e.get("transform")
        if t == "cargo-toml":
            data = cargo_toml(data, set(m["ch_workspace_deps"]))
        elif t == "mods":
            to = Path(e["to"])
            d = to.parent
            if to.name in ("lib.rs", "mod.rs"):
                present = {Path(x).stem for x in dests if Path(x).parent == d}
                present |= {Path(x).parent.name for x in dests
                            if Path(x).parent.parent == d and Path(x).name == "mod.rs"}
            else:  # foo.rs, whose submodules live in foo/
                present = {Path(x).stem for x in dests if Path(x).parent == d / to.stem}
            data = progressive_mods(data, present)
        elif t:
            die(f"unknown transform {t}")
        files[e["to"]] = data
    return files


def owned_so_far(m, series, n):
    """The owned files of commits 1..n: a patch's hunks in them are never
    applied (the files are written from crates/ after every commit)."""
    return sorted({e["to"] for _, e in owned_upto(m, series, n)})


def owned_of(m, n):
    return [e["to"] for e in m["commit"][n - 1].get("owned", [])]


# ------------------------------------------------------------ git helpers


def git(ch, *args, env=None, check=True, text=True):
    r = subprocess.run(["git", "-C", str(ch), *args], env={**os.environ, **(env or {})},
                       capture_output=True, text=text)
    if check and r.returncode != 0:
        die(f"git {' '.join(args)} failed in {ch}:\n{r.stdout}{r.stderr}")
    return r.stdout


ENV = {"GIT_COMMITTER_NAME": "RAS series", "GIT_COMMITTER_EMAIL": "ras@example.org",
       "GIT_COMMITTER_DATE": DATE}


def lock_sources(text):
    out = {}
    for block in text.split("[[package]]"):
        n = re.search(r'^name = "([^"]+)"', block, re.M)
        v = re.search(r'^version = "([^"]+)"', block, re.M)
        s = re.search(r'^source = "([^"]+)"', block, re.M)
        if n and v and s:
            out[(n.group(1), v.group(1))] = s.group(1)
    return out


def fix_lock(ch, base):
    """Undo what a local [patch] of a git dependency does to Cargo.lock."""
    ref = lock_sources(git(ch, "show", f"{base}:Cargo.lock"))
    lock = Path(ch) / "Cargo.lock"
    blocks = lock.read_text().split("[[package]]")
    for i, block in enumerate(blocks):
        n = re.search(r'^name = "([^"]+)"', block, re.M)
        v = re.search(r'^version = "([^"]+)"\n', block, re.M)
        if not (n and v) or re.search(r"^source = ", block, re.M):
            continue
        src = ref.get((n.group(1), v.group(1)))
        if src:
            blocks[i] = block[:v.end()] + f'source = "{src}"\n' + block[v.end():]
    lock.write_text("[[package]]".join(blocks))


def resolve_lock(ch, base):
    r = subprocess.run(["cargo", "metadata", "--format-version", "1", "--offline"], cwd=ch,
                       capture_output=True)
    if r.returncode != 0:
        die("cargo metadata --offline failed (is micro_http patched locally?):\n" + r.stderr.decode())
    fix_lock(ch, base)


def trim_lock_context(text):
    """Drops Cargo.lock context lines that name the package registry (the
    patches apply onto their exact base; hunk headers are adjusted)."""
    out, lines, i, in_lock = [], text.split("\n"), 0, False
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("diff --git "):
            in_lock = ln.endswith("/Cargo.lock")
        m = re.match(r"^@@ -(\d+),(\d+) \+(\d+),(\d+) @@(.*)$", ln) if in_lock else None
        if not m:
            out.append(ln)
            i += 1
            continue
        os_, ol, ns, nl = (int(g) for g in m.groups()[:4])
        body, j = [], i + 1
        while j < len(lines) and lines[j][:1] in (" ", "+", "-", "\\"):
            body.append(lines[j])
            j += 1
        lead = next((k for k, b in enumerate(body) if not b.startswith(" ")), len(body))
        dl = max((k + 1 for k in range(lead) if "registry+" in body[k]), default=0)
        trail = next((k for k, b in enumerate(reversed(body)) if not b.startswith(" ")), len(body))
        dt = max((k + 1 for k in range(trail) if "registry+" in body[len(body) - 1 - k]), default=0)
        body = body[dl:len(body) - dt]
        out.append(f"@@ -{os_ + dl},{ol - dl - dt} +{ns + dl},{nl - dl - dt} @@{m.group(5)}")
        out += body
        i = j
    return "\n".join(out)


def export(ch, series, base):
    d = series["dir"]
    d.mkdir(parents=True, exist_ok=True)
    for p in d.glob("*.patch"):
        p.unlink()
    out = git(ch, "format-patch", "--zero-commit", "--no-signature", "--full-index", "--binary",
              "--cover-letter" if (d / "cover-letter.txt").exists() else "--no-cover-letter",
              "-o", str(d), f"{base}..HEAD")
    names = [Path(x).name for x in out.split()]
    for n in names:
        f = d / n
        f.write_text(trim_lock_context(f.read_text()))
    cover = d / "0000-cover-letter.patch"
    if cover.exists():
        fill_cover_letter(cover, d / "cover-letter.txt")
    (d / "series").write_text("# Apply in this order onto the base named in BASE (git am).\n"
                              + "".join(n + "\n" for n in names if not n.startswith("0000-")))
    print(f"wrote {len(names)} patches to {d}")


def fill_cover_letter(cover, text_file):
    """format-patch's cover letter with our subject and text."""
    subject, _, body = text_file.read_text().partition("\n\n")
    t = cover.read_text()
    t = t.replace("*** SUBJECT HERE ***", subject.strip())
    t = t.replace("*** BLURB HERE ***", body.strip())
    cover.write_text(t)


def patches(series):
    f = series["dir"] / "series"
    if not f.exists():
        return []
    return [series["dir"] / ln.strip() for ln in f.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def worktree(ch, base, name):
    wt = Path(tempfile.gettempdir()) / f"ras-series-{name}"
    if wt.exists():
        subprocess.run(["git", "-C", str(ch), "worktree", "remove", "--force", str(wt)],
                       capture_output=True)
        shutil.rmtree(wt, ignore_errors=True)
    git(ch, "worktree", "add", "-q", "--detach", str(wt), base)
    cfg = Path(ch) / ".cargo" / "config.toml"
    if cfg.exists():  # the user's local [patch] for micro_http, never committed
        (wt / ".cargo").mkdir(exist_ok=True)
        shutil.copy(cfg, wt / ".cargo" / "config.toml")
    return wt


def am(wt, excl, patch):
    """git am -3 of `patch` without the files in `excl`; a patch left empty
    by the exclusion (a commit that only adds owned files) is recorded as an
    empty commit, which the owned files then fill."""
    r = subprocess.run(["git", "-C", str(wt), "am", "-q", "-3", *excl, str(patch)],
                       env={**os.environ, **ENV}, capture_output=True, text=True)
    if r.returncode != 0 and "Patch is empty" in r.stdout + r.stderr:
        r = subprocess.run(["git", "-C", str(wt), "am", "-q", "--allow-empty"],
                           env={**os.environ, **ENV}, capture_output=True, text=True)
    return r


def patch_author(p):
    t = p.read_text()
    a = re.search(r"^From: (.*)$", t, re.M).group(1)
    d = re.search(r"^Date: (.*)$", t, re.M).group(1)
    name, email = re.match(r"(.*) <(.*)>", a).groups()
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": d}


# ------------------------------------------------------------ commands


def cmd_place(n, ch):
    m = manifest()
    for path, data in owned_content(m, m["series"]["main"], n).items():
        if path in owned_of(m, n) or (Path(ch) / path).exists():
            p = Path(ch) / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    return 0


def complete_commit(wt, m, series, n, patch):
    """After commit n's glue is applied in `wt`: its owned files (and the
    earlier commits' owned files it changes) written from crates/,
    Cargo.lock resolved offline, the commit amended with `patch`'s
    author."""
    owned = owned_of(m, n)
    for path, data in owned_content(m, series, n).items():
        f = wt / path
        if path in owned or f.exists():
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data)
    resolve_lock(wt, series["base"])
    git(wt, "add", "-A", ".")
    git(wt, "reset", "-q", "--", ".cargo")
    git(wt, "commit", "-q", "--amend", "--no-edit", "--allow-empty",
        env={**ENV, **patch_author(patch)})


def cmd_regen(ch):
    m = manifest()
    main = m["series"]["main"]
    base = main["base"]
    ps = patches(main)
    if len(ps) != len(m["commit"]):
        die(f"manifest.toml lists {len(m['commit'])} commits, main/series {len(ps)}")
    wt = worktree(ch, base, "main")
    for n, p in enumerate(ps, start=1):
        excl = [f"--exclude={o}" for o in owned_so_far(m, main, n)]
        r = am(wt, excl, p)
        if r.returncode != 0:
            die(f"{p.name} does not apply: resolve in {wt} (git am --continue), then "
                f"`export {wt}`\n{r.stdout}{r.stderr}")
        complete_commit(wt, m, main, n, p)
    export(wt, main, base)
    return 0


def cmd_backport(ch):
    """The release series: each patch of main/ applied to the release
    without its owned files (written from crates/ as for main/), or, where
    main's glue does not apply there, vendor-patches/backport/NNNN.patch
    instead (a `git format-patch` of that commit's glue on the release,
    owned files excluded)."""
    m = manifest()
    main, rel = m["series"]["main"], m["series"]["release"]
    wt = worktree(ch, rel["base"], "release")
    for n, p in enumerate(patches(main), start=1):
        excl = [f"--exclude={o}" for o in owned_so_far(m, rel, n)]
        replacement = VP / "backport" / f"{n:04}.patch"
        use = replacement if replacement.exists() else p
        r = am(wt, excl, use)
        if r.returncode != 0:
            die(f"{use.name} does not apply on {rel['base']}: resolve in {wt} (git am "
                f"--continue), then record the commit's glue as vendor-patches/backport/"
                f"{n:04}.patch (git format-patch -1 --stdout HEAD -- . "
                + " ".join(f"':!{o}'" for o in owned_so_far(m, rel, n)) + f")\n{r.stdout}{r.stderr}")
        complete_commit(wt, m, rel, n, p)
    export(wt, rel, rel["base"])
    return 0


def cmd_export(ch, base=None):
    m = manifest()
    s = m["series"]["main"] if base in (None, m["series"]["main"]["base"]) else m["series"]["release"]
    export(Path(ch), s, base or s["base"])
    return 0


# ------------------------------------------------------------ check


def parse_patch(text):
    """[(path, new_file, hunks)] of a patch; hunks are lists of lines."""
    files = []
    cur = None
    for ln in text.split("\n"):
        m = re.match(r"^diff --git a/(\S+) b/(\S+)$", ln)
        if m:
            cur = [m.group(2), False, [], m.group(1)]
            files.append(cur)
            continue
        if cur is None:
            continue
        if ln.startswith("new file mode"):
            cur[1] = True
        elif ln.startswith("deleted file mode"):
            cur[1] = None
        elif ln.startswith("@@"):
            cur[2].append([ln])
        elif cur[2] and ln[:1] in (" ", "+", "-", "\\"):
            cur[2][-1].append(ln)
    return files


def apply_hunks(old, hunks):
    """Applies unified-diff hunks to `old` (bytes), exactly as written."""
    # "a\nb\n" splits into ["a", "b", ""]: the last element is what
    # follows the final newline, also for a new (empty) file.
    lines = old.decode().split("\n")
    out, pos = [], 0
    no_newline = False
    for h in hunks:
        prev = ""
        start = int(re.match(r"^@@ -(\d+)", h[0]).group(1))
        start = max(start - 1, 0)
        out += lines[pos:start]
        pos = start
        for ln in h[1:]:
            if ln.startswith("\\"):
                # "\ No newline at end of file" after the new side's last line
                no_newline = prev.startswith(("+", " "))
                continue
            prev = ln
            if ln.startswith((" ", "-")):
                if pos >= len(lines) or lines[pos] != ln[1:]:
                    raise ValueError(f"context mismatch at line {pos + 1}")
                if ln.startswith(" "):
                    out.append(ln[1:])
                pos += 1
            elif ln.startswith("+"):
                out.append(ln[1:])
    out += lines[pos:]
    if no_newline and out and out[-1] == "":
        out.pop()
    return "\n".join(out).encode()


def cmd_check():
    m = manifest()
    ok = True
    for key, s in m["series"].items():
        ps = patches(s)
        if not ps:
            print(f"{key}: no series in {s['dir']}")
            ok = False
            continue
        listed = {p.name for p in ps}
        for p in sorted(s["dir"].glob("*.patch")):
            if p.name not in listed and not p.name.startswith("0000-"):
                print(f"{key}: {p.name} is not in series")
                ok = False
        base = (s["dir"] / "BASE").read_text() if (s["dir"] / "BASE").exists() else ""
        if s["base"] not in base:
            print(f"{key}: BASE must name {s['base']}")
            ok = False
        if len(ps) != len(m["commit"]):
            print(f"{key}: {len(ps)} patches, the manifest lists {len(m['commit'])} commits")
            ok = False
        tracked = {}
        for n, p in enumerate(ps, start=1):
            text = p.read_text()
            if "registry+" in text:
                print(f"{key}: {p.name} names the package registry")
                ok = False
            for path, new, hunks, _ in parse_patch(text):
                if path not in tracked and not new:
                    continue
                try:
                    tracked[path] = apply_hunks(tracked.get(path, b""), hunks)
                except ValueError as e:
                    print(f"{key}: {p.name}: {path}: {e}")
                    ok = False
            expected = owned_content(m, s, n)
            for path in owned_of(m, n) + [x for x in expected if x in tracked]:
                if tracked.get(path) != expected[path]:
                    print(f"{key}: after {p.name}, {path} differs from crates/")
                    ok = False
        final = owned_content(m, s, len(m["commit"]))
        for path in final:
            if path not in tracked:
                print(f"{key}: {path} is never created")
                ok = False
        print(f"vendor-patches {key}: {len(ps)} patches, {len(final)} owned files checked")
    # The backport glue is committed too: it may not name the registry
    # either (a `git format-patch` of a release commit keeps Cargo.lock
    # context that export would have trimmed).
    for p in sorted((VP / "backport").glob("*.patch")):
        if "registry+" in p.read_text():
            print(f"backport: {p.name} names the package registry (trim its Cargo.lock context)")
            ok = False
    if not ok:
        print("vendor-patches: OUT OF SYNC: scripts/gen-vendor-patches.py regen <CH checkout>")
        return 1
    print("vendor-patches: OK")
    return 0


def main():
    a = sys.argv[1:]
    cmds = {
        ("check", 0): lambda: cmd_check(),
        ("regen", 1): lambda: cmd_regen(Path(a[1]).resolve()),
        ("backport", 1): lambda: cmd_backport(Path(a[1]).resolve()),
        ("export", 1): lambda: cmd_export(a[1]),
        ("export", 2): lambda: cmd_export(a[1], a[2]),
        ("place", 2): lambda: cmd_place(int(a[1]), Path(a[2])),
        ("fix-lock", 1): lambda: (fix_lock(Path(a[1]), manifest()["series"]["main"]["base"]), 0)[1],
        ("fix-lock", 2): lambda: (fix_lock(Path(a[1]), a[2]), 0)[1],
    }
    f = cmds.get((a[0], len(a) - 1)) if a else None
    if f is None:
        print(__doc__)
        return 2
    return f()


if __name__ == "__main__":
    sys.exit(main())
