// The page's logic: load the ONNX generator in onnxruntime-web and draw grids, walks and
// class arithmetic. window.ganforge exposes `ready`, `generate` and `arithmetic` so that
// tests can drive the page.
import * as ort from "/static/vendor/ort.wasm.min.mjs";
import { normals, placeInClass, slerp } from "/static/prng.js";

const $ = (id) => document.getElementById(id);
const PADDING = 2; // as ganforge.inference.make_grid
const WALK_FRAMES = 40; // frames between two waypoints
// As ganforge.inference.generator.MAX_PER_CLASS: class k's samples start at latent k·16.
const MAX_PER_CLASS = 16;
const SEPARATOR = 128; // as ganforge.inference.grid.SEPARATOR

ort.env.wasm.wasmPaths = "/static/vendor/";
// One thread: SharedArrayBuffer needs cross-origin isolation headers, and results stay
// independent of the machine's core count.
ort.env.wasm.numThreads = 1;

let session = null;
let meta = null;
let walking = false;
let queue = Promise.resolve(); // one session.run at a time: the wasm session is not re-entrant

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

async function exec(z, num, labels) {
  const feeds = { z: new ort.Tensor("float32", z, [num, meta.nz]) };
  if (labels) feeds.label = new ort.Tensor("int64", labels, [num]);
  const job = queue.then(() => session.run(feeds));
  queue = job.catch(() => {});
  return (await job)[meta.output].data; // float32 [num, C, H, W]
}

async function run(z, num, labels) {
  return exec(classLatents(z, num), num, labels);
}

// z [num·nz] with one class per sample: a conditional model takes them as labels, a
// latent-class one gets each z₀ placed in its class's interval (as Generator.run).
async function runClasses(z, num, classes) {
  if (!meta.latent_class) return exec(z, num, BigInt64Array.from(classes, BigInt));
  const nz = meta.nz;
  const placed = Float32Array.from(z);
  for (let n = 0; n < num; n++) {
    const row = z.subarray(n * nz, (n + 1) * nz);
    placed[n * nz] = placeInClass(row, 1, nz, classes[n], meta.class_prior)[0];
  }
  return exec(placed, num, null);
}

// Sample n of float [N, C, H, W] in value_range into the RGBA pixels at (top, left).
function paint(px, width, samples, n, top, left) {
  const [c, h, w] = meta.sample_shape;
  const [lo, hi] = meta.value_range || [-1, 1];
  const scale = 255 / (hi - lo);
  const plane = h * w;
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

function blankCanvas(canvas, width, height) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255; // opaque black padding
  return { ctx, image };
}

// float [N, C, H, W] -> RGBA grid laid out as make_grid (square-ish rows).
function drawGrid(samples, num, ncol) {
  const [, h, w] = meta.sample_shape;
  const cols = Math.max(1, Math.min(ncol || Math.ceil(Math.sqrt(num)), num));
  const rows = Math.ceil(num / cols);
  const width = cols * (w + PADDING) + PADDING;
  const { ctx, image } = blankCanvas($("canvas"), width, rows * (h + PADDING) + PADDING);
  for (let n = 0; n < num; n++) {
    const top = PADDING + Math.floor(n / cols) * (h + PADDING);
    paint(image.data, width, samples, n, top, PADDING + (n % cols) * (w + PADDING));
  }
  ctx.putImageData(image, 0, 0);
}

// ---- class arithmetic (as Generator.class_arithmetic and grid.arithmetic_grid) ----

// Rows a, b, c, a − b + c of k samples and their mean: latents [4 · (k + 1) · nz] in the
// float64 steps of ganforge.inference.latent.arithmetic_table, rounded to float32 once.
function arithmeticTable(seed, classes, k) {
  const nz = meta.nz;
  const cols = k + 1;
  const groups = classes.map((label) => normals(seed, k, nz, label * MAX_PER_CLASS));
  const out = new Float32Array(4 * cols * nz);
  const means = groups.map(() => new Float64Array(nz));
  groups.forEach((z, g) => {
    for (let i = 0; i < nz; i++) {
      let total = z[i];
      for (let j = 1; j < k; j++) total += z[j * nz + i];
      means[g][i] = total / k;
      for (let j = 0; j < k; j++) out[(g * cols + j) * nz + i] = z[j * nz + i];
      out[(g * cols + k) * nz + i] = means[g][i];
    }
  });
  const [a, b, c] = groups;
  for (let i = 0; i < nz; i++) {
    for (let j = 0; j < k; j++) {
      const at = j * nz + i;
      out[(3 * cols + j) * nz + i] = a[at] + c[at] - b[at];
    }
    out[(3 * cols + k) * nz + i] = means[0][i] + means[2][i] - means[1][i];
  }
  return out;
}

// The table [4, cols] as arithmetic_grid lays it out: the last column and the last row
// behind a wider gap crossed by a one-pixel line.
function drawArithmetic(samples, cols) {
  const [, h, w] = meta.sample_shape;
  const rows = 4;
  const extra = 1 + PADDING;
  const width = PADDING + cols * (w + PADDING) + extra;
  const height = PADDING + rows * (h + PADDING) + extra;
  const { ctx, image } = blankCanvas($("arith-canvas"), width, height);
  const px = image.data;
  const lineX = PADDING + (cols - 1) * (w + PADDING);
  const lineY = PADDING + (rows - 1) * (h + PADDING);
  const line = (at) => px.fill(SEPARATOR, 4 * at, 4 * at + 3); // RGB; alpha stays 255
  for (let y = 0; y < height; y++) line(y * width + lineX);
  for (let x = 0; x < width; x++) line(lineY * width + x);
  const tops = [];
  for (let r = 0; r < rows; r++) {
    const top = PADDING + r * (h + PADDING) + (r === rows - 1 ? extra : 0);
    tops.push(top);
    for (let col = 0; col < cols; col++) {
      const left = PADDING + col * (w + PADDING) + (col === cols - 1 ? extra : 0);
      paint(px, width, samples, r * cols + col, top, left);
    }
  }
  ctx.putImageData(image, 0, 0);
  // the column heads over the samples and over the means, in % of the canvas width
  $("arith-head-samples").style.left = `${(100 * lineX) / 2 / width}%`;
  $("arith-head-mean").style.left = `${(100 * (lineX + extra + w / 2)) / width}%`;
  return tops.map((top) => (100 * (top + h / 2)) / height);
}

function className(k) {
  const name = meta.class_names[k] ?? "";
  return name === String(k) ? name : `${k}: ${name}`;
}

async function arithmetic(seed, classes, k) {
  const [a, b, c] = classes;
  const z = arithmeticTable(seed, classes, k);
  const rowClasses = [a, b, c, c].flatMap((label) => Array(k + 1).fill(label));
  const centres = drawArithmetic(await runClasses(z, 4 * (k + 1), rowClasses), k + 1);
  const texts = [`a = ${className(a)}`, `− b = ${className(b)}`, `+ c = ${className(c)}`,
    "= a − b + c, as c"];
  const labels = $("arith-labels");
  labels.replaceChildren(...texts.map((text, r) => {
    const span = document.createElement("span");
    span.textContent = text; // class names come from the model file: text, never markup
    span.title = text;
    span.style.top = `${centres[r]}%`;
    return span;
  }));
  $("arith-status").textContent = `seed ${seed}, ${k} samples per class`;
  $("arith-status").className = "";
}

async function onArithmetic() {
  try {
    const classes = ["arith-a", "arith-b", "arith-c"].map((id) => Number($(id).value));
    const seed = readInt("arith-seed", 0, Number.MAX_SAFE_INTEGER, "seed");
    await arithmetic(seed, classes, readInt("arith-k", 1, MAX_PER_CLASS, "per class"));
  } catch (err) {
    $("arith-status").textContent = String(err.message || err);
    $("arith-status").className = "error";
  }
}

function readInt(id, lo, hi, name = id) {
  const value = Number($(id).value);
  if (!Number.isSafeInteger(value) || value < lo || value > hi) {
    throw new RangeError(`${name} = ${$(id).value}: must be an integer in ${lo}..${hi}`);
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
    ["arith-a", "arith-b", "arith-c"].forEach((id, pick) => {
      meta.class_names.forEach((name, i) => $(id).add(new Option(`${i}: ${name}`, String(i))));
      $(id).value = String(pick % meta.num_classes);
    });
    $("arith-box").hidden = false;
  }
  session = await ort.InferenceSession.create("/model.onnx", { executionProviders: ["wasm"] });
  $("controls").disabled = false;
  $("generate").onclick = onGenerate;
  $("new").onclick = () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 31));
    onGenerate();
  };
  $("walk").onclick = walk;
  $("arithmetic").onclick = onArithmetic;
  $("arith-new").onclick = () => {
    $("arith-seed").value = String(Math.floor(Math.random() * 2 ** 31));
    onArithmetic();
  };
  $("arith-controls").disabled = false;
  document.body.dataset.state = "ready";
  await onGenerate();
  if (meta.has_classes) await onArithmetic();
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
    return pixels($("canvas"));
  },
  // Draw class arithmetic a − b + c with k samples per class from `seed`, as the controls
  // would, and return the grid's RGBA and the rows' labels.
  async arithmetic(seed, a, b, c, k = 3) {
    await ready;
    if (!meta.has_classes) throw new Error("this generator has no classes");
    ["arith-a", "arith-b", "arith-c"].forEach((id, i) => { $(id).value = String([a, b, c][i]); });
    $("arith-seed").value = String(seed);
    $("arith-k").value = String(k);
    await arithmetic(seed, [a, b, c], k);
    const labels = Array.from($("arith-labels").children, (span) => span.textContent);
    return { ...pixels($("arith-canvas")), labels };
  },
};

function pixels(canvas) {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return { width: canvas.width, height: canvas.height, rgba: Array.from(data) };
}
