"""The benchmark and ablation plumbing: runner, statistics, tables, plots, model cost worker."""

import json
import math
import sys

import pytest

from benchmarks.ablation import Run, aggregate, bar_plot, markdown_table, run_all
from benchmarks.bench_models import MODELS, measure
from seg.summary import BASELINE, paper_miou, variant_switches


def _records():
    return [{"variant": v, "seed": s, "mIoU": m} for v, s, m in
            [("base", 1, 12.0), ("base", 0, 10.0), ("base", 2, 11.0), ("new", 0, 13.0), ("new", 1, 15.0)]]


def test_aggregate_gives_mean_sample_std_and_values_in_seed_order():
    summary = aggregate(_records(), ["base", "new"], ["mIoU"])
    assert summary["base"]["mIoU"] == {"mean": 11.0, "std": 1.0, "values": [10.0, 12.0, 11.0]}  # seeds 0, 1, 2
    assert summary["new"]["mIoU"]["std"] == pytest.approx(math.sqrt(2))


def test_markdown_table_shows_spread_delta_against_the_named_baseline_and_paper():
    summary = aggregate(_records(), ["base", "new"], ["mIoU"])
    table = markdown_table(summary, [("mIoU", "mIoU", 2)], {"base": "40.44"}, "paper", {"base": "base", "new": "base"})
    lines = table.splitlines()
    assert lines[0] == "| variant | mIoU | paper |"
    assert lines[2] == "| base | 11.00 ± 1.00 | 40.44 |"
    assert lines[3] == "| new | 14.00 ± 1.41 (+3.00) | — |"


def test_bar_plot_writes_a_png(tmp_path):
    summary = aggregate(_records(), ["base", "new"], ["mIoU"])
    bar_plot(summary, [("mIoU", "mIoU", 2)], "title", tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _writer(path, value):
    code = f"import json, pathlib; pathlib.Path({str(path)!r}).write_text(json.dumps({{'m': {value}}}))"
    return [sys.executable, "-c", code]


def test_run_all_trains_missing_runs_reads_finished_ones_and_reports_failures(tmp_path):
    done = tmp_path / "done" / "metrics.json"
    done.parent.mkdir()
    done.write_text(json.dumps({"m": 1.0}))
    todo = tmp_path / "todo" / "metrics.json"
    runs = [Run("a", 0, [sys.executable, "-c", "raise SystemExit(3)"], done.parent),  # finished: not run
            Run("a", 1, _writer(todo, 2.0), todo.parent)]
    records = run_all(runs, 2, lambda p: json.loads(p.read_text()))
    assert [r["m"] for r in records] == [1.0, 2.0]
    assert records[1]["wall_s"] > 0 and (todo.parent / "ablation.log").is_file()
    bad = tmp_path / "bad" / "metrics.json"
    with pytest.raises(RuntimeError, match="exit 3"):
        run_all([Run("b", 0, [sys.executable, "-c", "raise SystemExit(3)"], bad.parent)], 1, dict)


def test_variant_switches_set_all_four_components():
    assert variant_switches("UperNet (baseline)") == BASELINE
    assert variant_switches("All four") == dict.fromkeys(["ppm", "fpn", "fuse"], "carafe") | {
        "backbone_resampler": "carafe"}
    assert paper_miou("All four") == 43.05
    with pytest.raises(ValueError, match="unknown variant"):
        variant_switches("PPN")


def test_model_cost_worker_measures_times_memory_and_flops():
    assert "smp.UPerNet R-50" in MODELS
    result = measure("Global&Local + CARAFE++", "cpu", batch=1, size=32, repeats=1)
    assert result["params_m"] > 1 and result["gflops_per_image"] > 0
    assert result["fwd_ms"] > 0 and result["train_ms"] > 0
    assert result["fwd_peak_mib"] >= 0 and result["train_peak_mib"] >= 0


def test_report_builds_sections_from_result_files(tmp_path):
    from benchmarks import ablate_seg, report

    rows = [{"model": name, "group": group, "params_m": 1.0, "gflops_per_image": 2.0, "fwd_ms": 10.0 * (i + 1),
             "train_ms": 30.0 * (i + 1), "fwd_peak_mib": 5.0, "train_peak_mib": 8.0, "fwd_x_base": 1.0 + i,
             "train_x_base": 1.0 + i, "train_mem_x_base": 1.0}
            for i, (name, group) in enumerate([("UperNet R-50: UperNet (baseline)", "segmentation"),
                                               ("Global&Local", "inpainting")])]
    machine = {"cpu": "test cpu", "torch_threads": 2}
    cost = tmp_path / "models_cpu.json"
    cost.write_text(json.dumps({"machine": machine, "batch": 2, "seg_size": 64, "inpaint_size": 32, "repeats": 1,
                                "command": "python benchmarks/bench_models.py", "rows": rows}))
    section = report.cost_section(cost)
    assert "| Global&Local | 1.00 | 2.0 | 20 | 2.00 | 60 | 2.00 |" in section
    assert (tmp_path / "models_cpu.png").is_file()

    records = [{"variant": v, "seed": s, "wall_s": 60.0, "mIoU": 10.0 + s, "bAcc": 5.0, "aAcc": 50.0}
               for v in ablate_seg.ABLATED.values() for s in (0, 1)]
    summary = aggregate(records, list(ablate_seg.ABLATED.values()), ["mIoU", "bAcc", "aAcc"])
    seg = tmp_path / "ablate_seg.json"
    seg.write_text(json.dumps({"machine": machine, "command": "python benchmarks/ablate_seg.py", "iters": 5,
                               "seeds": [0, 1], "jobs": 2, "runs": records, "summary": summary,
                               "paper_mIoU": {v: "40.00" for v in ablate_seg.ABLATED.values()}}))
    section = report.ablation_section(seg, ablate_seg.results_table)
    assert "| All four | 10.50 ± 0.71 (+0.00) |" in section
    assert "12 runs of 5 iterations, 1.0 min per run on average with 2 run(s) at a time (about 6 min in all)" in section
