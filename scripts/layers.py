#!/usr/bin/env python3
"""Checks the import direction of mcp-expose's modules (issue 16).

Every top-level module of `mcp-expose/src` sits on a layer (LAYERS, top first). A module may use
modules on its own layer's lower neighbours only: an import of a module on a higher layer, or
of another module on the same layer, is an error, and so is a cycle. Sub-modules of one
top-level module may use each other, except where SUBLAYERS orders them too.

Run: python3 scripts/layers.py  (exit 1 and one line per violation when the graph is wrong;
--graph prints the module graph).
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "mcp-expose" / "src"

# Top first. Each line is one layer; modules on a line must not use each other.
LAYERS = [
    ["cli"],
    ["serve"],
    ["bridge", "tunnel", "connect"],
    ["mount"],
    ["transport"],
    ["security"],
    ["handler"],
    ["state"],
    ["registry"],
    ["tool", "resource", "prompt"],
    ["context"],
    ["task"],
    ["session"],
    ["observe"],
    ["content", "process", "store"],
    ["web"],
    ["jsonrpc", "backoff", "flags"],
    ["error"],
]

# Within a top-level module, sub-modules that must not be used from below (top first);
# sub-modules on no line are free.
SUBLAYERS = {
    "serve": [
        ["mod"],
        ["run"],
        ["routes"],
        ["app"],
        ["tunneling", "no_tunnel"],
        ["accept", "options", "gate", "console", "nginx"],
    ],
    "bridge": [
        ["mod"],
        ["http", "ws", "sse"],
        ["shared"],
        ["child"],
        ["routes", "health"],
        ["stream", "envelope"],
        ["scan"],
    ],
    "security": [["gate", "auth"], ["oauth", "rate", "sessions"], ["jwks", "policy", "principal", "shared"]],
}

# Imports no layer order forbids but the design does: serve composes what it is given.
FORBIDDEN = {("serve", "bridge")}

IGNORED = {"lib", "fuzz", "bin"}  # the crate root (re-exports) and test-only code

USE_GROUP = re.compile(r"\bcrate::\{([^;]*?)\}\s*;", re.S)
PATH = re.compile(r"\bcrate::(\w+)")


def top_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def sub_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    if len(rel.parts) == 1:
        return "mod"
    return rel.parts[1].removesuffix(".rs")


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod tests { ... }` blocks: tests may reach anywhere."""
    out = []
    i = 0
    marker = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
    while True:
        m = marker.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        depth = 1
        j = m.end()
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        i = j
    return "".join(out)


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def root_reexports() -> dict:
    """Names the crate root re-exports, by the module they come from."""
    lib = strip_comments((SRC / "lib.rs").read_text())
    names = {}
    for m in re.finditer(r"^pub use (\w+)::(\{[^}]*\}|\w+)", lib, re.M):
        module, items = m.group(1), m.group(2).strip("{}")
        for item in re.split(r"[,\s]+", items):
            item = item.split(" as ")[-1].strip()
            if item[:1].isupper():
                names[item] = module
    return names


def uses(text: str, reexports: dict) -> set:
    found = set()
    for group in USE_GROUP.finditer(text):
        depth = 0
        name = ""
        for ch in group.group(1) + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                first = re.match(r"\s*(\w+)", name)
                if first:
                    found.add(first.group(1))
                name = ""
                continue
            name += ch
    for m in PATH.finditer(text):
        found.add(m.group(1))
    return {reexports.get(n, n) for n in found}


def sub_uses(text: str, top: str, nested: bool) -> set:
    found = set()
    for m in re.finditer(r"\bcrate::%s::(\w+)" % top, text):
        found.add(m.group(1))
    # In a file of a sub-module's own directory, `super::` is that sub-module.
    pattern = r"\bsuper::super::(\w+)" if nested else r"\bsuper::(\w+)"
    for m in re.finditer(pattern, text):
        found.add(m.group(1))
    return found


def main() -> int:
    layer_of = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    reexports = root_reexports()
    graph = {}
    errors = []
    files = sorted(p for p in SRC.rglob("*.rs") if top_of(p) not in IGNORED)
    tops = {top_of(p) for p in files}
    for top in sorted(tops - set(layer_of)):
        errors.append(f"module `{top}` is on no layer: add it to LAYERS in {Path(__file__).name}")
    for path in files:
        text = strip_comments(strip_tests(path.read_text()))
        top = top_of(path)
        for used in uses(text, reexports):
            if used == top or used not in tops:
                continue
            graph.setdefault(top, set()).add(used)
            if (top, used) in FORBIDDEN:
                errors.append(f"{path.relative_to(SRC)}: `{top}` uses `{used}`, which it must not name")
            if top in layer_of and used in layer_of and layer_of[used] <= layer_of[top]:
                how = "the same layer" if layer_of[used] == layer_of[top] else "a higher layer"
                errors.append(f"{path.relative_to(SRC)}: `{top}` uses `{used}`, on {how}")
        if top in SUBLAYERS and len(path.relative_to(SRC).parts) > 1:
            order = {m: i for i, layer in enumerate(SUBLAYERS[top]) for m in layer}
            sub = sub_of(path)
            nested = len(path.relative_to(SRC).parts) > 2
            for used in sub_uses(text, top, nested):
                if sub in order and used in order and order[used] < order[sub] and used != sub:
                    errors.append(
                        f"{path.relative_to(SRC)}: `{top}::{sub}` uses `{top}::{used}`, above it"
                    )
    if "--graph" in sys.argv:
        for top in sorted(graph):
            print(f"{top} -> {', '.join(sorted(graph[top]))}")
    # Cycles (also among modules the layers do not order yet).
    state = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt]
                errors.append("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    for error in dict.fromkeys(errors):
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
