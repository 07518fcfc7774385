#!/usr/bin/env python3
"""Summarise a Stryker.NET mutation-report.json: the score per file and every mutant left to judge.

usage: scripts/stryker-survivors.py OUT/reports/mutation-report.json [--list]

The score is Stryker's: detected (killed + timeout) / (detected + survived + no coverage). With --list, each survivor
and uncovered mutant is printed as file:line, mutator, the original source line and the replacement, which is what a
verdict in docs/testing.md needs.
"""
import json
import os
import sys

DETECTED = {"Killed", "Timeout"}
UNDETECTED = {"Survived", "NoCoverage"}


def main(path, show):
    report = json.load(open(path))
    totals = {"detected": 0, "Survived": 0, "NoCoverage": 0}
    rows = []
    for name, entry in sorted(report["files"].items()):
        source = entry["source"].splitlines()
        counts = {"detected": 0, "Survived": 0, "NoCoverage": 0}
        left = []
        for m in entry["mutants"]:
            status = m["status"]
            if status in DETECTED:
                counts["detected"] += 1
            elif status in UNDETECTED:
                counts[status] += 1
                left.append(m)
        if sum(counts.values()) == 0:
            continue
        for k in totals:
            totals[k] += counts[k]
        counted = sum(counts.values())
        rows.append((os.path.basename(name), counts, 100.0 * counts["detected"] / counted))
        if show:
            for m in sorted(left, key=lambda m: m["location"]["start"]["line"]):
                line = m["location"]["start"]["line"]
                text = source[line - 1].strip() if line <= len(source) else ""
                print(f"{os.path.basename(name)}:{line} [{m['status']}] {m['mutatorName']}: {text[:110]}  ==>  {m.get('replacement', '')[:110]}")
    print(f"{'file':40} {'detected':>8} {'survived':>8} {'no cov':>6} {'score':>7}")
    for name, c, score in rows:
        print(f"{name:40} {c['detected']:8} {c['Survived']:8} {c['NoCoverage']:6} {score:6.2f}%")
    counted = sum(totals.values())
    print(f"{'all':40} {totals['detected']:8} {totals['Survived']:8} {totals['NoCoverage']:6} {100.0 * totals['detected'] / counted:6.2f}%")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2])
    main(sys.argv[1], "--list" in sys.argv[2:])
