// The page's logic: load the ONNX generator in onnxruntime-web and draw grids and walks.
// window.ganforge exposes `ready` and `generate` so that tests can drive the page.
import * as ort from "/static/vendor/ort.wasm.min.mjs";
import { normals, placeInClass, slerp } from "/static/prng.js";

const $ = (id) => document.getElementById(id);
const PADDING = 2; // as ganforge.inference.make_grid
const WALK_FRAMES = 40; // frames between two waypoints

ort.env.wasm.wasmPaths = "/static/vendor/";
// One thread: SharedArrayBuffer needs cross-origin isolation headers, and results stay
// independent of the machine's core count.
ort.env.wasm.numThreads = 1;

let session = null;
let meta = null;
let walking = false;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// A latent-class model takes z alone: a chosen class moves each z₀ into its interval.
function classLatents(z, num) {
  const chosen = meta.latent_class ? $("class").value : "any";
  if (!/^\d+$/.test(chosen)) return z; // "any" (or no class chosen)
  return placeInClass(z, num, meta.nz, Number(chosen), meta.class_prior);
}

function labelsFor(num) {
  if (!meta.conditional) return null;
  const chosen = $("class").value;
  const out = new BigInt64Array(num);
  for (let i = 0; i < num; i++) {
    out[i] = BigInt(chosen === "cycle" ? i % meta.num_classes : Number(chosen));
  }
  return out;
}

async function run(z, num, labels) {
  const feeds = { z: new ort.Tensor("float32", classLatents(z, num), [num, meta.nz]) };
  if (labels) feeds.label = new ort.Tensor("int64", labels, [num]);
  const result = await session.run(feeds);
  return result[meta.output].data; // float32 [num, C, H, W]
}

// float [N, C, H, W] in value_range -> RGBA grid laid out as make_grid (square-ish rows).
function drawGrid(samples, num, ncol) {
  const [c, h, w] = meta.sample_shape;
  const [lo, hi] = meta.value_range || [-1, 1];
  const cols = Math.max(1, Math.min(ncol || Math.ceil(Math.sqrt(num)), num));
  const rows = Math.ceil(num / cols);
  const width = cols * (w + PADDING) + PADDING;
  const height = rows * (h + PADDING) + PADDING;
  const canvas = $("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  const px = image.data;
  for (let i = 3; i < px.length; i += 4) px[i] = 255; // opaque black padding
  const scale = 255 / (hi - lo);
  const plane = h * w;
  for (let n = 0; n < num; n++) {
    const top = PADDING + Math.floor(n / cols) * (h + PADDING);
    const left = PADDING + (n % cols) * (w + PADDING);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = ((top + y) * width + left + x) * 4;
        for (let k = 0; k < 3; k++) {
          const v = samples[n * c * plane + (c === 1 ? 0 : k) * plane + y * w + x];
          px[at + k] = Math.min(255, Math.max(0, Math.round((v - lo) * scale)));
        }
      }
    }
  }
  ctx.putImageData(image, 0, 0);
}

function readInt(id, lo, hi) {
  const value = Number($(id).value);
  if (!Number.isSafeInteger(value) || value < lo || value > hi) {
    throw new RangeError(`${id} = ${$(id).value}: must be an integer in ${lo}..${hi}`);
  }
  return value;
}

async function generate(seed, num) {
  const z = normals(seed, num, meta.nz);
  drawGrid(await run(z, num, labelsFor(num)), num);
  document.body.dataset.state = "done";
  status(`${num} samples from seed ${seed}`);
}

async function onGenerate() {
  walking = false;
  try {
    await generate(readInt("seed", 0, Number.MAX_SAFE_INTEGER), readInt("num", 1, 256));
  } catch (err) {
    status(String(err.message || err), true);
  }
}

async function walk() {
  if (walking) {
    walking = false;
    return;
  }
  walking = true;
  $("walk").textContent = "Stop walk";
  let seed;
  try {
    seed = readInt("seed", 0, Number.MAX_SAFE_INTEGER - 1000);
  } catch (err) {
    status(String(err.message || err), true);
    walking = false;
    $("walk").textContent = "Latent walk";
    return;
  }
  let from = normals(seed, 1, meta.nz);
  let to = normals(seed + 1, 1, meta.nz);
  let frame = 0;
  const labels = labelsFor(1);
  while (walking) {
    const t = frame / WALK_FRAMES;
    drawGrid(await run(slerp(from, to, t), 1, labels), 1);
    status(`slerp walk: seed ${seed} → ${seed + 1}, t = ${t.toFixed(2)}`);
    await new Promise((done) => requestAnimationFrame(done));
    frame += 1;
    if (frame > WALK_FRAMES) {
      frame = 1;
      seed += 1;
      from = to;
      to = normals(seed + 1, 1, meta.nz);
    }
  }
  $("walk").textContent = "Latent walk";
}

async function start() {
  const reply = await fetch("/v1/info");
  if (!reply.ok) throw new Error(`/v1/info answered ${reply.status}`);
  meta = (await reply.json()).model;
  const [c, h, w] = meta.sample_shape;
  $("about").textContent =
    `${meta.arch} generator: latent ${meta.nz}, images ${c}×${h}×${w}` +
    (meta.has_classes ? `, ${meta.num_classes} classes` : "") + ` (${meta.weights} weights).`;
  if (meta.has_classes) {
    const select = $("class");
    if (meta.latent_class) select.add(new Option("any (drawn from the latent)", "any"));
    else select.add(new Option("all (cycle)", "cycle"));
    meta.class_names.forEach((name, i) => select.add(new Option(`${i}: ${name}`, String(i))));
    $("class-box").hidden = false;
  }
  session = await ort.InferenceSession.create("/model.onnx", { executionProviders: ["wasm"] });
  $("controls").disabled = false;
  $("generate").onclick = onGenerate;
  $("new").onclick = () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 31));
    onGenerate();
  };
  $("walk").onclick = walk;
  document.body.dataset.state = "ready";
  await onGenerate();
}

const ready = start().catch((err) => {
  document.body.dataset.state = "error";
  status(`could not start: ${err.message || err}`, true);
  throw err;
});

window.ganforge = {
  ready,
  // Draw `num` samples of `seed` (label: a class index; anything else is the default, "cycle"
  // for a conditional model and "any" for a latent-class one) and return the grid's RGBA.
  async generate(seed, num, label = null) {
    await ready;
    if (meta.has_classes) {
      const values = Array.from($("class").options, (option) => option.value);
      $("class").value = values.includes(String(label)) ? String(label) : values[0];
    }
    await generate(seed, num);
    const canvas = $("canvas");
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, rgba: Array.from(data) };
  },
};
