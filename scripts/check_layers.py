#!/usr/bin/env python3
"""Checks that every import runs down the layers of layers.toml.

For each crate in the table, every `crate::NAME` / `$crate::NAME` path and
every `use crate::{...}` group in the crate's sources is an edge from the
file's module to NAME's module (a name re-exported at the crate root, such
as `crate::sleep`, counts as the module it comes from). For modules of a
"folder/*" layer, `super::SIBLING` and `crate::folder::SIBLING` are edges
too. An edge to a module of the same or a higher layer is an error,
reported with the file, the line and the path; so is a module that the
table does not place.

    python3 scripts/check_layers.py [--table layers.toml] [--repo DIR]
    python3 scripts/check_layers.py --self-test
"""

import argparse
import os
import re
import sys
import tempfile
import tomllib

COMMENT = re.compile(r"//[^\n]*")
CRATE_PATH = re.compile(r"(?<![\w:])\$?crate::(\w+)(?:::(\w+))?")
USE_GROUP = re.compile(r"\buse\s+crate::\{")
SUPER_PATH = re.compile(r"(?<![\w:])super::(\w+)")
MACRO_EXPORT = re.compile(r"#\[macro_export\]\s*macro_rules!\s*(\w+)")
ROOT_REEXPORT = re.compile(r"pub\s+use\s+(\w+)::(\{[^}]*\}|\w+)\s*;")


def strip_comments(text):
    """The source with line comments blanked (line numbers kept)."""
    return COMMENT.sub("", text)


def group_heads(text, start):
    """The first path segment of each entry of the `use crate::{...}` group
    whose `{` ends at `start`, with its offset."""
    depth, i, entry_start, out = 1, start, start, []
    while i < len(text) and depth:
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if depth == 0 or (c == "," and depth == 1):
            raw = text[entry_start:i]
            head = re.match(r"(\w+)", raw.strip())
            if head:
                out.append((head.group(1), entry_start + len(raw) - len(raw.lstrip())))
            entry_start = i + 1
        i += 1
    return out


class Crate:
    """One crate of the table: its layers and how files map to modules."""

    def __init__(self, name, root, layers):
        self.name = name
        self.root = root
        self.layer_of = {}
        self.split_folders = set()
        for n, layer in enumerate(layers):
            for m in layer:
                if m.endswith("/*"):
                    self.split_folders.add(m[:-2])
                self.layer_of[m] = n

    def module_of(self, rel):
        """The module a file (path relative to the root) belongs to, or
        None for the crate root itself."""
        parts = rel.split("/")
        if len(parts) == 1:
            stem = parts[0][:-3]
            return None if stem in ("lib", "main") else stem
        if parts[0] in self.split_folders:
            if parts[1] == "mod.rs":
                return parts[0] + "/*"
            return parts[0] + "/" + parts[1].removesuffix(".rs")
        return parts[0]

    def layer(self, module):
        """The layer of a module (a file of a split folder is in the
        folder's layer)."""
        if module in self.layer_of:
            return self.layer_of[module]
        head = module.split("/")[0]
        if head in self.split_folders:
            return self.layer_of[head + "/*"]
        return None


def root_reexports(crate, crate_dir):
    """Names that live at the crate root without being modules: `pub use`
    re-exports of lib.rs and `#[macro_export]` macros, each mapped to the
    module that defines it."""
    out = {}
    for dirpath, _, files in os.walk(crate_dir):
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(dirpath, f)
                text = strip_comments(open(path, encoding="utf-8").read())
                module = crate.module_of(os.path.relpath(path, crate_dir))
                for m in MACRO_EXPORT.finditer(text):
                    if module:
                        out[m.group(1)] = module
    for root_file in ("lib.rs", "main.rs"):
        p = os.path.join(crate_dir, root_file)
        if not os.path.exists(p):
            continue
        text = strip_comments(open(p, encoding="utf-8").read())
        for m in ROOT_REEXPORT.finditer(text):
            module, names = m.group(1), m.group(2)
            for n in re.findall(r"\w+", names):
                out[n] = module
    return out


def edges_of(crate, rel, text, reexports):
    """(target module, line, path text) for each cross-module reference."""
    src = crate.module_of(rel)
    clean = strip_comments(text)
    found = []

    def line_at(off):
        return clean.count("\n", 0, off) + 1

    def target(first, second):
        if first in reexports and crate.layer(first) is None:
            first = reexports[first]
        if first in crate.split_folders and second:
            return first + "/" + second
        return first

    for m in CRATE_PATH.finditer(clean):
        found.append((target(m.group(1), m.group(2)), line_at(m.start()), m.group(0)))
    for m in USE_GROUP.finditer(clean):
        for head, off in group_heads(clean, m.end()):
            found.append((target(head, None), line_at(off), "crate::{" + head + "}"))
    if src and "/" in src and not src.endswith("/*"):
        folder = src.split("/")[0]
        siblings = {
            f.removesuffix(".rs")
            for f in os.listdir(os.path.join(crate.root_dir, folder))
            if f.endswith(".rs") and f != "mod.rs"
        }
        for m in SUPER_PATH.finditer(clean):
            if m.group(1) in siblings:
                found.append((folder + "/" + m.group(1), line_at(m.start()), m.group(0)))
    return src, found


def check_crate(crate, repo):
    """Every violation in one crate, as printable lines."""
    crate.root_dir = os.path.join(repo, crate.root)
    reexports = root_reexports(crate, crate.root_dir)
    errors = []
    for dirpath, _, files in os.walk(crate.root_dir):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, crate.root_dir)
            text = open(path, encoding="utf-8").read()
            src, found = edges_of(crate, rel, text, reexports)
            if src is None:
                continue
            src_layer = crate.layer(src)
            shown = os.path.relpath(path, repo)
            if src_layer is None:
                errors.append(f"{shown}: module `{src}` has no layer in the table ({crate.name})")
                continue
            for tgt, line, text_path in found:
                if tgt == src:
                    continue
                tgt_layer = crate.layer(tgt)
                if tgt_layer is None:
                    errors.append(f"{shown}:{line}: `{text_path}`: module `{tgt}` has no layer in the table")
                elif tgt_layer >= src_layer:
                    how = "the same layer as" if tgt_layer == src_layer else "a higher layer than"
                    errors.append(
                        f"{shown}:{line}: `{text_path}`: `{src}` (layer {src_layer}) imports `{tgt}` "
                        f"(layer {tgt_layer}), {how} itself"
                    )
    return errors


def check(table_path, repo):
    """All violations of the table in the repo."""
    with open(table_path, "rb") as f:
        table = tomllib.load(f)
    errors = []
    for name, spec in table.items():
        errors += check_crate(Crate(name, spec["root"], spec["layers"]), repo)
    return errors


def self_test():
    """The checker finds an upward edge, a same-layer edge, a sibling
    edge in a split folder and an unplaced module, and passes a clean
    tree."""

    def tree(files):
        d = tempfile.mkdtemp(prefix="layers-")
        for rel, text in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
        with open(os.path.join(d, "layers.toml"), "w", encoding="utf-8") as f:
            f.write('[c]\nroot = "src"\nlayers = [["low"], ["mid", "side"], ["fam/*"], ["top"]]\n')
        return d

    base = {
        "src/lib.rs": "mod low; mod mid; mod side; mod fam; mod top;\npub use mid::{helper, Thing};\n",
        "src/low.rs": "pub fn f() {}\n",
        "src/mid/mod.rs": "use crate::low;\n// crate::top in a comment is no edge\n",
        "src/side.rs": "use crate::{low::f, low};\n",
        "src/fam/mod.rs": "pub mod a; pub mod b;\n",
        "src/fam/a.rs": "use crate::mid::x;\nfn g() { crate::low::f(); }\n",
        "src/fam/b.rs": "use crate::{\n    low,\n    mid::{x, y},\n};\n",
        "src/top.rs": "use crate::fam::a;\nuse crate::helper;\n",
    }
    cases = [
        ({}, []),
        ({"src/low.rs": "use crate::mid::x;\n"}, ["src/low.rs:1: `crate::mid::x`: `low` (layer 0) imports `mid`"]),
        ({"src/low.rs": "fn f() { crate::Thing::new(); }\n"}, ["src/low.rs:1: `crate::Thing::new`: `low` (layer 0) imports `mid`"]),
        ({"src/mid/x.rs": "\n\nuse crate::side;\n"}, ["src/mid/x.rs:3: `crate::side`: `mid` (layer 1) imports `side` (layer 1), the same layer"]),
        ({"src/side.rs": "use crate::{\n    low,\n    top::z,\n};\n"}, ["src/side.rs:3: `crate::{top}`: `side` (layer 1) imports `top`"]),
        ({"src/fam/b.rs": "use super::a::thing;\n"}, ["src/fam/b.rs:1: `super::a`: `fam/b` (layer 2) imports `fam/a` (layer 2)"]),
        ({"src/fam/b.rs": "fn h() { crate::fam::a::g(); }\n"}, ["src/fam/b.rs:1: `crate::fam::a`: `fam/b` (layer 2) imports `fam/a`"]),
        ({"src/extra.rs": "fn e() {}\n"}, ["src/extra.rs: module `extra` has no layer"]),
    ]
    failed = 0
    for change, expect in cases:
        files = dict(base)
        files.update(change)
        d = tree(files)
        got = check(os.path.join(d, "layers.toml"), d)
        ok = len(got) == len(expect) and all(any(g.startswith(e) for g in got) for e in expect)
        if not ok:
            failed += 1
            print(f"self-test: for {change} expected {expect}, got {got}", file=sys.stderr)
    if failed:
        print(f"check_layers self-test: {failed} case(s) failed", file=sys.stderr)
        return 1
    print(f"check_layers self-test: {len(cases)} cases pass")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default="layers.toml")
    ap.add_argument("--repo", default=".")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    errors = check(os.path.join(args.repo, args.table), args.repo)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"{len(errors)} import(s) against the layer order of {args.table}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
