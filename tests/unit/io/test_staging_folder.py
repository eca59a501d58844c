"""A staged folder, once swapped in, is an out like any other: readable as its parent is."""

from __future__ import annotations

import stat
from pathlib import Path

from ganforge.io import staging_folder, swap_in


def test_a_swapped_in_folder_has_its_parents_permissions_not_mkdtemps(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir(mode=0o755)
    plots.chmod(0o755)
    staged = staging_folder(plots / "samples")
    (staged / "grid.png").write_bytes(b"png")
    swap_in(staged, plots / "samples")
    assert stat.S_IMODE((plots / "samples").stat().st_mode) == 0o755  # mkdtemp gives 0700
    assert (plots / "samples" / "grid.png").read_bytes() == b"png"
