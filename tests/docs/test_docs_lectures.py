"""docs/lectures.md: each picture it shows is a real file, a drawn figure (not blank), and
comes from a run the caption names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "lectures.md"
IMAGE = re.compile(r"!\[([^\]]+)\]\(([^)]+\.png)\)\n\n\*([^*]+)\*", re.S)


def test_every_picture_is_a_drawn_figure_with_its_run_named() -> None:
    pictures = IMAGE.findall(PAGE.read_text())
    assert len(pictures) >= 4, "the page shows Figure 1, the saturation pair and the modes"
    for alt, target, caption in pictures:
        path = (PAGE.parent / target).resolve()
        assert path.is_file(), f"{target}: no such file"
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        assert min(pixels.shape) >= 200, (target, pixels.shape)
        if "ganforge arithmetic" in caption:  # a grid of samples: not blank, not one flat tone
            assert pixels.std() > 30 and (pixels > 128).mean() > 0.05, target
        else:  # a figure: mostly white paper with ink on it, neither blank nor noise
            assert 0.02 < (pixels < 200).mean() < 0.6, (target, (pixels < 200).mean())
        assert any(s in caption for s in ("bench/", "prepare.dataset", "ganforge ")), caption
        assert alt.strip()
