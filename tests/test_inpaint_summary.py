"""The parameter / FLOP summary CLI."""

from __future__ import annotations

import pytest
import torch

from inpaint.summary import count_flops, main, summary_rows


def test_flop_count_of_a_convolution() -> None:
    conv = torch.nn.Conv2d(4, 8, 3, padding=1)
    assert count_flops(conv, torch.zeros(1, 4, 16, 16, device="meta")) == 2 * 4 * 8 * 9 * 16 * 16


def test_summary_rows_cover_all_models() -> None:
    rows = {row[0]: row[1:] for row in summary_rows(64, width=0.125)}
    assert len(rows) == 5
    assert rows["global_local + CARAFE++"][2:] == (2, 2)
    assert rows["pconv_unet + CARAFE++"][2:] == (7, 7)
    assert all(params > 0 and flops > 0 for params, flops, *_ in rows.values())
    # The CARAFE++ forms add kernel prediction and reassembly work.
    assert rows["pconv_unet + CARAFE++"][1] > rows["pconv_unet"][1]


def test_cli_prints_a_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--size", "64", "--width", "0.125"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| model | params (M) | GFLOPs @ 64x64")
    assert len(lines) == 7 and all(line.startswith("|") for line in lines)
    with pytest.raises(SystemExit):
        main(["--size", "8"])
