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

/** The first `count` 32-bit words of the stream for `seed` (Uint32Array). */
export function uint32Words(seed, count) {
  const k = key(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = mix((mix((i ^ k) >>> 0) + k) >>> 0);
  return out;
}

/** Float32Array of num * nz standard normals (row n = latent n), as prng.normals(seed, num, nz). */
export function normals(seed, num, nz) {
  const total = num * nz;
  const pairs = Math.floor((total + 1) / 2);
  const words = uint32Words(seed, 2 * pairs);
  const out = new Float32Array(total);
  for (let p = 0; p < pairs; p++) {
    const u1 = (words[2 * p] + 1.0) / 4294967296;
    const u2 = words[2 * p + 1] / 4294967296;
    const radius = Math.sqrt(-2.0 * Math.log(u1));
    const angle = 2.0 * Math.PI * u2;
    out[2 * p] = radius * Math.cos(angle);
    if (2 * p + 1 < total) out[2 * p + 1] = radius * Math.sin(angle);
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
