"""What both ablation scripts share: running training jobs side by side, mean ± std, table and plot.

An ablation is a list of ``Run`` s (one variant, one seed, one training command). Each run keeps
its own run directory, so an interrupted ablation resumes: finished runs are read back, not
trained again. Results are a JSON report, a markdown table and a bar plot with one dot per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.machine import describe

REPO = Path(__file__).resolve().parents[1]


def parse_arguments(doc: str, name: str, iters: int, trainer: str) -> argparse.Namespace:
    """The options every ablation script takes (seeds, schedule, concurrency, paths, overrides)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iters", type=int, default=iters, help="training iterations per run (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at the same time (one torch thread each)")
    ap.add_argument("--runs-dir", default=f"runs/{name}")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / name),
                    help="report path without suffix (.json, .md and .png are written)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help=f"extra {trainer} overrides for every run")
    args = ap.parse_args()
    if len(args.seeds) < 2:
        ap.error("--seeds: give at least two seeds (the report shows a spread)")
    if args.iters < 1 or args.jobs < 1:
        ap.error(f"--iters and --jobs must be >= 1, got --iters {args.iters} --jobs {args.jobs}")
    return args


def report_header(args: argparse.Namespace, script: str, elapsed_s: float) -> dict:
    """What every ablation report records about how it was produced."""
    return {"machine": describe("cpu"), "command": " ".join([f"python benchmarks/{script}", *sys.argv[1:]]),
            "iters": args.iters, "seeds": args.seeds, "jobs": args.jobs, "extra_overrides": args.overrides,
            "elapsed_s_this_invocation": elapsed_s}


def write_report(report: dict, table: str, columns: Sequence[tuple[str, str, int]], title: str, out: Path) -> None:
    """``out``.json (the report), .md (the table) and .png (the plot); print the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    bar_plot(report["summary"], columns, title, out.with_suffix(".png"))
    print(table)
    print(f"\n{len(report['runs'])} runs, {report['elapsed_s_this_invocation'] / 60:.1f} min in this invocation; "
          f"wrote {out}.json/.md/.png")


@dataclass(frozen=True)
class Run:
    """One training run of an ablation: ``command`` (argv, extra environment ``env``) trains into
    ``run_dir`` and writes ``run_dir/metrics.json`` last."""

    variant: str
    seed: int
    command: list[str]
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.json"


def run_all(runs: Sequence[Run], jobs: int, read_metrics: Callable[[Path], dict]) -> list[dict]:
    """Train every unfinished run, ``jobs`` at a time; return one record per run (metrics + wall time).

    Each run's console output goes to ``<run_dir>/ablation.log``. A failed run does not stop
    the others (what they finish is kept for the next invocation); then the first failure
    raises with the path of its log."""
    def one(run: Run) -> dict:
        wall = None
        if not run.metrics_path.is_file():
            run.run_dir.mkdir(parents=True, exist_ok=True)
            log = run.run_dir / "ablation.log"
            print(f"  start {run.variant} seed {run.seed}: {run.run_dir}", flush=True)
            start = time.perf_counter()
            with open(log, "w") as out:
                code = subprocess.run(run.command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                      env=os.environ | run.env).returncode
            wall = time.perf_counter() - start
            if code != 0 or not run.metrics_path.is_file():
                raise RuntimeError(f"{run.variant} seed {run.seed} failed (exit {code}); see {log}")
            (run.run_dir / "ablation_wall_s.txt").write_text(f"{wall:.1f}\n")
            print(f"  done  {run.variant} seed {run.seed} in {wall / 60:.1f} min", flush=True)
        elif (run.run_dir / "ablation_wall_s.txt").is_file():
            wall = float((run.run_dir / "ablation_wall_s.txt").read_text())
        return {"variant": run.variant, "seed": run.seed, "run_dir": os.path.relpath(run.run_dir, REPO),
                "wall_s": wall, **read_metrics(run.metrics_path)}

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, runs))


def aggregate(records: Sequence[dict], variants: Sequence[str], metrics: Sequence[str]) -> dict[str, dict]:
    """Per variant and metric: mean, sample std (n - 1) and the per-seed values in seed order."""
    summary = {}
    for variant in variants:
        rows = sorted((r for r in records if r["variant"] == variant), key=lambda r: r["seed"])
        summary[variant] = {}
        for metric in metrics:
            values = [r[metric] for r in rows]
            summary[variant][metric] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values,
            }
    return summary


def markdown_table(summary: dict[str, dict], columns: Sequence[tuple[str, str, int]],
                   paper: dict[str, str], paper_header: str, baseline_of: dict[str, str]) -> str:
    """Rows ``variant | metric mean ± std (Δ vs its baseline) ... | paper``; columns are (key, header,
    decimals); ``baseline_of`` maps each variant to the variant its Δ is taken against."""
    header = "| variant | " + " | ".join(h for _, h, _ in columns) + f" | {paper_header} |"
    lines = [header, "|---|" + "---:|" * len(columns) + "---:|"]
    for variant, metrics in summary.items():
        cells = []
        for key, _, decimals in columns:
            m = metrics[key]
            cell = f"{m['mean']:.{decimals}f} ± {m['std']:.{decimals}f}"
            baseline = baseline_of[variant]
            if variant != baseline:
                cell += f" ({m['mean'] - summary[baseline][key]['mean']:+.{decimals}f})"
            cells.append(cell)
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {paper.get(variant, '—')} |")
    return "\n".join(lines)


def bar_plot(summary: dict[str, dict], columns: Sequence[tuple[str, str, int]], title: str, path: Path) -> None:
    """One panel per metric: bars at the mean, error bars ± std, one dot per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(summary)
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    for ax, (key, header, _) in zip(axes[0], columns, strict=True):
        means = [summary[v][key]["mean"] for v in variants]
        stds = [summary[v][key]["std"] for v in variants]
        xs = range(len(variants))
        ax.bar(xs, means, yerr=stds, capsize=3, color="#8fb3d9", edgecolor="#33557a")
        for x, v in zip(xs, variants, strict=True):
            values = summary[v][key]["values"]
            ax.plot([x] * len(values), values, "o", color="#1b2f45", markersize=3)
        low = min(min(summary[v][key]["values"]) for v in variants)
        high = max(max(summary[v][key]["values"]) for v in variants)
        margin = 0.15 * (high - low or 1.0)
        ax.set_ylim(low - margin, high + margin)
        ax.set_xticks(list(xs), variants, rotation=30, ha="right")
        ax.set_title(header)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
