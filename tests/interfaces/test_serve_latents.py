"""The portable latent generator: normal enough, and the same stream in Python and JavaScript."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ganforge.inference import prng

PRNG_JS = Path(__file__).resolve().parents[2] / "src/ganforge/inference/web/static/prng.js"


def test_normals_are_standard_normal_and_independent():
    z = prng.normals(0, 1000, 100).ravel()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01
    other = prng.normals(1, 1000, 100).ravel()
    assert abs(np.corrcoef(z, other)[0, 1]) < 0.01


def test_same_seed_same_latents_and_prefix_property():
    big = prng.normals(7, 64, 10)
    np.testing.assert_array_equal(big, prng.normals(7, 64, 10))
    np.testing.assert_array_equal(big[:4], prng.normals(7, 4, 10))
    assert not np.array_equal(big, prng.normals(8, 64, 10))
    assert prng.normals(3, 3, 5).dtype == np.float32


@pytest.mark.parametrize("seed", [-1, 2**53, 1.5, True])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        prng.normals(seed, 1, 4)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_twin_gives_the_same_stream(tmp_path):
    script = tmp_path / "check.mjs"
    script.write_text(
        f"import {{ normals, uint32Words }} from {json.dumps(PRNG_JS.as_uri())};\n"
        "const out = {};\n"
        "for (const seed of [0, 1, 123456789, 2 ** 40 + 7, 2 ** 53 - 1]) {\n"
        "  out[seed] = { w: Array.from(uint32Words(seed, 16)),\n"
        "                z: Array.from(normals(seed, 3, 33)) };\n"
        "}\n"
        "console.log(JSON.stringify(out));\n"
    )
    got = json.loads(subprocess.run(["node", str(script)], capture_output=True, text=True,
                                    check=True, timeout=60).stdout)  # fmt: skip
    for seed, streams in got.items():
        np.testing.assert_array_equal(streams["w"], prng.uint32_words(int(seed), 16))
        js = np.asarray(streams["z"], np.float32).reshape(3, 33)
        # float64 libm results may differ in the last bit: at most one float32 ulp apart
        np.testing.assert_array_max_ulp(js, prng.normals(int(seed), 3, 33), maxulp=1)


@pytest.mark.parametrize("nz", [100, 7, 1])
def test_a_stream_drawn_in_batches_equals_one_draw(nz):
    """Batch k of a large request starts where batch k-1 ended, odd widths included."""
    whole = prng.normals(11, 10, nz)
    parts = [prng.normals(11, 3, nz), prng.normals(11, 4, nz, 3), prng.normals(11, 3, nz, 7)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
