"""The browser page's files: ganforge's own (committed) and the runtime copied from npm.

`static/` holds the page (index.html, app.js, prng.js). `static/vendor/` holds what
`npm --prefix web ci && npm --prefix web run build` copies from the packages pinned in
`web/package-lock.json` (onnxruntime-web's WebAssembly build, Swagger UI): 14 MB of
WebAssembly that is built, not committed; `./run.sh` builds it when npm is present.
"""

from __future__ import annotations

import json
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
BUILD_HINT = "build the page's assets with `npm --prefix web ci && npm --prefix web run build`"

# What the page loads from vendor/: onnxruntime-web's WebAssembly runtime.
PAGE_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
DOCS_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


def missing(files: tuple[str, ...]) -> list[str]:
    """The vendor files of `files` that are not built (empty when all are there)."""
    return [name for name in files if not (VENDOR_DIR / name).is_file()]


def vendor_versions() -> dict[str, str]:
    """npm package -> version of the built vendor files ({} when not built)."""
    try:
        manifest = json.loads((VENDOR_DIR / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: entry.get("version", "?") for name, entry in manifest.items()}
