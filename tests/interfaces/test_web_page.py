"""The browser page in real headless Chromium: it loads, draws a grid, and matches the library."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import export_models, start_server, stop

from ganforge.inference import Generator, make_grid, web

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("GANFORGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 60_000


def _needs() -> str | None:
    if web.missing(web.PAGE_FILES):
        return f"page runtime not built: {web.BUILD_HINT}"
    if not Path(CHROMIUM).is_file():
        return "no chromium (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright-python is not installed"
    return None


# CI must not skip these silently: .ci/run installs chromium and builds the assets, and sets
# GANFORGE_REQUIRE_BROWSER=1 so that a missing piece fails instead.
_missing = _needs()
if _missing and os.environ.get("GANFORGE_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"browser test cannot run: {_missing}")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing is not None, reason=_missing or "")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from ganforge.models import GeneratorSpec

    out = tmp_path_factory.mktemp("web")
    specs = {
        "grey": GeneratorSpec(arch="dcgan", nz=16, sample_shape=(1, 16, 16), ngf=8, ndf=8),
        "cond": GeneratorSpec(
            arch="dcgan", nz=8, sample_shape=(3, 32, 32), ngf=8, ndf=8, num_classes=4
        ),
        "latent": GeneratorSpec(
            arch="dcgan",
            nz=8,
            sample_shape=(1, 16, 16),
            ngf=8,
            ndf=8,
            num_classes=3,
            class_prior=(0.2, 0.5, 0.3),
            class_names=("ring", "<b>disc</b>", "square"),  # shown as text, never markup
        ),  # fmt: skip
    }
    return export_models(out, specs)


def _open_page(browser, url):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
    # everything the page loads comes from the ganforge server: no CDN, no other host
    page.on(
        "request",
        lambda req: (
            None if req.url.startswith(url + "/") else errors.append(f"off-site: {req.url}")
        ),
    )
    page.goto(url + "/", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "['done', 'error'].includes(document.body.dataset.state)", timeout=TIMEOUT_MS
    )
    assert page.evaluate("document.body.dataset.state") == "done", (
        page.inner_text("#status"), errors,
    )  # fmt: skip
    return page, errors


def _grid(page, seed: int, num: int, label="cycle") -> np.ndarray:
    got = page.evaluate("([s, n, l]) => window.ganforge.generate(s, n, l)", [seed, num, label])
    rgba = np.asarray(got["rgba"], np.uint8).reshape(got["height"], got["width"], 4)
    assert (rgba[..., 3] == 255).all()
    return rgba[..., :3]


@pytest.mark.parametrize("name", ["grey", "cond", "latent"])
def test_page_draws_the_library_s_images(browser, models, name, tmp_path):
    proc, url = start_server(models[name])
    try:
        page, errors = _open_page(browser, url)
        gen = Generator.load(models[name], "cpu")
        # the grid it drew on load (seed 0, 16 samples) is not blank
        first = _grid(page, 0, 16)
        assert first.std() > 1.0 and len(np.unique(first)) > 10
        # the class picker shows for a model with classes only (a CSS rule must not undo
        # `hidden`), with one entry per class after the default
        assert page.is_visible("#class-box") == gen.metadata.has_classes
        options = page.eval_on_selector_all("#class option", "els => els.map(e => e.value)")
        default = "any" if gen.metadata.latent_class else "cycle"
        want = [default, *map(str, range(gen.metadata.num_classes))]
        assert options == (want if gen.metadata.has_classes else [])
        # so does the class arithmetic (test_page_draws_the_library_s_class_arithmetic)
        assert page.is_visible("#arith-box") == gen.metadata.has_classes
        cases = [(0, 16, None), (123456, 9, None)]
        if gen.metadata.has_classes:
            cases += [(7, 6, 2), (8, 9, 0)]
        for seed, num, label in cases:
            shown = _grid(page, seed, num, "cycle" if label is None else label)
            _assert_same_pixels(shown, make_grid(gen.sample(num, seed=seed, labels=label)), seed)
        page.screenshot(path=str(tmp_path / f"page_{name}.png"))  # the last case, as shown
        # the walk animates: the canvas changes between frames, then stops
        page.click("#walk")
        before = page.evaluate("document.getElementById('status').textContent")
        page.wait_for_function(
            f"document.getElementById('status').textContent !== {before!r}"
            " && document.getElementById('status').textContent.includes('t = 0.1')",
            timeout=TIMEOUT_MS,
        )
        page.click("#walk")
        assert not errors, errors
        page.close()
    finally:
        stop(proc)


def _assert_same_pixels(shown: np.ndarray, expected: np.ndarray, seed: int) -> None:
    """The page's RGB grid is the library's (grey repeated to RGB), to float rounding."""
    if expected.shape[-1] == 1:
        expected = np.repeat(expected, 3, axis=-1)
    assert shown.shape == expected.shape
    diff = np.abs(shown.astype(int) - expected.astype(int))
    assert diff.max() <= 1, f"seed {seed}: max pixel difference {diff.max()}"
    # ±1 is for float rounding at a .5 boundary: it must stay rare
    assert (diff > 0).mean() < 0.01, f"seed {seed}: {(diff > 0).mean():.2%} differ"


def _rgb(got: dict) -> np.ndarray:
    rgba = np.asarray(got["rgba"], np.uint8).reshape(got["height"], got["width"], 4)
    assert (rgba[..., 3] == 255).all()
    return rgba[..., :3]


@pytest.mark.parametrize("name", ["cond", "latent"])
def test_page_draws_the_library_s_class_arithmetic(browser, models, name, tmp_path):
    proc, url = start_server(models[name])
    try:
        page, errors = _open_page(browser, url)
        gen = Generator.load(models[name], "cpu")
        assert page.is_visible("#arith-box") and page.is_visible("#arith-canvas")
        pickers = [f"#arith-{x}" for x in "abc"]
        for picker in pickers:  # one entry per class
            values = page.eval_on_selector_all(f"{picker} option", "els => els.map(e => e.value)")
            assert values == [str(k) for k in range(gen.metadata.num_classes)]
        # the grid it drew on load: the pickers' defaults 0 − 1 + 2, 3 per class, seed 0
        cases = [(0, (0, 1, 2), 3, True), (77, (2, 0, 1), 3, False), (5, (1, 1, 0), 2, False)]
        for seed, (a, b, c), k, on_load in cases:
            if on_load:
                got = page.evaluate(
                    "() => { const c = document.getElementById('arith-canvas'); return {"
                    " width: c.width, height: c.height, rgba: Array.from(c.getContext('2d')"
                    ".getImageData(0, 0, c.width, c.height).data) }; }"
                )
            else:
                got = page.evaluate(
                    "([s, a, b, c, k]) => window.ganforge.arithmetic(s, a, b, c, k)",
                    [seed, a, b, c, k],
                )
                # the rows' labels: index and name (once where the name is the index)
                names = [n if n == str(i) else f"{i}: {n}"
                         for i, n in enumerate(gen.metadata.class_names)]  # fmt: skip
                want = [f"a = {names[a]}", f"− b = {names[b]}", f"+ c = {names[c]}"]
                assert got["labels"] == [*want, "= a − b + c, as c"]
            expected = gen.class_arithmetic(a, b, c, per_class=k, seed=seed).grid()
            _assert_same_pixels(_rgb(got), expected, seed)
        # the controls draw it too, and a bad count is one line in the view, not a crash
        page.select_option("#arith-a", "2")
        page.select_option("#arith-b", "0")
        page.select_option("#arith-c", "1")
        page.fill("#arith-k", "3")
        page.fill("#arith-seed", "78")
        page.click("#arithmetic")
        page.wait_for_function(
            "document.getElementById('arith-status').textContent.startsWith('seed 78')",
            timeout=TIMEOUT_MS,
        )
        page.fill("#arith-k", "17")
        page.click("#arithmetic")
        page.wait_for_selector("#arith-status.error", timeout=TIMEOUT_MS)
        assert page.inner_text("#arith-status") == "per class = 17: must be an integer in 1..16"
        page.fill("#arith-k", "3")
        page.click("#arithmetic")
        page.wait_for_selector("#arith-status:not(.error)", timeout=TIMEOUT_MS)
        page.set_viewport_size({"width": 900, "height": 1300})
        page.screenshot(path=str(tmp_path / f"arithmetic_{name}.png"), full_page=True)
        assert not errors, errors
        page.close()
    finally:
        stop(proc)
