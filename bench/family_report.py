#!/usr/bin/python3
"""family_report.py - the table of scripts/bench --family: for every config, lenet-omp's training
(at the config's batch size) and evaluation throughput next to PyTorch's from the same run, the
ratios, the share of the FMA peak lenet-bench measured in that run, and both peak RSS.
Standard library only.

Usage: bench/family_report.py [--json OUT] NAME=OURS.json[,TORCH.json] ...
"""
import argparse
import json
import os

NOISY = 0.10  # a section during which other processes used more of the cores is marked '*'


def line(doc, section, batch=None):
    """The result line of a section (the highest thread count), or None."""
    if not doc:
        return None
    found = [l for l in doc["lines"] if l["section"] == section and
             (batch is None or l["batch"] == batch)]
    return max(found, key=lambda l: l["threads"]) if found else None


def fmt(l):
    if not l:
        return "-"
    return f"{l['median']:,.0f}" + ("*" if l.get("others_busy", 0) > NOISY else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--json")
    a = ap.parse_args()
    rows, noisy = [], False
    for run in a.runs:
        name, files = run.split("=", 1)
        paths = files.split(",")
        ours = json.load(open(paths[0]))
        torch = json.load(open(paths[1])) if len(paths) > 1 and os.path.exists(paths[1]) else None
        batch = ours["spec"]["train_batches"][0]
        peak = line(ours, "peak_measured")
        row = {"config": name, "batch": batch, "threads": peak["threads"] if peak else None,
               "peak_gflops": peak["median"] if peak else None,
               "rss_mb": ours["peak_rss_kib"] / 1024.0,
               "torch_rss_mb": torch["peak_rss_kib"] / 1024.0 if torch else None}
        for section, b, flops in (("train", batch, ours["train_flops_per_image"]),
                                  ("eval", ours["spec"]["eval_batch"],
                                   ours["fwd_flops_per_image"])):
            o, t = line(ours, section, b), line(torch, section, b)
            noisy |= any(x and x.get("others_busy", 0) > NOISY for x in (o, t))
            row[section] = {
                "ours": o["median"] if o else None, "torch": t["median"] if t else None,
                "ours_cell": fmt(o), "torch_cell": fmt(t),
                "ratio": o["median"] / t["median"] if o and t else None,
                "peak_share": (o["median"] * flops / 1e9 / peak["median"]
                               if o and peak else None)}
        rows.append(row)

    def r(x):
        return f"{x:.2f}x" if x is not None else "-"

    def p(x):
        return f"{100 * x:.1f}%" if x is not None else "-"

    threads = rows[0]["threads"] if rows else "?"
    print(f"\n== family: lenet-omp vs PyTorch, {threads} threads, images/s (median) ==")
    print("| config | batch | train | PyTorch | ratio | of peak | eval (64) | PyTorch | ratio "
          "| of peak | RSS MB | PyTorch RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        tr, ev = row["train"], row["eval"]
        trss = f"{row['torch_rss_mb']:.0f}" if row["torch_rss_mb"] else "-"
        print(f"| {row['config']} | {row['batch']} | {tr['ours_cell']} | {tr['torch_cell']} | "
              f"{r(tr['ratio'])} | {p(tr['peak_share'])} | {ev['ours_cell']} | "
              f"{ev['torch_cell']} | {r(ev['ratio'])} | {p(ev['peak_share'])} | "
              f"{row['rss_mb']:.0f} | {trss} |")
    if rows and rows[0]["peak_gflops"]:
        print(f"measured FMA peak: {rows[0]['peak_gflops']:.1f} GFLOP/s on {threads} threads "
              f"(per config, each run measures its own)")
    if noisy:
        print("* other processes used over 10% of the cores during that section: unreliable")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
