#!/usr/bin/python3
"""report.py - the summary table of scripts/bench: lenet-omp next to PyTorch (when it ran), with
ratios, plus peak memory and the full-run wall time. Standard library only.

Usage: bench/report.py OURS.json [--torch TORCH.json] [--runs RUNS.json] [--json OUT]
  OURS.json   from lenet-bench --json
  TORCH.json  from bench/pytorch_lenet.py --json
  RUNS.json   {"epoch1": {"wall_s", "rss_kib", "threads"}, "full": [{"threads", "wall_s",
              "rss_kib", "total_s"}]} written by scripts/bench
"""
import argparse
import json

NOISY = 0.10  # a section during which other processes used more of the cores is marked '*'


def index(doc):
    return {(l["section"], l["threads"], l["batch"]): l for l in doc["lines"]} if doc else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("--torch")
    ap.add_argument("--runs")
    ap.add_argument("--json")
    a = ap.parse_args()
    ours = json.load(open(a.ours))
    torch = json.load(open(a.torch)) if a.torch else None
    runs = json.load(open(a.runs)) if a.runs else {}
    o, t = index(ours), index(torch)
    threads = sorted({k[1] for k in o if k[0] == "train"})
    noisy = False

    def cell(line):
        nonlocal noisy
        if not line:
            return "-"
        mark = ""
        if line.get("others_busy", 0) > NOISY:
            mark, noisy = "*", True
        return f"{line['median']:.0f}{mark}"

    print()
    print(f"== summary: lenet-omp{' vs PyTorch ' + torch['version'] if torch else ''} "
          f"({ours['cpu']}, {ours['cores']} cores, {ours['isa']}) ==")
    head = f"{'images/s (median of ' + str(ours['repeats']) + ')':<28}"
    for n in threads:
        head += f"{'lenet-omp ' + str(n) + 't':>14}"
        if torch:
            head += f"{'PyTorch ' + str(n) + 't':>13}{'ratio':>8}"
    print(head)
    rows = [("train", 8), ("train", 64), ("eval", ours["spec"]["eval_batch"])]
    for section, batch in rows:
        row = f"{section + ' batch ' + str(batch):<28}"
        for n in threads:
            mine, theirs = o.get((section, n, batch)), t.get((section, n, batch))
            row += f"{cell(mine):>14}"
            if torch:
                ratio = f"{mine['median'] / theirs['median']:.2f}x" if mine and theirs else "-"
                row += f"{cell(theirs):>13}{ratio:>8}"
        print(row)

    # Scaling: each thread count's throughput against one thread's.
    if len(threads) > 1 and threads[0] == 1:
        for section, batch in rows:
            row = f"{'  ' + section + ' ' + str(batch) + ': Nt / 1t':<28}"
            base = o.get((section, 1, batch))
            for n in threads:
                mine = o.get((section, n, batch))
                speedup = f"{mine['median'] / base['median']:.2f}x" if mine and base else "-"
                row += f"{speedup:>14}" + (" " * 21 if torch else "")
            print(row)

    # Achieved GFLOP/s of lenet-omp's training and evaluation against the measured FMA peak.
    row = f"{'lenet-omp GFLOP/s (% peak)':<28}"
    for n in threads:
        peak = o[("peak_measured", n, 0)]["median"]
        train8 = o[("train", n, 8)]["median"] * ours["train_flops_per_image"] / 1e9
        row += f"{f'{train8:.1f} ({100 * train8 / peak if peak else 0:.1f}%)':>14}"
        if torch:
            row += " " * 21
    print(row + "  (train batch 8)")
    row = f"{'measured FMA peak GFLOP/s':<28}"
    for n in threads:
        row += f"{o[('peak_measured', n, 0)]['median']:>14.1f}" + (" " * 21 if torch else "")
    print(row + f"  (the upper bound {ours['peak_assumed_gflops_per_core']:.0f}/core at "
                f"{ours['mhz']:.0f} MHz assumes 2 full-width FMA units)")

    print()
    print(f"peak RSS, benchmark process: lenet-bench {ours['peak_rss_kib'] / 1024:.1f} MB" +
          (f", PyTorch (python + torch) {torch['peak_rss_kib'] / 1024:.1f} MB" if torch else ""))
    def flag(run):
        nonlocal noisy
        if run.get("others_busy", 0) > NOISY:
            noisy = True
            return "*"
        return ""

    e1 = runs.get("epoch1")
    if e1:
        print(f"peak RSS, lenet-omp --epochs 1 ({e1['threads']} threads): "
              f"{e1['rss_kib'] / 1024:.1f} MB (wall {e1['wall_s']:.1f} s{flag(e1)})")
    for f in runs.get("full", []) or []:
        print(f"FULL seed schedule ({ours['config']}, {f['threads']} thread"
              f"{'s' if f['threads'] > 1 else ''}): wall {f['wall_s']:.1f} s{flag(f)} "
              f"(training log: {f['total_s']} s), peak RSS {f['rss_kib'] / 1024:.1f} MB")
    if noisy:
        print(f"* other processes used more than {NOISY:.0%} of the cores during that section: "
              "unreliable, rerun on an idle machine (scripts/bench --wait-idle)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"lenet_omp": ours, "pytorch": torch, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
