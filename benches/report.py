#!/usr/bin/env python3
"""Prints tls-core against raw rustls from criterion's results, as a table of ratios.

Reads criterion's results for `cargo bench --bench core` (<dir>/**/<baseline>/benchmark.json
and estimates.json) and pairs `<case>/tls-core` with `<case>/raw`. The ratio is
raw median time / tls-core median time: tls-core's speed relative to raw, 1.00 is parity,
above 1 is faster. `bulk/aes128gcm/64B-coalesced` is compared with `bulk/aes128gcm/64B/raw`.

With several baselines (runs saved with `-- --save-baseline NAME`), each run gives its own
ratio (both sides measured minutes apart, under the same load) and the table shows the
median ratio with the range: on a shared machine that is steadier than one run.

Usage:
  python3 benches/report.py [--dir DIR] [--baseline NAME ...]
  (default dir: $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion, else target/criterion;
   default baseline: `new`, the latest run)
"""

import argparse
import json
import os
import statistics
import sys

# Targets from the issue: tls-core's speed as a fraction of raw's.
TARGET = {"bulk": 0.97, "handshake": 0.97}
COALESCED_TARGET = 10.0
COALESCED_BASELINE = {"bulk/aes128gcm/64B-coalesced": "bulk/aes128gcm/64B"}
IDLE_TARGET = 6000


def load(root, baseline):
    """Maps full benchmark id -> (median ns per iteration, throughput dict or None)."""
    results = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != baseline or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        results[bench["full_id"]] = (est["median"]["point_estimate"], bench.get("throughput"))
    return results


def rate(ns, throughput):
    """Human rate for one iteration of `ns` nanoseconds."""
    if throughput and "Bytes" in throughput:
        return f"{throughput['Bytes'] / ns * 1e3:.1f} MB/s"
    if throughput and "Elements" in throughput:
        return f"{throughput['Elements'] / ns * 1e9:.0f} /s"
    return f"{ns / 1e3:.1f} us"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=os.environ.get("CRITERION_HOME") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "criterion"))
    parser.add_argument("--baseline", action="append",
                        help="a saved baseline (repeatable); default: new")
    args = parser.parse_args()
    baselines = args.baseline or ["new"]
    runs = [load(args.dir, b) for b in baselines]
    if not any(runs) and not os.path.exists(os.path.join(args.dir, "sockets.json")):
        sys.exit(f"no criterion results under {args.dir}; run `cargo bench --bench core` first")

    ids = set().union(*runs)
    cases = sorted({i.rsplit("/", 1)[0] for i in ids
                    if i.endswith("/tls-core") or i.endswith("/raw")},
                   key=lambda c: (not c.startswith("bulk"), c))
    many = len(runs) > 1
    print(f"runs: {', '.join(baselines)}  (ratio = raw time / tls-core time"
          + ("; median over runs [min-max]" if many else "") + ")")
    header = (f"{'case':<30} | {'tls-core':>12} | {'raw':>12} | {'ratio':>6} |"
              + (f" {'range':>11} |" if many else "") + " target")
    print(header)
    print("-" * len(header))
    missed = 0
    for case in cases:
        base_case = COALESCED_BASELINE.get(case, case)
        pairs = [(r[f"{case}/tls-core"], r[f"{base_case}/raw"]) for r in runs
                 if f"{case}/tls-core" in r and f"{base_case}/raw" in r]
        if not pairs:
            continue
        ratios = [raw[0] / core[0] for core, raw in pairs]
        ratio = statistics.median(ratios)
        throughput = pairs[0][0][1]
        core_ns = statistics.median(core[0] for core, _ in pairs)
        raw_ns = statistics.median(raw[0] for _, raw in pairs)
        target = COALESCED_TARGET if case in COALESCED_BASELINE else TARGET.get(
            case.split("/", 1)[0])
        verdict = ""
        if target is not None:
            ok = ratio >= target
            missed += not ok
            verdict = f">= {target:g} {'ok' if ok else 'MISSED'}"
        raw_label = rate(raw_ns, throughput) + ("*" if base_case != case else "")
        spread = f" {min(ratios):5.3f}-{max(ratios):5.3f} |" if many else ""
        print(f"{case:<30} | {rate(core_ns, throughput):>12} | {raw_label:>12} | "
              f"{ratio:>6.3f} |{spread} {verdict}")
    if any(c in COALESCED_BASELINE for c in cases):
        print("* raw with uncoalesced 64 B writes (bulk/aes128gcm/64B/raw)")

    paired_path = os.path.join(args.dir, "paired.json")
    if os.path.exists(paired_path):
        with open(paired_path) as f:
            paired = json.load(f)
        print()
        print("paired run (PAIRED=...: tls-core and raw timed alternately, median of the "
              "per-round ratios; steadier on a shared machine)")
        header = f"{'case':<30} | {'tls-core':>12} | {'raw':>12} | {'ratio':>6} | target"
        print(header)
        print("-" * len(header))
        for case, m in paired.items():
            target = COALESCED_TARGET if case in COALESCED_BASELINE else TARGET.get(
                case.split("/", 1)[0])
            verdict = ""
            if target is not None:
                ok = m["ratio"] >= target
                missed += not ok
                verdict = f">= {target:g} {'ok' if ok else 'MISSED'}"
            print(f"{case:<30} | {m['core_ns'] / 1e3:>9.1f} us | {m['raw_ns'] / 1e3:>9.1f} us | "
                  f"{m['ratio']:>6.3f} | {verdict}")

    memory = os.path.join(args.dir, "idle-memory.json")
    if os.path.exists(memory):
        with open(memory) as f:
            mem = json.load(f)
        print()
        print("idle established session, bytes = live heap + the struct itself "
              f"(target for tls-core: <= {IDLE_TARGET} per side)")
        print(f"{'case':<38} | {'client':>7} | {'server':>7} | {'pair':>7} | heap client/server")
        for name, m in mem.items():
            c, s = m["client"], m["server"]
            verdict = ""
            if name.endswith("/tls-core"):
                ok = max(c, s) <= IDLE_TARGET
                missed += not ok
                verdict = "  ok" if ok else "  MISSED"
            print(f"{name:<38} | {c:>7} | {s:>7} | {c + s:>7} | "
                  f"{m['client_heap']}/{m['server_heap']}{verdict}")
    missed += sockets_table(args.dir)
    print()
    print(f"{missed} case(s) below target" if missed else "every case meets its target")


def sockets_table(root):
    """Prints `cargo bench --bench sockets`' results (sockets.json); cases below target."""
    path = os.path.join(root, "sockets.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        data = json.load(f)
    settings = data["settings"]
    print()
    print(f"sockets over 127.0.0.1 (benches/sockets.rs: {settings['conns']} connections per "
          f"slice, {settings['rounds']} rounds; bulk {settings['bulk_bytes'] >> 20} MiB x "
          f"{settings['bulk_rounds']}; GLIBC_TUNABLES={settings['glibc_tunables']!r}); "
          "ratio = ours / peer, median of per-round ratios")
    header = (f"{'case':<31} | {'peer':<18} | {'ours':>16} | {'peer':>16} | {'ratio':>6} | "
              f"{'range':>11} | target")
    print(header)
    print("-" * len(header))
    missed = 0
    for case, m in data["cases"].items():
        if m["target"]:
            ok = m["ratio"] >= m["target"]
            missed += not ok
            verdict = f">= {m['target']:g} {'ok' if ok else 'MISSED'}"
        else:
            verdict = "(reference)"
        unit = m["unit"]
        print(f"{case:<31} | {m['peer']:<18} | {m['ours']:>7.0f} {unit:<8} | "
              f"{m['peer_rate']:>7.0f} {unit:<8} | {m['ratio']:>6.3f} | "
              f"{m['min']:>5.2f}-{m['max']:<5.2f} | {verdict}")
    return missed


if __name__ == "__main__":
    main()
