"""pytest plugin (loaded with -p outcomes_plugin) for tests/compat/run.sh.

- Appends one JSON line {"id": NODEID, "outcome": ..., "message": ...} per finished test
  to the file named by $COMPAT_OUTCOMES, as soon as the test ends (so a run that is
  killed still leaves what it did). Outcome: passed, failed, error (setup or teardown
  failed), skipped, xfailed, xpassed.
- $COMPAT_DESELECT names a file of fnmatch patterns (one per line, text after " # " and
  lines starting with "#" ignored): matching tests are deselected.
- $COMPAT_ONLY names such a file too: tests matching none of its patterns are deselected.
"""

import fnmatch
import json
import os

_state = {}


def _patterns(path):
    pats = []
    with open(path) as f:
        for ln in f:
            ln = ln.split(" # ", 1)[0].strip()
            if ln and not ln.startswith("#"):
                pats.append(ln)
    return pats


def _matches(nodeid, pats):
    label = os.environ.get("COMPAT_LABEL", "")
    return any(
        fnmatch.fnmatchcase(nodeid, p) or fnmatch.fnmatchcase(f"{label}:{nodeid}", p)
        for p in pats
    )


def pytest_collection_modifyitems(config, items):
    drop = os.environ.get("COMPAT_DESELECT")
    only = os.environ.get("COMPAT_ONLY")
    if not drop and not only:
        return
    drop_p = _patterns(drop) if drop else []
    only_p = _patterns(only) if only else None
    keep, gone = [], []
    for it in items:
        if _matches(it.nodeid, drop_p) or (only_p is not None and not _matches(it.nodeid, only_p)):
            gone.append(it)
        else:
            keep.append(it)
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = keep


def _short(report):
    text = getattr(report, "longreprtext", "") or ""
    lines = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    if lines:
        return " | ".join(lines[:3])[:300]
    text = text.strip()
    return text.splitlines()[-1][:300] if text else ""


def pytest_runtest_logreport(report):
    st = _state.setdefault(report.nodeid, {"outcome": None, "message": ""})
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            st["outcome"] = "xfailed" if report.skipped else "xpassed"
        else:
            st["outcome"] = report.outcome
    elif report.failed:
        st["outcome"] = "error" if st["outcome"] in (None, "passed") else st["outcome"]
    elif report.skipped and st["outcome"] is None:
        st["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if report.failed and not st["message"]:
        st["message"] = _short(report)
    if report.when == "teardown":
        path = os.environ.get("COMPAT_OUTCOMES")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps({"id": report.nodeid, **st}) + "\n")
        _state.pop(report.nodeid, None)
