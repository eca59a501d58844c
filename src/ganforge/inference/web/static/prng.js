// ganforge-normal-v1: the seeded latent generator of ganforge.inference.prng, in JavaScript.
// Same integer steps (modulo 2**32 via Math.imul and >>> 0) and the same float64 Box–Muller,
// so a seed gives the Python library's latent here too. See prng.py for the specification.

export const ALGORITHM = "ganforge-normal-v1";
export const MAX_SEED = Number.MAX_SAFE_INTEGER; // 2**53 - 1

function mix(x) {
  // Chris Wellons' triple32 hash on an unsigned 32-bit integer.
  x = x >>> 0;
  x ^= x >>> 17;
  x = Math.imul(x, 0xed5ad4bb) >>> 0;
  x ^= x >>> 11;
  x = Math.imul(x, 0xac4c1b51) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x31848bab) >>> 0;
  x ^= x >>> 14;
  return x >>> 0;
}

function key(seed) {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed = ${seed}: must be an integer in 0..${MAX_SEED}`);
  }
  const lo = seed % 4294967296;
  const hi = Math.floor(seed / 4294967296);
  return mix((lo + mix((hi ^ 0x85ebca6b) >>> 0)) >>> 0);
}

/** Words `offset` .. `offset + count` of the stream for `seed` (Uint32Array). */
export function uint32Words(seed, count, offset = 0) {
  const k = key(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = mix((mix(((offset + i) ^ k) >>> 0) + k) >>> 0);
  return out;
}

/**
 * Float32Array of num * nz standard normals (row n = latent start + n), as
 * prng.normals(seed, num, nz, start): `start` skips the stream's first `start` latents.
 */
export function normals(seed, num, nz, start = 0) {
  const first = start * nz;
  const total = num * nz;
  if (first + total >= 2 ** 32) {
    throw new RangeError(`${start + num} × ${nz} latents exceed the stream's 2**32 words`);
  }
  // Box–Muller turns word pairs (2i, 2i+1) into normals (2i, 2i+1): start on a pair.
  const skip = first % 2;
  const pairs = Math.floor((total + skip + 1) / 2);
  const words = uint32Words(seed, 2 * pairs, first - skip);
  const out = new Float32Array(total);
  for (let p = 0; p < pairs; p++) {
    const u1 = (words[2 * p] + 1.0) / 4294967296;
    const u2 = words[2 * p + 1] / 4294967296;
    const radius = Math.sqrt(-2.0 * Math.log(u1));
    const angle = 2.0 * Math.PI * u2;
    const at = 2 * p - skip;
    if (at >= 0) out[at] = radius * Math.cos(angle);
    if (at + 1 < total) out[at + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** Spherical interpolation between two latents (as ganforge.inference.latent.slerp). */
export function slerp(z0, z1, t) {
  let dot = 0, n0 = 0, n1 = 0;
  for (let i = 0; i < z0.length; i++) {
    dot += z0[i] * z1[i];
    n0 += z0[i] * z0[i];
    n1 += z1[i] * z1[i];
  }
  const cos = Math.min(1, Math.max(-1, dot / Math.max(Math.sqrt(n0) * Math.sqrt(n1), 1e-12)));
  const omega = Math.acos(cos);
  const out = new Float32Array(z0.length);
  const s = Math.sin(omega);
  for (let i = 0; i < z0.length; i++) {
    out[i] = s < 1e-6
      ? (1 - t) * z0[i] + t * z1[i]
      : (Math.sin((1 - t) * omega) * z0[i] + Math.sin(t * omega) * z1[i]) / s;
  }
  return out;
}

// ---- a class on request for a latent-class generator (as ganforge.inference.latent) ----
// z₀ moves into the class's interval of the prior: z₀ = Φ⁻¹(c_k + (c_{k+1} − c_k)·u) with
// u = Φ(z₀) kept off the ends by CLASS_EDGE; the same float64 steps as the Python library.

const CLASS_EDGE = 1e-4;
const SQRT_2PI = 2.5066282746310002;
const HART_NUM = [0.0352624965998911, 0.700383064443688, 6.37396220353165, 33.912866078383,
  112.079291497871, 221.213596169931, 220.206867912376];
const HART_DEN = [0.0883883476483184, 1.75566716318264, 16.064177579207, 86.7807322029461,
  296.564248779674, 637.333633378831, 793.826512519948, 440.413735824752];
const ACK_A = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
  -30.66479806614716, 2.506628277459239];
const ACK_B = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
  -13.28068155288572];
const ACK_C = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838,
  -2.549732539343734, 4.374664141464968, 2.938163982698783];
const ACK_D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
const ACK_LOW = 0.02425;

function horner(coeffs, x) {
  let out = coeffs[0];
  for (let i = 1; i < coeffs.length; i++) out = out * x + coeffs[i];
  return out;
}

/** Φ(x) (Hart's algorithm 5666, as ganforge.inference.latent.normal_cdf). */
export function normalCdf(x) {
  const a = Math.min(Math.abs(x), 37.0);
  const e = Math.exp(-a * a / 2.0);
  let lower;
  if (a < 7.07106781186547) {
    lower = e * horner(HART_NUM, a) / horner(HART_DEN, a);
  } else {
    let cf = a + 0.65;
    for (const k of [4.0, 3.0, 2.0, 1.0]) cf = a + k / cf;
    lower = e / cf / SQRT_2PI;
  }
  return x > 0 ? 1.0 - lower : lower;
}

/** Φ⁻¹(p) (Acklam and one Halley step, as ganforge.inference.latent.normal_ppf). */
export function normalPpf(p) {
  p = Math.min(Math.max(p, 1e-300), 1.0 - 1e-16);
  const q = Math.min(p, 1.0 - p);
  let x;
  if (q < ACK_LOW) {
    const t = Math.sqrt(-2.0 * Math.log(q));
    const tail = horner(ACK_C, t) / (horner(ACK_D, t) * t + 1.0);
    x = p < 0.5 ? tail : -tail;
  } else {
    const r = (p - 0.5) ** 2;
    x = (p - 0.5) * horner(ACK_A, r) / (horner(ACK_B, r) * r + 1.0);
  }
  const u = (normalCdf(x) - p) * SQRT_2PI * Math.exp(x * x / 2.0);
  return x - u / (1.0 + x * u / 2.0);
}

/** Latents z [num * nz] with each row's z₀ moved into class `label`'s interval of `prior`. */
export function placeInClass(z, num, nz, label, prior) {
  let lo = 0;
  for (let k = 0; k < label; k++) lo += prior[k];
  const hi = label === prior.length - 1 ? 1.0 : lo + prior[label];
  const out = Float32Array.from(z);
  for (let n = 0; n < num; n++) {
    const u = normalCdf(Math.fround(z[n * nz]));
    out[n * nz] = normalPpf(lo + (hi - lo) * (CLASS_EDGE + (1.0 - 2.0 * CLASS_EDGE) * u));
  }
  return out;
}
