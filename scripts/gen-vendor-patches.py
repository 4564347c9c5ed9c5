#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Keep vendor-patches/ (the Cloud Hypervisor series) in sync with crates/.

One source of truth: the engine crates live in crates/ras and
crates/ras_kvm. Patch 0001 of the series carries them into the Cloud
Hypervisor workspace as ras/ and ras_kvm/, with Cargo.toml rewritten to
Cloud Hypervisor's workspace dependencies. This script

  gen <ch-checkout>    rebuilds patch 0001 from crates/ in a Cloud
                       Hypervisor checkout the user provides (it never
                       downloads Cloud Hypervisor), re-applies patches
                       0002.. on top with `git am -3` and rewrites
                       vendor-patches/ with `git format-patch`.
  check                verifies, WITHOUT any Cloud Hypervisor source, that
                       the crate files carried in patch 0001 equal
                       crates/ (after the same Cargo.toml rewrite), that
                       the series file and the base file are consistent.
  cargo-toml <crate>   prints the rewritten Cargo.toml of one crate.
  fix-lock <ch> <base> restores `source` lines of Cargo.lock entries that a
                       local, uncommitted [patch] (micro_http) removed.

Only the Python standard library is used (tomllib: Python >= 3.11).
"""

import base64
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PATCH_DIR = REPO / "vendor-patches"
BASE_TAG = "v53.0"
BASE_COMMIT = "9ed824d6d08df3e96f7d5f50795d9449ac99f431"
# crates/<name> -> <dir> in the Cloud Hypervisor workspace
CRATES = {"ras": "ras", "ras_kvm": "ras_kvm"}
IMPORT_PATCH_PREFIX = "0001-"
IMPORT_TITLE = "ras: Import the guest RAS engine crates"
IMPORT_BODY = """\
Cloud Hypervisor has no guest memory-error recovery: a poisoned page
consumed by a guest either kills the VMM with SIGBUS or makes KVM raise
an SError that panics the guest.

Add the two crates that implement it, independent of the VMM:

ras: the hypervisor-neutral engine. It builds the ACPI HEST with GHESv2
error sources, writes CPER records into the error status blocks,
tracks poisoned pages and decides what to do with each error report
(record, inject an abort, notify the guest, stop the VM).

ras_kvm: the arm64 KVM edge. It decodes KVM_EXIT_ARM_SEA, captures
SIGBUS BUS_MCEERR_AR/AO per vCPU thread, translates host virtual to
guest physical addresses and injects aborts into a vCPU.

Nothing uses them yet; the following commits wire them into the VMM
behind the new --ras option.

This commit is generated from the upstream RAS project sources by
scripts/gen-vendor-patches.sh: do not edit the files by hand.
"""
SIGNOFF = "RAS Team <ras-team@example.org>"
# Names of [workspace.dependencies] in Cloud Hypervisor v53.0. A
# dependency our crates take from our workspace becomes `workspace = true`
# there when it is in this set (features kept), and is written out in
# full otherwise. Fixed here so that `check` needs no Cloud Hypervisor
# source.
CH_WORKSPACE_DEPS = {
    "acpi_tables", "anyhow", "base64", "bitflags", "byteorder", "cfg-if",
    "clap", "dirs", "env_logger", "epoll", "flume", "iommufd-ioctls",
    "itertools", "kvm-bindings", "kvm-ioctls", "libc", "linux-loader",
    "log", "seccompiler", "serde", "serde_json", "serde_with", "sha2",
    "signal-hook", "signal-hook-registry", "smallvec", "thiserror", "uuid",
    "vfio-bindings", "vfio-ioctls", "virtio-bindings", "virtio-queue",
    "vm-fdt", "vm-memory", "vmm-sys-util", "zerocopy",
}
DATE = "Sat, 1 Aug 2026 12:00:00 +0000"


def die(msg):
    print(f"{Path(sys.argv[0]).name}: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- Cargo.toml


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
        return "{ " + ", ".join(f"{k} = {toml_value(v[k])}" for k in dep_key_order(v)) + " }"
    die(f"unsupported TOML value {v!r}")


def dep_key_order(d):
    # taplo (reorder_keys) sorts keys, Cloud Hypervisor keeps `workspace`
    # first in practice; sorting is what `taplo fmt --check` accepts.
    first = [k for k in ("workspace",) if k in d]
    return first + sorted(k for k in d if k not in first)


def map_dep(name, spec, root_deps, crate_dir_of):
    if isinstance(spec, str):
        return toml_value(spec)
    spec = dict(spec)
    if spec.pop("workspace", False):
        if name in crate_dir_of:
            out = {"path": f"../{crate_dir_of[name]}"}
            out.update(spec)
            return toml_value(out)
        root = root_deps.get(name)
        if root is None:
            die(f"{name}: workspace dependency missing from Cargo.toml")
        root = {"version": root} if isinstance(root, str) else dict(root)
        feats = sorted(set(root.get("features", [])) | set(spec.pop("features", [])))
        if name in CH_WORKSPACE_DEPS:
            out = {"workspace": True}
            if feats:
                out["features"] = feats
            out.update(spec)
            return toml_value(out)
        out = dict(root)
        if feats:
            out["features"] = feats
        out.update(spec)
        if set(out) == {"version"}:
            return toml_value(out["version"])
        return toml_value(out)
    if "path" in spec:
        die(f"{name}: path dependencies outside the workspace are not supported")
    return toml_value(spec)


def rewrite_cargo_toml(crate, data=None):
    """Cargo.toml of crates/<crate> as carried in the Cloud Hypervisor tree."""
    try:
        root = tomllib.loads(git_repo("show", "HEAD:Cargo.toml").decode())
    except (subprocess.CalledProcessError, FileNotFoundError):
        root = tomllib.loads((REPO / "Cargo.toml").read_text())
    if data is None:
        data = crate_files(crate)["Cargo.toml"]
    ws = root["workspace"]
    ws_pkg = ws.get("package", {})
    root_deps = ws.get("dependencies", {})
    src = tomllib.loads(data.decode())
    out = ["# SPDX-License-Identifier: Apache-2.0", "# Generated from the RAS project by scripts/gen-vendor-patches.sh.", ""]

    pkg = {}
    for k, v in src["package"].items():
        if isinstance(v, dict) and v.get("workspace"):
            if k in ("edition", "rust-version"):
                pkg[k] = None  # Cloud Hypervisor's workspace has these
                continue
            v = ws_pkg[k]
        pkg[k] = v
    out.append("[package]")
    for k in sorted(pkg):
        if pkg[k] is None:
            out.append(f"{k}.workspace = true")
        else:
            out.append(f"{k} = {toml_value(pkg[k])}")

    def dep_tables(prefix, table):
        for sect in ("dependencies", "dev-dependencies", "build-dependencies"):
            if sect in table:
                out.append("")
                out.append(f"[{prefix}{sect}]")
                for name in sorted(table[sect]):
                    out.append(f"{name} = {map_dep(name, table[sect][name], root_deps, CRATES)}")

    if "features" in src:
        out.append("")
        out.append("[features]")
        for k in sorted(src["features"]):
            out.append(f"{k} = {toml_value(src['features'][k])}")
    dep_tables("", src)
    for cfg in sorted(src.get("target", {})):
        dep_tables(f"target.'{cfg}'.", src["target"][cfg])
    if "lints" in src:
        if src["lints"] != {"workspace": True}:
            die(f"{crate}: only `[lints] workspace = true` is supported")
        out += ["", "[lints]", "workspace = true"]
    known = {"package", "dependencies", "dev-dependencies", "build-dependencies", "features", "target", "lints", "lib"}
    if "lib" in src:
        out += ["", "[lib]"] + [f"{k} = {toml_value(src['lib'][k])}" for k in sorted(src["lib"])]
    for kind in ("bin", "example", "test", "bench"):
        known.add(kind)
        for target in src.get(kind, []):
            out += ["", f"[[{kind}]]"] + [f"{k} = {toml_value(target[k])}" for k in sorted(target)]
    extra = set(src) - known
    if extra:
        die(f"{crate}: unsupported Cargo.toml sections {sorted(extra)}")
    return ("\n".join(out) + "\n").encode()


# ---------------------------------------------------------------- crate files


def git_repo(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=True).stdout


def crate_files(crate):
    """{relative path: bytes} of the crate as committed (HEAD).

    HEAD, not the work tree: the series must carry what is committed, and
    work in progress of others must not leak into it. Without git (a
    source tarball), the files on disk are used.
    """
    d = REPO / "crates" / crate
    try:
        out = git_repo("ls-tree", "-r", "-z", "--name-only", "HEAD", "--", f"crates/{crate}")
        paths = [p for p in out.decode().split("\0") if p]
        return {str(Path(p).relative_to(f"crates/{crate}")): git_repo("show", f"HEAD:{p}") for p in paths}
    except (subprocess.CalledProcessError, FileNotFoundError):
        files = {}
        for dp, dn, fn in os.walk(d):
            dn[:] = [x for x in dn if x not in ("target", ".git")]
            for f in fn:
                files[str(Path(dp, f).relative_to(d))] = Path(dp, f).read_bytes()
        return files


def expected_tree():
    """{path in Cloud Hypervisor tree: bytes} for patch 0001's crate files."""
    tree = {}
    for crate, dest in CRATES.items():
        for rel, data in crate_files(crate).items():
            if rel == "Cargo.toml":
                tree[f"{dest}/Cargo.toml"] = rewrite_cargo_toml(crate, data)
            else:
                tree[f"{dest}/{rel}"] = data
    return tree


# ---------------------------------------------------------------- patch parse

B85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"


def git_b85_line(line):
    c = line[0]
    n = ord(c) - ord("A") + 1 if "A" <= c <= "Z" else ord(c) - ord("a") + 27
    data = bytearray()
    enc = line[1:]
    for i in range(0, len(enc), 5):
        acc = 0
        for ch in enc[i:i + 5]:
            acc = acc * 85 + B85.index(ch)
        data += acc.to_bytes(4, "big")
    return bytes(data[:n])


def parse_new_files(patch_bytes):
    """{path: bytes} of every file the patch creates, decoded from the patch."""
    lines = patch_bytes.split(b"\n")
    files = {}
    i = 0
    while i < len(lines):
        m = re.match(rb"^diff --git a/(\S+) b/(\S+)$", lines[i])
        if not m:
            i += 1
            continue
        path = m.group(2).decode()
        i += 1
        new = False
        while i < len(lines) and not lines[i].startswith((b"@@", b"diff --git", b"GIT binary patch", b"--- ")):
            if lines[i].startswith(b"new file mode"):
                new = True
            i += 1
        if i < len(lines) and lines[i].startswith(b"--- "):
            i += 2  # --- / +++
        if not new:
            files.setdefault(path, None)  # modified: content unknown
            continue
        if i < len(lines) and lines[i] == b"GIT binary patch":
            i += 1
            m2 = re.match(rb"^literal (\d+)$", lines[i])
            if not m2:
                die(f"{path}: only literal binary patches are supported")
            size = int(m2.group(1))
            i += 1
            raw = bytearray()
            while lines[i]:
                raw += git_b85_line(lines[i].decode())
                i += 1
            data = zlib.decompress(bytes(raw))
            if len(data) != size:
                die(f"{path}: binary size mismatch")
            files[path] = data
            continue
        content = bytearray()
        if i < len(lines) and lines[i].startswith(b"@@"):
            m3 = re.match(rb"^@@ -0,0 \+1(?:,(\d+))? @@", lines[i])
            if not m3:
                die(f"{path}: unexpected hunk header for a new file")
            count = int(m3.group(1)) if m3.group(1) is not None else 1
            i += 1
            for _ in range(count):
                ln = lines[i]
                if not ln.startswith(b"+"):
                    die(f"{path}: malformed hunk")
                content += ln[1:] + b"\n"
                i += 1
            if i < len(lines) and lines[i].startswith(b"\\ No newline"):
                del content[-1]
                i += 1
        files[path] = bytes(content)
    return files


def import_patch():
    series = read_series()
    if not series or not series[0].startswith(IMPORT_PATCH_PREFIX):
        die("vendor-patches/series must start with patch 0001 (the crate import)")
    return PATCH_DIR / series[0]


def read_series():
    f = PATCH_DIR / "series"
    if not f.exists():
        die("vendor-patches/series is missing")
    return [ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def cmd_check():
    ok = True
    series = read_series()
    for name in series:
        if not (PATCH_DIR / name).is_file():
            print(f"series names {name}, which does not exist")
            ok = False
    listed = set(series)
    for p in sorted(PATCH_DIR.glob("*.patch")):
        if p.name not in listed:
            print(f"{p.name} is not in vendor-patches/series")
            ok = False
    base = (PATCH_DIR / "BASE").read_text() if (PATCH_DIR / "BASE").exists() else ""
    if BASE_COMMIT not in base or BASE_TAG not in base:
        print(f"vendor-patches/BASE must name {BASE_TAG} and {BASE_COMMIT}")
        ok = False
    carried = parse_new_files(import_patch().read_bytes())
    prefixes = tuple(f"{d}/" for d in CRATES.values())
    carried = {p: c for p, c in carried.items() if p.startswith(prefixes)}
    expected = expected_tree()
    for p in sorted(set(carried) | set(expected)):
        if p not in carried:
            print(f"missing from patch 0001: {p}")
            ok = False
        elif p not in expected:
            print(f"patch 0001 carries {p}, which crates/ does not have")
            ok = False
        elif carried[p] is None:
            print(f"patch 0001 modifies {p} instead of creating it")
            ok = False
        elif carried[p] != expected[p]:
            print(f"differs from crates/: {p}")
            ok = False
    for name in series:
        if "registry+" in (PATCH_DIR / name).read_text():
            print(f"{name} names the package registry (regenerate to trim it)")
            ok = False
    # Later patches must not touch the generated crates.
    for name in series[1:]:
        touched = parse_new_files((PATCH_DIR / name).read_bytes())
        for p in touched:
            if p.startswith(prefixes):
                print(f"{name} touches {p}: change crates/ and regenerate instead")
                ok = False
    if ok:
        print(f"vendor-patches: OK ({len(series)} patches, {len(expected)} crate files in sync)")
        return 0
    print("vendor-patches: OUT OF SYNC: run scripts/gen-vendor-patches.sh <cloud-hypervisor checkout>")
    return 1


# ---------------------------------------------------------------- generation


def git(ch, *args, env=None, check=True, capture=True):
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(["git", "-C", str(ch), *args], env=e, capture_output=capture, text=True)
    if check and r.returncode != 0:
        die(f"git {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def lock_sources(text):
    """{(name, version): source} of a Cargo.lock."""
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


def add_workspace_members(ch):
    f = Path(ch) / "Cargo.toml"
    text = f.read_text()
    m = re.search(r"^members = \[\n(.*?)^\]", text, re.M | re.S)
    members = re.findall(r'"([^"]+)"', m.group(1))
    members = sorted(set(members) | set(CRATES.values()))
    body = "".join(f'  "{x}",\n' for x in members)
    f.write_text(text[:m.start(1)] + body + text[m.end(1):])


def add_gitlint_components(ch):
    f = Path(ch) / "scripts/gitlint/rules/TitleStartsWithComponent.py"
    text = f.read_text()
    m = re.search(r"valid_components = \(\n(.*?)\)", text, re.S)
    comps = re.findall(r"'([^']+)'", m.group(1))
    indent = re.match(r"(\s*)", m.group(1)).group(1)
    for new in CRATES.values():
        if new in comps:
            continue
        at = next((i for i, c in enumerate(comps) if c.lower() > new.lower()), len(comps))
        comps.insert(at, new)
    body = ",\n".join(f"{indent}'{c}'" for c in comps)
    f.write_text(text[:m.start(1)] + body + text[m.end(1):])


DEP5_STANZA = """
Files: {files}
Copyright: 2026 The guest RAS authors
License: Apache-2.0
"""


def add_reuse_dep5(ch):
    # Cloud Hypervisor's `reuse lint` wants copyright and license for every
    # file; the crates carry only SPDX-License-Identifier lines.
    f = Path(ch) / ".reuse/dep5"
    text = f.read_text()
    files = " ".join(f"{d}/*" for d in CRATES.values())
    if f"Files: {files}\n" not in text:
        f.write_text(text.rstrip("\n") + "\n" + DEP5_STANZA.format(files=files))


# Words of the crates (and of the series) that Cloud Hypervisor's typos
# check would flag.
TYPOS_WORDS = {
    "HED": "HED\" # ACPI hardware error device (PNP0C33)",
    "ede": "ede\" # hex digits in GUID test vectors",
    "sigfault": "sigfault\" # Linux siginfo_t _sigfault member",
}


def add_typos_words(ch):
    f = Path(ch) / ".typos.toml"
    lines = f.read_text().split("\n")
    start = lines.index("[default.extend-words]") + 1
    end = start
    while end < len(lines) and lines[end].strip() and not lines[end].startswith("["):
        end += 1
    entries = lines[start:end]
    have = {e.split("=")[0].strip() for e in entries}
    entries += [f'{k} = "{v}' for k, v in TYPOS_WORDS.items() if k not in have]
    entries.sort(key=lambda e: e.split("=")[0].strip())
    f.write_text("\n".join(lines[:start] + entries + lines[end:]))


def cmd_gen(ch, update_lock=True):
    ch = Path(ch).resolve()
    if not (ch / "vmm").is_dir() or not (ch / ".git").exists():
        die(f"{ch} is not a Cloud Hypervisor git checkout")
    if git(ch, "cat-file", "-t", BASE_COMMIT, check=False).strip() != "commit":
        die(f"{ch} does not have the base commit {BASE_COMMIT} ({BASE_TAG})")
    if git(ch, "status", "--porcelain", "--untracked-files=no").strip() == "M Cargo.lock":
        fix_lock(ch, "HEAD")  # only what a local [patch] did to it
    if git(ch, "status", "--porcelain", "--untracked-files=no").strip():
        die(f"{ch} has uncommitted changes to tracked files")
    series = read_series() if (PATCH_DIR / "series").exists() else []
    rest = [PATCH_DIR / p for p in series if not p.startswith(IMPORT_PATCH_PREFIX)]
    env = {
        "GIT_AUTHOR_NAME": "RAS Team", "GIT_AUTHOR_EMAIL": "ras-team@example.org",
        "GIT_COMMITTER_NAME": "RAS Team", "GIT_COMMITTER_EMAIL": "ras-team@example.org",
        "GIT_AUTHOR_DATE": DATE, "GIT_COMMITTER_DATE": DATE,
    }
    git(ch, "checkout", "-q", "-B", "ras-vendor", BASE_COMMIT)
    for dest in CRATES.values():
        if (ch / dest).exists():
            die(f"{ch / dest} exists on the base")
    for path, data in expected_tree().items():
        p = ch / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    add_workspace_members(ch)
    add_gitlint_components(ch)
    add_reuse_dep5(ch)
    add_typos_words(ch)
    if update_lock:
        # Resolve the new crates into Cargo.lock (minimal change).
        r = subprocess.run(["cargo", "metadata", "--format-version", "1", "--offline"],
                           cwd=ch, capture_output=True)
        if r.returncode != 0:
            r = subprocess.run(["cargo", "metadata", "--format-version", "1"], cwd=ch, capture_output=True)
        if r.returncode != 0:
            die("cargo metadata failed:\n" + r.stderr.decode())
        fix_lock(ch, BASE_COMMIT)
    git(ch, "add", "-A", "Cargo.toml", "Cargo.lock", "scripts/gitlint", ".reuse/dep5", ".typos.toml", *CRATES.values())
    msg = f"{IMPORT_TITLE}\n\n{IMPORT_BODY}\nSigned-off-by: {SIGNOFF}\n"
    with tempfile.NamedTemporaryFile("w", delete=False) as t:
        t.write(msg)
    git(ch, "commit", "-q", "-F", t.name, env=env)
    os.unlink(t.name)
    for p in rest:
        r = subprocess.run(["git", "-C", str(ch), "am", "-q", "-3", "--committer-date-is-author-date", str(p)],
                           env={**os.environ, **{k: v for k, v in env.items() if "DATE" not in k}},
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr, file=sys.stderr)
            die(f"{p.name} does not apply on the regenerated 0001: resolve in {ch} "
                "(git am --continue), then run `gen --from-head <checkout>`")
    write_series(ch)


def trim_lock_context(text):
    """Drops Cargo.lock context lines that name the package registry.

    Context is not needed to apply onto the exact base; dropping it keeps
    the registry's address out of the series. Hunk headers are adjusted.
    """
    out = []
    lines = text.split("\n")
    i = 0
    in_lock = False
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("diff --git "):
            in_lock = ln.endswith(" b/Cargo.lock")
        m = re.match(r"^@@ -(\d+),(\d+) \+(\d+),(\d+) @@(.*)$", ln) if in_lock else None
        if not m:
            out.append(ln)
            i += 1
            continue
        old_start, old_len, new_start, new_len = (int(g) for g in m.groups()[:4])
        body = []
        j = i + 1
        while j < len(lines) and lines[j][:1] in (" ", "+", "-", "\\"):
            body.append(lines[j])
            j += 1
        lead = 0
        while lead < len(body) and body[lead].startswith(" "):
            lead += 1
        drop_lead = max((k + 1 for k in range(lead) if "registry+" in body[k]), default=0)
        trail = 0
        while trail < len(body) and body[len(body) - 1 - trail].startswith(" "):
            trail += 1
        drop_trail = max((k + 1 for k in range(trail) if "registry+" in body[len(body) - 1 - k]), default=0)
        body = body[drop_lead:len(body) - drop_trail]
        old_len -= drop_lead + drop_trail
        new_len -= drop_lead + drop_trail
        out.append(f"@@ -{old_start + drop_lead},{old_len} +{new_start + drop_lead},{new_len} @@{m.group(5)}")
        out += body
        i = j
    return "\n".join(out)


def write_series(ch):
    ch = Path(ch).resolve()
    PATCH_DIR.mkdir(exist_ok=True)
    for p in PATCH_DIR.glob("*.patch"):
        p.unlink()
    out = git(ch, "format-patch", "--zero-commit", "--no-signature", "--no-numbered",
              "--full-index", "--binary", "-o", str(PATCH_DIR), f"{BASE_COMMIT}..HEAD")
    names = [Path(x).name for x in out.split()]
    for n in names:
        f = PATCH_DIR / n
        f.write_text(trim_lock_context(f.read_text()))
    (PATCH_DIR / "series").write_text(
        "# Apply in this order onto the base named in BASE (git am).\n" + "".join(n + "\n" for n in names))
    (PATCH_DIR / "BASE").write_text(
        f"Cloud Hypervisor {BASE_TAG}\ncommit {BASE_COMMIT}\n"
        f"repository https://github.com/cloud-hypervisor/cloud-hypervisor\n")
    print(f"wrote {len(names)} patches to {PATCH_DIR}")


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        return 2
    if a[0] == "check":
        return cmd_check()
    if a[0] == "cargo-toml" and len(a) == 2:
        sys.stdout.write(rewrite_cargo_toml(a[1]).decode())
        return 0
    if a[0] == "fix-lock" and len(a) in (2, 3):
        fix_lock(Path(a[1]), a[2] if len(a) == 3 else BASE_COMMIT)
        return 0
    if a[0] == "gen" and len(a) == 2:
        cmd_gen(a[1])
        return 0
    if a[0] == "gen" and len(a) == 3 and a[1] == "--from-head":
        # The series is already committed on top of the base in the checkout
        # (e.g. after resolving a conflict): only re-export it.
        write_series(a[2])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
