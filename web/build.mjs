// Copy the runtime files the browser page needs from the pinned npm packages into ganforge's
// package data (src/ganforge/inference/web/static/vendor/), with a manifest of their versions.
// Run after `npm ci` (./run.sh does both); nothing is fetched when the page runs.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "src", "ganforge", "inference", "web", "static", "vendor");

// package -> files under it. onnxruntime-web's WebAssembly build only (no WebGPU/WebGL):
// ort.wasm.min.mjs loads ort-wasm-simd-threaded.{mjs,wasm} from the same folder.
const wanted = {
  "onnxruntime-web": [
    "dist/ort.wasm.min.mjs",
    "dist/ort-wasm-simd-threaded.mjs",
    "dist/ort-wasm-simd-threaded.wasm",
  ],
  "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"],
};

rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
const manifest = {};
for (const [pkg, files] of Object.entries(wanted)) {
  const root = join(here, "node_modules", pkg);
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  manifest[pkg] = { version, files: [] };
  for (const file of files) {
    const name = file === "LICENSE" ? `${pkg}.LICENSE` : file.split("/").pop();
    copyFileSync(join(root, file), join(target, name));
    manifest[pkg].files.push(name);
  }
}
writeFileSync(join(target, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`ganforge web assets -> ${target}`);
for (const [pkg, { version, files }] of Object.entries(manifest)) {
  console.log(`  ${pkg}@${version}: ${files.join(", ")}`);
}
