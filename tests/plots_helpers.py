"""The DVC plots page in headless Chromium with the network refused: which charts it drew."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("GANFORGE_CHROMIUM", "/usr/bin/chromium"))


def need_browser() -> None:
    """Skip the calling test when Chromium or playwright is missing; under .ci/run
    (GANFORGE_REQUIRE_BROWSER=1, which installs both) fail instead, so CI never skips it."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} missing: `.ci/run` installs Debian's chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright-python is not installed (a dev dependency of `./run.sh test`)"
    if missing and os.environ.get("GANFORGE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test cannot run: {missing}")
    if missing:
        pytest.skip(missing)


def vega_plot_ids(dvc_yaml: dict) -> list[str]:
    """The ids of the top-level plot definitions that are charts (not image files)."""
    ids = []
    for entry in dvc_yaml.get("plots", []):
        if isinstance(entry, dict):
            ids.extend(entry)
    return ids


# Wraps vegaEmbed as the page defines it, so that the test can read each chart's view.
KEEP_VIEWS = """
(() => {
  let embed;
  window.__views = {};
  Object.defineProperty(window, "vegaEmbed", {
    configurable: true,
    get() {
      return embed && ((el, spec, opts) => embed(el, spec, opts).then((result) => {
        window.__views[el] = result.view;
        return result;
      }));
    },
    set(value) { embed = value; },
  });
})();
"""
# The points of a chart's point marks, [x field, y field] of their data, from its scenegraph.
POINTS = """([id, x, y]) => {
  const out = [];
  const walk = (node) => {
    if (!node) return;
    if (node.mark && node.mark.marktype === "symbol" && node.datum && y in node.datum) {
      out.push([node.datum[x], node.datum[y]]);
    }
    for (const child of node.items || []) walk(child);
  };
  walk(window.__views["#" + id].scenegraph().root);
  return out;
}"""
# The bars of a chart: [y category, series, share].
BARS = """(id) => {
  const out = [];
  const walk = (node) => {
    if (!node) return;
    if (node.mark && node.mark.marktype === "rect" && node.datum && "share" in node.datum) {
      out.push([node.datum.class, node.datum.series, node.datum.share]);
    }
    for (const child of node.items || []) walk(child);
  };
  walk(window.__views["#" + id].scenegraph().root);
  return out;
}"""


def render_in_chromium(
    page_file: Path, ids: list[str], shot: Path | None = None
) -> tuple[dict[str, int], dict[str, list]]:
    """Open `page_file` with the network refused: the number of svg/canvas under each id,
    and what the FID and class-share charts drew (their points and bars)."""
    assert ids, "no chart to look for"
    sync_api = pytest.importorskip("playwright.sync_api")
    blocked: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def refuse_network(route) -> None:
                url = route.request.url
                if url.startswith(("http://", "https://")):
                    blocked.append(url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", refuse_network)
            page.add_init_script(KEEP_VIEWS)
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(page_file.as_uri())
            selector = " && ".join(
                f"document.querySelector('#{i} svg, #{i} canvas') !== null" for i in ids
            )
            page.wait_for_function(selector, timeout=30_000)
            counts = {i: page.locator(f"#{i} svg, #{i} canvas").count() for i in ids}
            page.wait_for_function(
                f"Object.keys(window.__views).length >= {len(ids)}", timeout=30_000
            )
            drawn = {
                "fid_curve": page.evaluate(POINTS, ["fid_curve", "at", "measured"]),
                "class_histogram": page.evaluate(BARS, "class_histogram"),
            }
            if shot is not None:
                page.set_viewport_size({"width": 1300, "height": 900})
                page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not blocked, f"the page asked the network for {blocked}"
    assert not errors, f"script errors on the page: {errors}"
    return counts, drawn
