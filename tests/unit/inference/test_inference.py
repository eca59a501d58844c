"""ganforge.inference: sampling, labels, walks, latent arithmetic, grids, providers; no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import export_models

from ganforge.inference import (
    Generator,
    GeneratorInputError,
    ModelFileError,
    ProviderError,
    interpolate_latents,
    latent_arithmetic,
    make_grid,
    save_grid,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ganforge.models import GeneratorSpec

    out = tmp_path_factory.mktemp("inference")
    specs = {
        "uncond": GeneratorSpec(arch="dcgan", nz=16, sample_shape=(1, 32, 32), ngf=8, ndf=8),
        "cond": GeneratorSpec(
            arch="dcgan", nz=8, sample_shape=(3, 16, 16), ngf=8, ndf=8, num_classes=3
        ),
    }
    return export_models(out, specs, wide_init=False)


def test_sample_gives_uint8_hwc_images_reproducibly(models) -> None:
    gen = Generator.load(models["uncond"])
    assert gen.providers == ["CPUExecutionProvider"]
    images = gen.sample(5, seed=3)
    assert images.dtype == np.uint8 and images.shape == (5, 32, 32, 1)
    np.testing.assert_array_equal(images, gen.sample(5, seed=3))
    assert not np.array_equal(images, gen.sample(5, seed=4))
    # batched runs agree with one big run
    gen.batch_size = 2
    np.testing.assert_array_equal(images, gen.sample(5, seed=3))


def test_conditional_labels(models) -> None:
    gen = Generator.load(models["cond"], provider="cpu")
    assert gen.metadata.conditional and gen.metadata.num_classes == 3
    assert gen.sample(4, seed=0, labels=2).shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(gen.labels_for(5), [0, 1, 2, 0, 1])
    z = gen.latents(3, seed=0)
    a, b = gen.decode(z, labels=[0, 0, 0]), gen.decode(z, labels=[1, 1, 1])
    assert not np.array_equal(a, b)
    with pytest.raises(GeneratorInputError, match="out of range"):
        gen.sample(2, labels=3)
    with pytest.raises(GeneratorInputError, match="out of range"):
        gen.sample(2, labels=[0, -1])
    with pytest.raises(GeneratorInputError, match="2 labels for 3"):
        gen.sample(3, labels=[0, 1])


def test_bad_requests(models) -> None:
    gen = Generator.load(models["uncond"], provider="cpu")
    with pytest.raises(GeneratorInputError, match="has no classes"):
        gen.sample(2, labels=1)
    with pytest.raises(GeneratorInputError, match="positive"):
        gen.sample(0)
    with pytest.raises(GeneratorInputError, match=r"\[N, 16\]"):
        gen.decode(np.zeros((2, 5), np.float32))


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        Generator.load(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        Generator.load(junk)
    with pytest.raises(ProviderError):
        Generator.load(junk, provider="tpu")  # type: ignore[arg-type]


def test_plain_onnx_without_metadata_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save_model

    graph = helper.make_graph(
        [helper.make_node("Identity", ["z"], ["image"])],
        "g",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 4])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 4])],
    )
    path = tmp_path / "plain.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    save_model(model, path)
    with pytest.raises(ModelFileError, match="not a ganforge generator"):
        Generator.load(path)


def test_cuda_provider_is_refused_cleanly_without_a_gpu(models) -> None:
    from ganforge.inference import best_providers, create_session

    if "CUDAExecutionProvider" in create_session(models["uncond"], "auto").get_providers():
        pytest.skip("this machine runs onnxruntime on CUDA")
    assert best_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ProviderError, match="cuda"):
        Generator.load(models["uncond"], provider="cuda")


def test_interpolation_ends_and_slerp_norm(models) -> None:
    gen = Generator.load(models["uncond"], provider="cpu")
    z0, z1 = gen.latents(2, seed=1)
    for method in ("linear", "slerp"):
        path = interpolate_latents(z0, z1, 6, method)
        assert path.shape == (6, 16)
        np.testing.assert_allclose(path[0], z0, atol=1e-5)
        np.testing.assert_allclose(path[-1], z1, atol=1e-5)
        images = gen.interpolate(z0, z1, steps=6, method=method)
        assert images.shape == (6, 32, 32, 1)
        np.testing.assert_array_equal(images[0], gen.decode(z0[None])[0])
    # slerp keeps the norm between the ends' norms; the straight line sags towards 0
    a, b = np.eye(16, dtype=np.float32)[:2] * 4.0
    mid_slerp = interpolate_latents(a, b, 3, "slerp")[1]
    mid_line = interpolate_latents(a, b, 3, "linear")[1]
    assert np.linalg.norm(mid_slerp) == pytest.approx(4.0, rel=1e-5)
    assert np.linalg.norm(mid_line) == pytest.approx(4.0 / np.sqrt(2), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        interpolate_latents(a, b, 1)
    with pytest.raises(ValueError, match="linear or slerp"):
        interpolate_latents(a, b, 3, "cubic")  # type: ignore[arg-type]


def test_latent_arithmetic(models) -> None:
    rng = np.random.default_rng(0)
    smiling_woman, neutral_woman, neutral_man = (rng.standard_normal((3, 8)) for _ in range(3))
    z = latent_arithmetic([smiling_woman, neutral_man], [neutral_woman])
    expected = smiling_woman.mean(0) - neutral_woman.mean(0) + neutral_man.mean(0)
    np.testing.assert_allclose(z, expected, rtol=1e-5)
    assert z.dtype == np.float32
    np.testing.assert_allclose(latent_arithmetic([np.ones(8)]), np.ones(8))
    with pytest.raises(ValueError, match="at least one"):
        latent_arithmetic([])
    with pytest.raises(ValueError, match="differ in size"):
        latent_arithmetic([np.ones(8)], [np.ones(4)])
    gen = Generator.load(models["cond"], provider="cpu")
    assert gen.arithmetic([smiling_woman, neutral_man], [neutral_woman], labels=1).shape == (
        1,
        16,
        16,
        3,
    )


def test_grid_layout_and_png(tmp_path: Path) -> None:
    from PIL import Image

    images = np.full((5, 4, 6, 3), 200, np.uint8)
    grid = make_grid(images, nrow=3, padding=1)
    assert grid.shape == (2 * 5 + 1, 3 * 7 + 1, 3)
    assert grid[0, 0, 0] == 0 and grid[1, 1, 0] == 200
    assert make_grid(images[:4, ..., :1]).shape == (2 * 6 + 2, 2 * 8 + 2, 1)  # square default
    path = save_grid(images[..., :1], tmp_path / "g.png", nrow=5)
    with Image.open(path) as picture:
        assert picture.mode == "L" and picture.size == (5 * 8 + 2, 4 + 4)
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]
    with pytest.raises(ValueError, match="uint8"):
        make_grid(images.astype(np.float32))


def test_importing_inference_and_cli_leaves_torch_out_and_stays_quiet(models) -> None:
    code = (
        "import sys\n"
        "import ganforge.inference, ganforge.cli\n"
        "from ganforge.inference import Generator\n"
        f"g = Generator.load({str(models['cond'])!r}, provider='auto')\n"
        "g.sample(3, seed=0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert result.stderr == ""  # no onnxruntime CUDA error spam on CPU-only machines


class _CountingSession:
    """An onnxruntime session that records the batch size of every run."""

    def __init__(self, session) -> None:
        self.session, self.batches = session, []

    def run(self, outputs, feed):
        self.batches.append(len(feed["z"]))
        return self.session.run(outputs, feed)

    def __getattr__(self, name):
        return getattr(self.session, name)


@pytest.mark.parametrize("name", ["uncond", "cond"])
def test_batch_split_across_threads_changes_no_byte(models, name) -> None:
    one = Generator.load(models[name], provider="cpu", threads=1)
    three = Generator.load(models[name], provider="cpu", threads=3)
    assert (one.workers, three.workers) == (1, 3)
    three.batch_size = 50  # 130 samples: batches of 50, 50, 30, each split in three
    for num in (1, 5, 6, 7, 64, 130):
        np.testing.assert_array_equal(three.sample(num, seed=num), one.sample(num, seed=num))


def test_batch_split_runs_slices_on_the_one_thread_session(models) -> None:
    from ganforge.inference import create_session

    path = models["cond"]
    gen = Generator.load(path, provider="cpu", threads=2)
    # the small batches' session lets its threads sleep between runs, so they leave the
    # cores to the slices; a one-thread generator keeps onnxruntime's default
    spin = "session.intra_op.allow_spinning"
    assert gen.session.get_session_options().get_session_config_entry(spin) == "0"
    one = Generator.load(path, provider="cpu", threads=1)
    with pytest.raises(RuntimeError, match="does not have configuration"):
        one.session.get_session_options().get_session_config_entry(spin)
    main = _CountingSession(gen.session)
    slices = _CountingSession(create_session(path, "cpu", threads=1))
    gen = Generator(main, gen.metadata, workers=2, worker_session=slices)
    gen.sample(3, seed=0)  # under two samples per worker: one run, on the main session
    gen.sample(9, seed=0)  # 4 + 5 on the one-thread session
    assert main.batches == [3] and sorted(slices.batches) == [4, 5]
    with pytest.raises(ValueError, match="worker_session"):
        Generator(gen.session, gen.metadata, workers=2)
    with pytest.raises(GeneratorInputError, match="threads = 0"):
        Generator.load(path, provider="cpu", threads=0)


def test_concurrent_callers_share_the_split_pool(models) -> None:
    from concurrent.futures import ThreadPoolExecutor

    gen = Generator.load(models["uncond"], provider="cpu", threads=2)
    expected = {seed: gen.sample(20, seed=seed) for seed in range(8)}
    with ThreadPoolExecutor(4) as callers:  # as the server's request threads do
        got = list(callers.map(lambda s: gen.sample(20, seed=s), range(8)))
    for seed in range(8):
        np.testing.assert_array_equal(got[seed], expected[seed])
