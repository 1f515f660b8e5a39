#!/usr/bin/env python3
"""Import cycles between the files of one Rust module tree (default src/node).

Reads every `use` and every inline `crate::...`, `super::...` and `self::...` path, resolves it
to the file that defines the module it names, and prints the strongly connected components of
the file graph that have more than one file (an import cycle), largest first. Test modules
(`#[cfg(test)] mod ... { ... }`) are left out: a test may import anything.

    .ci/import_cycles.py                 # src/node
    .ci/import_cycles.py src/session     # another tree
    .ci/import_cycles.py -v              # also the edges inside each cycle

Exit status 0; the numbers are for reading, not a gate.
"""

import os
import re
import sys


def module_path(root_dir, file):
    """'src/node/cmd/mod.rs' -> ('crate','node','cmd')."""
    rel = os.path.relpath(file, root_dir)
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return ("crate",) + tuple(parts)


def strip_comments_and_tests(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # Drop `#[cfg(test)] mod name { ... }` blocks by brace matching.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_use_tree(tree):
    """'a::{b::C, d}' -> ['a::b::C', 'a::d'] (nested groups too)."""
    tree = re.sub(r"\s+", "", tree)
    for k, ch in enumerate(tree):
        if ch == "{":
            prefix = tree[:k]
            inner = tree[k + 1:tree.rfind("}")]
            items, level, start = [], 0, 0
            for j, c in enumerate(inner):
                if c == "{":
                    level += 1
                elif c == "}":
                    level -= 1
                elif c == "," and level == 0:
                    items.append(inner[start:j])
                    start = j + 1
            items.append(inner[start:])
            result = []
            for it in items:
                if it:
                    result += [prefix + e for e in expand_use_tree(it)]
            return result
    return [re.sub(r"\bas\w+$", "", tree)]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv
    tree = args[0] if args else "src/node"
    src_root = "src"
    files = []
    for d, _, names in os.walk(tree):
        files += [os.path.join(d, n) for n in names if n.endswith(".rs")]
    by_module = {module_path(src_root, f): f for f in files}
    edges = {f: set() for f in files}

    def resolve(segments):
        """Longest prefix of `segments` that is a module file of the tree."""
        for k in range(len(segments), 0, -1):
            f = by_module.get(tuple(segments[:k]))
            if f:
                return f
        return None

    for f in files:
        here = module_path(src_root, f)
        text = strip_comments_and_tests(open(f, encoding="utf-8").read())
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            paths += expand_use_tree(m.group(1))
        paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", text)
        for p in paths:
            segs = [s for s in p.split("::") if s and s != "*"]
            if not segs:
                continue
            if segs[0] == "crate":
                target = segs
            else:
                # Relative: self/super from this module; a bare first segment is a child
                # module (2018 paths) only if such a child exists.
                base = list(here)
                i = 0
                if segs[0] not in ("self", "super"):
                    if tuple(base + segs[:1]) not in by_module:
                        continue
                while i < len(segs) and segs[i] in ("self", "super"):
                    if segs[i] == "super":
                        base = base[:-1]
                    i += 1
                target = base + segs[i:]
            dst = resolve(target)
            if dst and dst != f:
                edges[f].add(dst)

    # Tarjan's strongly connected components, iteratively.
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]

    def strongconnect(v):
        work = [(v, iter(sorted(edges[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                sccs.append(comp)

    for v in sorted(files):
        if v not in index:
            strongconnect(v)
    cycles = sorted((c for c in sccs if len(c) > 1), key=len, reverse=True)
    n_edges = sum(len(e) for e in edges.values())
    print(f"{tree}: {len(files)} files, {n_edges} file-to-file imports, "
          f"{len(cycles)} cycle(s), largest {len(cycles[0]) if cycles else 0} files")
    for c in cycles:
        members = sorted(os.path.relpath(x, tree) for x in c)
        print(f"  {len(c)} files: {' '.join(members)}")
        if verbose:
            inside = set(c)
            for a in sorted(c):
                for b in sorted(edges[a] & inside):
                    print(f"    {os.path.relpath(a, tree)} -> {os.path.relpath(b, tree)}")


if __name__ == "__main__":
    main()
