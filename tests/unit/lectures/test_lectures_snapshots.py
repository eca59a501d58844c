"""LectureSnapshots on tiny real runs: the files, their columns, the pictures, what they show."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_training import one_d_config, tiny_config, tiny_images

from ganforge.config import TrainConfig
from ganforge.data.toy import gaussian_1d, ring_2d
from ganforge.lectures import (
    DensityPanel,
    LectureSnapshots,
    SurfacePanel,
    figure1_strip,
    saturation_figure,
    snapshot_steps,
    surface_strip,
)
from ganforge.lectures.files import (
    DENSITY_COLUMNS,
    MODE_COLUMNS,
    SATURATION_COLUMNS,
    VALUE_COLUMNS,
)
from ganforge.losses import LOG4
from ganforge.training import Callback, TrainResult, fit

MEAN, STD = 4.0, 0.5
Run = tuple[Path, LectureSnapshots, TrainResult]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def assert_drawn(path: Path) -> None:
    """A PNG that is not blank: many distinct colours, a real spread of pixel values."""
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert image.std() > 20
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50


def ring_config(**overrides: Any) -> TrainConfig:
    options = dict(
        model="mlp", nz=2, ngf=32, ndf=32, mlp_layers=2, maxout_pieces=0, dropout=0.0,
        lr_g=1e-3, lr_d=1e-3, batch_size=128, max_steps=300, ema_decay=None, device="cpu",
        log_every=20, checkpoint_every=50,
    )  # fmt: skip
    return TrainConfig(**(options | overrides))


def one_d_data() -> tuple[torch.Tensor, dict[str, Any]]:
    toy = gaussian_1d(4000, MEAN, STD, seed=0)
    return torch.from_numpy(toy.points), {"dataset": "gaussian_1d", **toy.info}


def ring_data() -> tuple[torch.Tensor, dict[str, Any]]:
    toy = ring_2d(2000, seed=0)
    return torch.from_numpy(toy.points), {"dataset": "ring_2d", **toy.info}


def snapshot_run(
    factory: pytest.TempPathFactory, name: str, data: tuple[torch.Tensor, dict[str, Any]],
    config: TrainConfig, **options: Any,
) -> Run:  # fmt: skip
    """Train `config` on `data` (points, meta) on one thread, with LectureSnapshots(seed=3)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        points, meta = data
        out = factory.mktemp(name)
        snaps = LectureSnapshots(out, meta, seed=3, **options)
        result = fit(config, points, seed=0, callbacks=[snaps])
    finally:
        torch.set_num_threads(before)
    return out, snaps, result


@pytest.fixture(scope="module")
def one_d_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """1500 steps of the minimax game on the 1-D Gaussian (a few seconds), with snapshots."""
    return snapshot_run(tmp_path_factory, "lectures_1d", one_d_data(), one_d_config(), rows=60)


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return snapshot_run(tmp_path_factory, "lectures_ring", ring_data(), ring_config())


def test_snapshot_steps_go_from_the_start_to_the_end_log_spaced() -> None:
    steps = snapshot_steps(17440, 6)
    assert steps[0] == 0 and steps[-1] == 17440 and len(steps) == 6
    ratios = np.diff(np.log(steps[1:]))
    np.testing.assert_allclose(ratios, ratios[0], rtol=0.01)  # evenly spaced in log(step)
    assert snapshot_steps(3, 6) == [0, 1, 2, 3]  # short runs: no duplicates
    assert snapshot_steps(100, 2) == [0, 100]
    assert snapshot_steps(100, 1) == [0]


def test_one_d_run_writes_every_file_with_its_columns(one_d_run) -> None:
    out, snaps, result = one_d_run
    columns, rows = read_csv(out / "value.csv")
    assert columns == list(VALUE_COLUMNS)
    assert [int(r["step"]) for r in rows] == sorted({int(r["step"]) for r in rows})
    assert len(rows) >= 30 and int(rows[-1]["step"]) == result.step
    assert all(float(r["minus_log_4"]) == pytest.approx(-LOG4, abs=1e-5) for r in rows)
    for r in rows:  # C(G) = -log 4 + 2 JSD, and the JSD of a distribution pair is in [0, log 2]
        jsd = float(r["jsd"])
        assert 0.0 <= jsd <= np.log(2) + 1e-9
        assert float(r["value_at_d_star"]) == pytest.approx(-LOG4 + 2 * jsd, abs=1e-5)
    # modes are not defined on a single Gaussian: the header, no rows (a plot draws nothing)
    assert read_csv(out / "modes.csv") == (list(MODE_COLUMNS), [])
    columns, dens = read_csv(out / "densities.csv")
    assert columns == list(DENSITY_COLUMNS) and len(dens) == 400
    columns, sat = read_csv(out / "saturation.csv")
    assert columns == list(SATURATION_COLUMNS)
    assert {int(r["step"]) for r in sat} == set(snapshot_steps(result.step, 6))
    assert (out / "figures" / "figure1.png").is_file()
    assert (out / "figures" / "saturation.png").is_file()
    assert not (out / "figures" / "modes.png").exists()
    # the scalars also went into the training rows (and so to MLflow)
    measured = [r for r in result.history if "value_v" in r]
    assert measured and all("value_at_d_star" in r and "jsd_g" in r for r in measured)


def test_v_approaches_minus_log4_and_ends_below_its_upper_bound_c_of_g(one_d_run) -> None:
    out, _, _ = one_d_run
    _, rows = read_csv(out / "value.csv")
    first, last = rows[0], rows[-1]
    # at the start G's samples and the data do not overlap: JSD = log 2, C(G) = 0
    assert float(first["value_at_d_star"]) == pytest.approx(0.0, abs=0.01)
    # at the end: V near -log 4 and C(G) well below its start (JSD small)
    assert float(last["value_v"]) == pytest.approx(-LOG4, abs=0.05)
    assert float(last["jsd"]) < 0.05


def test_last_1d_panel_shows_d_near_one_half_where_p_g_matches_p_data(one_d_run) -> None:
    """Figure 1 (d): after training, the learned D is about 1/2 where G's density matches the
    data's (and D* is 1/2 there by construction)."""
    _, snaps, _ = one_d_run
    last = snaps.panels[-1]
    p, q, d = last["p_data"].numpy(), last["p_g"].numpy(), last["d"].numpy()
    peak = p.max()
    matched = (p > 0.2 * peak) & (np.abs(p - q) < 0.15 * peak)
    assert matched.sum() > 20, "G's density should match the data's over part of the support"
    assert np.abs(d[matched] - 0.5).max() < 0.1
    assert np.abs(last["d_star"].numpy()[matched] - 0.5).max() < 0.1
    first = snaps.panels[0]  # before training: D* is ~1 on the data and ~0 on G's samples
    d_star0 = first["d_star"].numpy()
    assert np.nanmax(d_star0[first["p_data"].numpy() > 0.5 * peak]) > 0.99


def test_1d_figure_is_labelled_and_drawn(one_d_run) -> None:
    out, snaps, _ = one_d_run
    panels = [DensityPanel(**{k: _np(v) for k, v in p.items()}) for p in snaps.panels]
    fig = figure1_strip(panels)
    main_axes = [ax for ax in fig.axes if ax.get_ylabel() == "density"]
    twins = [ax for ax in fig.axes if ax.get_ylabel() == "D(x), D*(x)"]
    assert len(main_axes) == len(twins) == len(panels) == 6
    assert all(ax.get_xlabel() == "x" and ax.get_title() for ax in main_axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()][:3] == [
        "p_data", "p_g (KDE of G)", "D(x), learned",
    ]  # fmt: skip
    assert_drawn(out / "figures" / "figure1.png")
    assert_drawn(out / "figures" / "saturation.png")


def test_ring_run_draws_samples_over_d_and_counts_modes(ring_run) -> None:
    out, snaps, result = ring_run
    columns, modes = read_csv(out / "modes.csv")
    assert columns == list(MODE_COLUMNS) and modes
    assert all(0 <= int(r["modes_covered"]) <= 8 and int(r["num_modes"]) == 8 for r in modes)
    assert all(0.0 <= float(r["hq_share"]) <= 1.0 for r in modes)
    _, values = read_csv(out / "value.csv")
    assert [r["step"] for r in values] == [r["step"] for r in modes]
    assert read_csv(out / "densities.csv") == (list(DENSITY_COLUMNS), [])
    assert not (out / "figures" / "figure1.png").exists()
    assert_drawn(out / "figures" / "modes.png")
    panels = [SurfacePanel(**{k: _np(v) for k, v in p.items()}) for p in snaps.panels]
    assert [p.step for p in panels] == snapshot_steps(result.step, 6)
    last = panels[-1]
    assert last.d.shape == (len(last.ys), len(last.xs)) and last.fake.shape[1] == 2
    assert 0.0 <= last.d.min() and last.d.max() <= 1.0
    fig = surface_strip(panels)
    plane_axes = [ax for ax in fig.axes if ax.get_xlabel() == "x₁"]
    assert len(plane_axes) == 6 and all(ax.get_ylabel() == "x₂" for ax in plane_axes)
    assert any(ax.get_ylabel().startswith("D(x)") for ax in fig.axes)  # the colour bar


def test_saturation_rows_are_the_closed_forms_on_the_network_in_training(ring_run) -> None:
    out, snaps, _ = ring_run
    _, rows = read_csv(out / "saturation.csv")
    d = np.array([float(r["d_fake"]) for r in rows])
    np.testing.assert_allclose([float(r["grad_logit_minimax"]) for r in rows], d, rtol=1e-4)
    np.testing.assert_allclose(
        [float(r["grad_logit_non_saturating"]) for r in rows], 1 - d, rtol=1e-4, atol=1e-6
    )
    # through D the two losses differ by the same factor: grad_x = |dl/dlogit| * |grad_x logit|
    mm = np.array([float(r["grad_x_minimax"]) for r in rows])
    ns = np.array([float(r["grad_x_non_saturating"]) for r in rows])
    keep = (d > 1e-3) & (d < 1 - 1e-3) & (ns > 1e-8)
    np.testing.assert_allclose(mm[keep] / ns[keep], d[keep] / (1 - d[keep]), rtol=1e-3)
    fig = saturation_figure(snaps.saturation_rows, "non_saturating")
    left, right = fig.axes[:2]
    assert left.get_xlabel() == right.get_xlabel() == "D(G(z))"
    assert left.get_ylabel() and right.get_ylabel()
    assert_drawn(out / "figures" / "saturation.png")


def test_snapshots_leave_training_unchanged(tmp_path: Path, one_thread) -> None:
    """The callback draws from its own generators and restores eval/train modes: a run with it
    trains to exactly the weights of a run without (dropout in D makes a slip visible)."""
    data, meta = one_d_data()
    config = one_d_config(max_steps=40, log_every=5)
    plain = fit(config, data, seed=0)
    watched = fit(config, data, seed=0, callbacks=[LectureSnapshots(tmp_path, meta, rows=40)])
    for a, b in (
        (plain.generator, watched.generator),
        (plain.discriminator, watched.discriminator),
    ):
        assert a.training and b.training
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), name


def test_a_resumed_run_draws_what_an_uninterrupted_one_draws(tmp_path: Path, one_thread) -> None:
    data, meta = ring_data()
    config = ring_config(max_steps=120, log_every=10, checkpoint_every=30)
    whole = LectureSnapshots(tmp_path / "whole", meta, seed=1)
    fit(config, data, seed=0, callbacks=[whole])
    ckpt = tmp_path / "ckpt"
    fit(config, data, seed=0, checkpoint_dir=ckpt, stop_after=60,
        callbacks=[LectureSnapshots(tmp_path / "split", meta, seed=1)])  # fmt: skip
    resumed = LectureSnapshots(tmp_path / "split", meta, seed=1)
    fit(config, data, seed=0, checkpoint_dir=ckpt, callbacks=[resumed])
    assert resumed.done == whole.done == snapshot_steps(120, 6)
    for name in ("value.csv", "modes.csv", "saturation.csv"):
        assert (tmp_path / "split" / name).read_text() == (tmp_path / "whole" / name).read_text()
    assert (tmp_path / "split" / "figures" / "modes.png").is_file()


def test_a_fresh_run_removes_the_files_of_an_earlier_one(tmp_path: Path, one_thread) -> None:
    data, meta = ring_data()
    fit(ring_config(max_steps=20), data, seed=0, callbacks=[LectureSnapshots(tmp_path, meta)])
    assert (tmp_path / "figures" / "modes.png").is_file()
    one_d, meta_1d = one_d_data()
    fit(one_d_config(max_steps=20, log_every=5), one_d, seed=0,
        callbacks=[LectureSnapshots(tmp_path, meta_1d)])  # fmt: skip
    assert not (tmp_path / "figures" / "modes.png").exists()
    assert read_csv(tmp_path / "modes.csv")[1] == []


def test_images_get_v_and_saturation_but_no_density_estimate(tmp_path: Path, one_thread) -> None:
    """On images p_g has no density estimate: no JSD, no C(G), no Figure 1 (their CSVs keep
    their header only); V on the held-out batch and the saturation plot are defined."""
    x, y = tiny_images()
    config = tiny_config(labels="latent", max_steps=8)
    snaps = LectureSnapshots(tmp_path, {"dataset": "digits"}, held_out=x[:40],
                             held_out_labels=y[:40], snapshots=3)  # fmt: skip
    result = fit(config, x, y, seed=0, callbacks=[snaps])
    for name, columns in (("value.csv", VALUE_COLUMNS), ("modes.csv", MODE_COLUMNS),
                          ("densities.csv", DENSITY_COLUMNS)):  # fmt: skip
        assert read_csv(tmp_path / name) == (list(columns), [])
    _, sat = read_csv(tmp_path / "saturation.csv")
    assert {int(r["step"]) for r in sat} == set(snapshot_steps(8, 3))
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["saturation.png"]
    measured = [r for r in result.history if "value_v" in r]
    assert measured and all(np.isfinite(r["value_v"]) and "jsd_g" not in r for r in measured)


def test_bad_inputs_stop_with_one_line(tmp_path: Path) -> None:
    data, meta = one_d_data()
    _, ring_meta = ring_data()
    with pytest.raises(ValueError, match="meta.json describes 2-D points"):
        fit(one_d_config(max_steps=2), data, seed=0,
            callbacks=[LectureSnapshots(tmp_path, ring_meta)])  # fmt: skip
    x, y = tiny_images()
    with pytest.raises(ValueError, match="pass the held-out batch's labels"):
        fit(tiny_config(labels="latent", max_steps=2), x, y, seed=0,
            callbacks=[LectureSnapshots(tmp_path, {}, held_out=x[:8])])  # fmt: skip
    with pytest.raises(ValueError, match="snapshots = 0"):
        LectureSnapshots(tmp_path, meta, snapshots=0)


def _np(value: Any) -> Any:
    return value.numpy() if isinstance(value, torch.Tensor) else value


def test_a_pacgan_d_is_read_on_packs_of_copies(tmp_path: Path, one_thread) -> None:
    """PacGAN's D judges `pack` samples at once: the batches are whole packs, D on the plane
    is its verdict on packs of copies, and the saturation rows are one per pack."""
    data, meta = ring_data()
    snaps = LectureSnapshots(tmp_path, meta, samples=301, saturation_samples=31, snapshots=2)
    fit(ring_config(max_steps=10, pack=2), data, seed=0, callbacks=[snaps])
    _, sat = read_csv(tmp_path / "saturation.csv")
    assert len(sat) == 2 * 15  # two snapshots of 30 samples in packs of 2
    assert all(r["grad_x_minimax"] == "" for r in sat)  # no per-sample gradient through a pack
    assert snaps.panels[-1]["d"].shape == (120, 120)
    assert_drawn(tmp_path / "figures" / "modes.png")


class _Boom(Callback):
    def on_step_end(self, trainer) -> None:
        if trainer.step == 15:
            raise RuntimeError("killed")


def test_a_failed_run_leaves_the_previous_files_and_commit_can_wait(
    tmp_path: Path, one_thread
) -> None:
    data, meta = ring_data()
    out = tmp_path / "lectures"
    fit(ring_config(max_steps=20), data, seed=0, callbacks=[LectureSnapshots(out, meta)])
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert Path("figures/modes.png") in before
    with pytest.raises(RuntimeError, match="killed"):
        fit(ring_config(max_steps=40), data, seed=1,
            callbacks=[LectureSnapshots(out, meta), _Boom()])  # fmt: skip
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    waiting = LectureSnapshots(out, meta, defer_commit=True)
    fit(ring_config(max_steps=40), data, seed=1, callbacks=[waiting])
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    waiting.commit()
    assert read_csv(out / "value.csv")[1][-1]["step"] == "40"
    assert not list(tmp_path.glob(".lectures.*"))  # no staging folder left behind
