#!/usr/bin/env python3
"""Fails on a dependency no source of its crate names (what `cargo machete` checks, without
installing it): for each workspace crate, every name in [dependencies], [dev-dependencies] and
[build-dependencies] must appear as a Rust path (`name::`, `use name`, `name!`) in the crate's
sources. Dependencies that are needed without being named (a feature switch on another crate)
are listed in the crate's Cargo.toml under [package.metadata.unused-deps] ignored = [...].

Run: python3 scripts/unused-deps.py
"""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def crates():
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    for member in workspace.get("workspace", {}).get("members", []):
        for path in sorted(ROOT.glob(member)):
            if (path / "Cargo.toml").exists():
                yield path


def main() -> int:
    errors = []
    for crate in crates():
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        ignored = set(
            manifest.get("package", {})
            .get("metadata", {})
            .get("unused-deps", {})
            .get("ignored", [])
        )
        names = {}
        for table in ("dependencies", "dev-dependencies", "build-dependencies"):
            for name, spec in manifest.get(table, {}).items():
                package = spec.get("package", name) if isinstance(spec, dict) else name
                names[name] = package
        text = "\n".join(
            p.read_text(errors="replace")
            for p in crate.rglob("*.rs")
            if "target" not in p.relative_to(crate).parts
        )
        for name in sorted(names):
            if name in ignored:
                continue
            ident = name.replace("-", "_")
            if not re.search(r"(?<![\w:])%s(::|!|\s*;|\s+as\b)" % re.escape(ident), text):
                errors.append(f"{crate.relative_to(ROOT)}/Cargo.toml: `{name}` is never used")
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
