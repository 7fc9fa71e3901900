#!/usr/bin/env python3
"""Self time per operator in a Chrome trace written by `BENCH_PROFILE=FILE
build/bench/bench_clip step ...` (LibTorch's legacy profiler): events nest
by time on each thread, and an operator's self time is its duration less
that of the operators it called. Usage: profile_summary.py trace.json [N]"""
import collections
import json
import sys


def self_times(events):
    per_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X":
            per_thread[e.get("tid")].append(e)
    totals = collections.Counter()
    calls = collections.Counter()
    for evs in per_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, name, child time]
        def close(until):
            while stack and stack[-1][0] <= until:
                end, name, children, dur = stack.pop()
                totals[name] += dur - children
                if stack:
                    stack[-1][2] += dur
        for e in evs:
            close(e["ts"])
            calls[e["name"]] += 1
            stack.append([e["ts"] + e["dur"], e["name"], 0.0, e["dur"]])
        close(float("inf"))
    return totals, calls


def main():
    events = json.load(open(sys.argv[1]))
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    totals, calls = self_times(events)
    all_us = sum(totals.values())
    print(f"{'operator':45s} {'self s':>8s} {'share':>6s} {'calls':>7s}")
    for name, us in totals.most_common(top):
        print(f"{name[:45]:45s} {us / 1e6:8.3f} {100 * us / all_us:5.1f}% {calls[name]:7d}")
    print(f"{'all':45s} {all_us / 1e6:8.3f}")


if __name__ == "__main__":
    main()
