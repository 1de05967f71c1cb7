"""Per-component parameter and FLOP counts, CARAFE reassembly included."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from seg import build_segmentor
from seg.summary import VARIANTS, measure, summary_table


def test_carafe_reassembly_flops_are_counted_per_component():
    model = build_segmentor("resnet18", num_classes=3, channels=8).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    counts = counter.get_flop_counts()
    for component in ("backbone", "decoder.ppm", "decoder.fpn", "decoder.fuse"):
        assert counts[f"Segmentor.{component}"][torch.ops.carafe_op.reassemble] > 0
    # FUSE at 64x64: x2 up of P5 (8 ch, 2x2 -> 4x4), [P4, P5] (16 ch, 4x4 -> 8x8), [P3..P5] (24 ch, 8x8 -> 16x16),
    # 25 taps, one multiply and one add each.
    expected = 2 * 25 * (8 * 4 * 4 + 16 * 8 * 8 + 24 * 16 * 16)
    assert counts["Segmentor.decoder.fuse"][torch.ops.carafe_op.reassemble] == expected


def test_meta_device_counts_equal_cpu_counts():
    model = build_segmentor("resnet18", num_classes=3, channels=8)
    with torch.device("meta"):
        meta_model = build_segmentor("resnet18", num_classes=3, channels=8)
    cpu = measure(model, (65, 49), "cpu")
    assert measure(meta_model, (65, 49), "meta") == cpu
    parts = ("backbone", "PPM", "FPN", "FUSE", "classifier")
    assert sum(cpu[p].params for p in parts) == cpu["total"].params
    assert sum(cpu[p].flops for p in parts) == cpu["total"].flops


def test_table_has_one_row_per_variant_and_carafe_costs_more():
    table = summary_table("resnet18", (64, 64), num_classes=3, channels=8)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "CARAFE++ in" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == [name for name, _, _ in VARIANTS]
    totals = [float(row.split(" | ")[6].split(" / ")[1]) for row in rows]
    assert all(total >= totals[0] for total in totals[1:])
    assert totals[-1] > totals[0]
