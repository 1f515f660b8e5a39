"""Compare per-test outcomes of a direct run and a through-sluice run (tests/compat/run.sh).

usage: compare.py KNOWN_DIFFERENCES SUMMARY_OUT LABEL DIRECT SLUICE KNOWN_RUN [LABEL ...]

DIRECT, SLUICE and KNOWN_RUN are JSON-lines files written by outcomes_plugin.py
(KNOWN_RUN: the known-difference tests, run through sluice on their own; may be absent).
A difference is a test that passed directly (passed, xfailed or xpassed) and not through
sluice. Tests matching a known-differences pattern (fnmatch on NODEID or LABEL:NODEID)
are tolerated. Exit status 1 if any difference is not listed.
"""

import fnmatch
import json
import os
import sys

GOOD = {"passed", "xfailed", "xpassed"}


def load_known(path):
    """Patterns, and the subset marked "[isolate]" (run apart, not expected to differ)."""
    pats, isolate = [], set()
    with open(path) as f:
        for ln in f:
            pat, _, reason = ln.partition(" # ")
            pat = pat.strip()
            if pat and not pat.startswith("#"):
                pats.append(pat)
                if reason.strip().startswith("[isolate]"):
                    isolate.add(pat)
    return pats, isolate


def load(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for ln in f:
                rec = json.loads(ln)
                out[rec["id"]] = rec
    return out


def counts(o):
    c = {}
    for r in o.values():
        c[r["outcome"]] = c.get(r["outcome"], 0) + 1
    order = ["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
    return ", ".join(f"{c[k]} {k}" for k in order + sorted(set(c) - set(order)) if k in c)


def main(argv):
    known, isolate = load_known(argv[1])
    summary = open(argv[2], "w")
    rest = argv[3:]
    used, unexpected, n_known, fixed = set(), [], 0, []

    def out(s=""):
        print(s)
        summary.write(s + "\n")

    for i in range(0, len(rest), 4):
        label, dpath, spath, kpath = rest[i : i + 4]
        d, s, k = load(dpath), load(spath), load(kpath)
        merged = dict(s)
        merged.update(k)

        def is_known(nid):
            hit = [p for p in known if fnmatch.fnmatchcase(nid, p) or fnmatch.fnmatchcase(f"{label}:{nid}", p)]
            used.update(hit)
            return bool(hit)

        out(f"== {label}")
        out(f"   direct: {len(d)} tests: {counts(d)}")
        out(f"   sluice: {len(merged)} tests: {counts(merged)}")
        diffs = []
        for nid in sorted(d):
            a = d[nid]["outcome"]
            b = merged.get(nid, {"outcome": "missing", "message": "not run through sluice"})
            if a in GOOD and b["outcome"] not in GOOD:
                diffs.append((nid, b))
        out(f"   passed direct, not through sluice: {len(diffs)}")
        for nid, b in diffs:
            if is_known(nid):
                n_known += 1
                tag = "known"
            else:
                unexpected.append(f"{label}:{nid}")
                tag = "NEW  "
            out(f"   {tag} {nid} [{b['outcome']}] {b['message']}")
        for nid, r in sorted(k.items()):
            if r["outcome"] in GOOD and d.get(nid, {}).get("outcome") in GOOD:
                hit = [p for p in known if fnmatch.fnmatchcase(nid, p) or fnmatch.fnmatchcase(f"{label}:{nid}", p)]
                used.update(hit)
                if not set(hit) <= isolate:
                    fixed.append(f"{label}:{nid}")
    if fixed:
        out("== listed in known-differences but passed through sluice (stale entry?):")
        for f in fixed:
            out(f"   {f}")
    stale = [p for p in known if p not in used and p not in isolate]
    if stale:
        out("== known-differences patterns that matched no difference this run:")
        for p in stale:
            out(f"   {p}")
    out(f"== {len(unexpected)} unexpected difference(s), {n_known} known")
    summary.close()
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
