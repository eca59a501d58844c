"""bench/quality.py runs the real stages end to end (tiny settings: its figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import quality  # noqa: E402


def test_overrides_build_params_from_the_committed_ones() -> None:
    base = {"seed": 0, "train": {"model": "dcgan", "epochs": 60}}
    params = quality.build_params(base, {"train.model": "mlp", "seed": 2})
    assert params == {"seed": 2, "train": {"model": "mlp", "epochs": 60}}
    assert base["train"]["model"] == "dcgan"
    assert quality.parse_sets(["train.max_steps=20", "train.conditional=true"]) == {
        "train.max_steps": 20,
        "train.conditional": True,
    }
    with pytest.raises(SystemExit, match="no section 'nope'"):
        quality.build_params(base, {"nope.x": 1})


def test_digits_mlp_row_builds_the_papers_nets() -> None:
    """The digits_mlp overrides give Goodfellow et al.'s MNIST layer sizes on 32x32 digits, and
    no labels: it is the paper's unconditional GAN."""
    import torch
    from torch import nn

    from ganforge.config import TrainConfig
    from ganforge.models import build_discriminator, build_generator
    from ganforge.models.mlp import Maxout
    from ganforge.training.trainer import make_spec

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    # Labelled data as the pipeline passes them, and a params.yaml whose default would train
    # on them (latent_class: auto): the row must stay the paper's label-free GAN regardless.
    labels = torch.arange(100) % 10
    base["train"]["latent_class"] = "auto"
    assert make_spec(TrainConfig(**base["train"]), (1, 32, 32), 10, (), labels).labelled
    params = quality.build_params(base, quality.CONFIGS["digits_mlp"])
    spec = make_spec(TrainConfig(**params["train"]), (1, 32, 32), 10, (), labels)
    assert spec.arch == "mlp"
    assert spec.num_classes == 0 and not spec.class_prior and not spec.labelled
    g, d = build_generator(spec), build_discriminator(spec)
    g_linear = [(m.in_features, m.out_features) for m in g.modules() if isinstance(m, nn.Linear)]
    assert g_linear == [(100, 1200), (1200, 1200), (1200, 1024)]
    maxouts = [m for m in d.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (1024, 240, 5),
        (240, 240, 5),
    ]
    assert [m.p for m in d.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5]


def test_digits_mlp_row_is_the_readme_configuration() -> None:
    """The README's yaml block for Goodfellow et al. on digits is the bench row it reports."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Goodfellow et al. 2014 on digits") :]
    block = section[section.index("```yaml") + len("```yaml") : section.index("```\n", 10)]
    documented = {f"train.{k}": v for k, v in yaml.safe_load(block)["train"].items()}
    assert documented == quality.CONFIGS["digits_mlp"]


def test_toy_rows_are_the_readme_configuration() -> None:
    """ring_2d and grid_2d share one configuration: the README's yaml block, valid params that
    build 3-hidden-layer nets of 128 units with LeakyReLU D units and R1 on."""
    from torch import nn

    from ganforge.config import TrainConfig
    from ganforge.models import build_discriminator, build_generator
    from ganforge.training.trainer import make_spec

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### The ring/grid configuration") :]
    block = section[section.index("```yaml") + len("```yaml") : section.index("```\n", 10)]
    documented = {f"train.{k}": v for k, v in yaml.safe_load(block)["train"].items()}
    assert documented == quality.TOY
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, dataset in (("ring_2d", "ring_2d"), ("grid_2d", "grid_2d")):
        params = quality.build_params(base, quality.CONFIGS[name])
        assert params["prepare"]["dataset"] == dataset
        config = TrainConfig(**params["train"])
        assert config.r1_gamma > 0 and config.instance_noise == 0
        spec = make_spec(config, (2,))
        g, d = build_generator(spec), build_discriminator(spec)
        g_linear = [
            (m.in_features, m.out_features) for m in g.modules() if isinstance(m, nn.Linear)
        ]
        assert g_linear == [(2, 128), (128, 128), (128, 128), (128, 2)]
        assert sum(isinstance(m, nn.LeakyReLU) for m in d.modules()) == 3


def test_table_prints_parzen_classes_and_all_failed_rows(capsys: pytest.CaptureFixture) -> None:
    """The mlp row's Parzen log-likelihood and class count reach the table; a table whose rows
    all failed still prints (it raised on the empty column widths)."""
    quality.print_table([{"config": "c", "seed": 0, "parzen_ll": 123.4, "classes_covered": 10}])
    out = capsys.readouterr().out
    assert "Parzen" in out and " 123 " in out and " 10 " in out
    quality.print_table([{"config": "c", "seed": 0, "error": "train failed"}])
    assert "FAILED train failed" in capsys.readouterr().out


@pytest.mark.slow
def test_quality_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    args = ["--configs", "gaussian_1d", "--seeds", "0", "--json", str(out)]
    for s in ("train.max_steps=20", "prepare.num_points=1000", "evaluate.num_samples=500"):
        args += ["--set", s]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "quality.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["config", "seed", "FID"]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["config"] == "gaussian_1d" and row["steps"] == 20
    assert 0 <= row["jsd"] <= 0.7 and row["best_step"] == 20 and row["train_seconds"] > 0
