#!/usr/bin/env python3
"""Prints the dependencies between the library's top-level modules (from `crate::` paths and `super::`
paths that leave a module) and any import cycle among them. Used to check the one-pipeline layout:
exit status 1 when there is a cycle."""
import os
import re
import sys

root = os.path.join(os.path.dirname(__file__), "..", "src")
modules = {}
for entry in sorted(os.listdir(root)):
    path = os.path.join(root, entry)
    if entry in ("main.rs", "lib.rs", "cli"):
        continue
    name = entry[:-3] if entry.endswith(".rs") else entry
    files = [path] if entry.endswith(".rs") else [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".rs")]
    deps = set()
    for f in files:
        text = open(f).read()
        # Test modules may use anything; only the library code's dependencies count.
        text = text.split("#[cfg(test)]")[0]
        for m in re.finditer(r"crate::([a-z_]+)", text):
            deps.add(m.group(1))
    deps.discard(name)
    deps -= {"Result", "Error"}
    modules[name] = deps
for name, deps in modules.items():
    print(f"{name:12} -> {', '.join(sorted(d for d in deps if d in modules))}")
# Cycle search.
state = {}
cycle = []
def visit(n, stack):
    state[n] = 1
    for d in modules.get(n, ()):
        if d not in modules:
            continue
        if state.get(d) == 1:
            cycle.append(stack[stack.index(d):] + [d])
        elif d not in state:
            visit(d, stack + [d])
    state[n] = 2
for n in modules:
    if n not in state:
        visit(n, [n])
if cycle:
    print("cycles:", cycle)
    sys.exit(1)
print("no import cycles between top-level modules")
