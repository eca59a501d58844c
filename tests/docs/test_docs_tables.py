"""README.md and docs/results.md hold the tables bench/tables.py renders from bench/results, and
every page or heading the README and docs link to exists."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = (
    "docs/guide.md",
    "docs/results.md",
    "docs/guarantees.md",
    "docs/team.md",
    "docs/lectures.md",
)


def _load_tables():
    """bench/tables.py under its own name (`tables` is also PyTables' import name)."""
    spec = importlib.util.spec_from_file_location("bench_tables", ROOT / "bench" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


tables = _load_tables()


def test_readme_and_results_page_are_what_bench_results_render(
    capsys: pytest.CaptureFixture,
) -> None:
    code = tables.main(["--check"])
    assert code == 0, capsys.readouterr().err


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    return _LINK.findall(_FENCE.sub("", page.read_text()))


@pytest.mark.parametrize("page", ["README.md", *DOCS])
def test_relative_links_reach_a_file_and_heading(page: str) -> None:
    source = ROOT / page
    broken = []
    for target in _links(source):
        if re.match(r"[a-z]+:", target):  # http(s):, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (source.parent / path).resolve() if path else source
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT)}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page}: " + "; ".join(broken)


def test_readme_links_every_docs_page() -> None:
    linked = {t.partition("#")[0] for t in _links(ROOT / "README.md")}
    assert set(DOCS) <= linked
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert on_disk <= linked, f"docs pages the README does not link: {on_disk - linked}"


def _write(folder: Path, name: str, rows: list[dict], overrides: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"overrides": overrides or {}, "rows": rows}))


def _synthetic(results: Path) -> None:
    _write(
        results,
        "a.json",
        [
            {"config": "new_data:gmm10", "fid": 3.0},  # a baseline: no seed,
            {"config": "new_data", "seed": 0, "fid": 1.0, "precision": 0.8, "modes": "8/8"},
            {"config": "new_data", "seed": 1, "fid": 3.0, "modes": "7/8"},
            {"config": "new_data", "seed": 2, "error": "train failed"},
        ],
    )
    _write(results, "b.json", [{"config": "digits_dcgan", "seed": 0, "fid": 0.5}])
    _write(results, "c.json", [{"config": "digits_dcgan", "seed": 0, "fid": 9.0}], {"x.y": 1})


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_rendering_of_a_synthetic_results_folder(tmp_path: Path) -> None:
    _synthetic(tmp_path)
    runs = tables.load_runs(tmp_path)
    readme = tables.render_readme(runs).splitlines()
    # CONFIGS order first, then unknown configurations, a baseline after its data set's row
    assert [_cells(line)[0] for line in readme[2:]] == [
        "`digits_dcgan`",
        "`new_data`",
        "`new_data:gmm10`",
    ]
    header = _cells(readme[0])
    new = dict(zip(header, _cells(readme[3]), strict=True))
    assert new["seeds"] == "0, 1 (1 failed)"
    assert new["FID"] == "2.00 (1.00–3.00)"  # mean over the seeds that ran, then the range
    assert "prec" not in header  # no mean where a seed lacks it: a column of "-" only
    assert new["modes"] == "8/8, 7/8"
    assert _cells(readme[4])[:3] == ["`new_data:gmm10`", "-", "3.00"]
    assert "9.00" not in "\n".join(readme)  # the variant run stays out of the README
    assert "JSD" not in header  # a column no row fills is left out

    page = tables.render_results_page(runs)
    assert page.index("### `digits_dcgan`") < page.index("### `new_data`")
    assert "| 0 | 1.00 | 0.80 | 8/8 |" in page
    assert "| 1 | 3.00 | - | 7/8 |" in page
    assert "| 2 | FAILED: train failed | - | - |" in page
    assert "| mean | 2.00 | - | - |" in page
    assert "#### `digits_dcgan` with `--set x.y=1`\n" in page
    assert "Rows in `bench/results/c.json`." in page


def test_one_configuration_and_seed_in_two_current_files_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", [{"config": "toy", "seed": 0, "fid": 1.0}])
    _write(tmp_path, "b.json", [{"config": "toy", "seed": 0, "fid": 2.0}])
    with pytest.raises(SystemExit, match="toy seed 0 is in both bench/results/a.json"):
        tables.render_readme(tables.load_runs(tmp_path))


def test_check_names_the_file_and_line_then_the_rewrite_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _synthetic(tmp_path / "bench" / "results")
    (tmp_path / "docs").mkdir()
    stale = f"# t\n\ntext\n{tables.BEGIN}\n| hand | copied |\n{tables.END}\nafter\n"
    recipes = "<!-- recipes:begin -->\n<!-- recipes:end -->\n"
    (tmp_path / "README.md").write_text(stale + recipes)
    (tmp_path / "docs" / "results.md").write_text(stale)
    root = ["--root", str(tmp_path)]

    assert tables.main(["--check", *root]) == 1
    err = capsys.readouterr().err
    assert "README.md:5: differs" in err and "docs/results.md:5: differs" in err
    assert (tmp_path / "README.md").read_text() == stale + recipes  # --check writes nothing

    assert tables.main(root) == 0
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# t\n\ntext\n") and f"{tables.END}\nafter\n" in text
    assert "| hand | copied |" not in text and "| `new_data` |" in text
    assert "| `kimg` |" in text  # the recipes' table, from ganforge.recipe
    assert tables.main(["--check", *root]) == 0

    (tmp_path / "README.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="README.md: needs one <!-- results:begin -->"):
        tables.main(["--check", *root])
