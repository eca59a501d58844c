"""Seeded standard-normal latents that any language can reproduce bit for bit.

numpy's `default_rng(seed).standard_normal` (PCG64 + ziggurat) cannot be rewritten in a
browser without porting numpy's internals, so ganforge draws latents with a small,
documented counter-based generator instead. `ganforge/inference/web/static/prng.js` is the
same algorithm in JavaScript; the browser page and the Python library therefore give the same
latent for the same seed (a test runs both).

The algorithm ("ganforge-normal-v1"), all integer arithmetic modulo 2**32:

    mix(x)  = Chris Wellons' `triple32` hash: x ^= x >> 17; x *= 0xED5AD4BB; x ^= x >> 11;
              x *= 0xAC4C1B51; x ^= x >> 15; x *= 0x31848BAB; x ^= x >> 14
    key     = mix(lo + mix(hi ^ 0x85EBCA6B))      seed = hi * 2**32 + lo, 0 <= seed < 2**53
    word(i) = mix(mix(i ^ key) + key)             i = 0, 1, 2, ... (a bijection of i per key)
    normal j (Box–Muller on the pair p = j // 2, in float64):
        u1 = (word(2p) + 1) / 2**32,  u2 = word(2p + 1) / 2**32
        r  = sqrt(-2 ln u1);  z_j = r cos(2π u2) for even j, r sin(2π u2) for odd j
    latent n of a batch is normals n·nz .. n·nz + nz − 1, rounded to float32.

A prefix of a batch is the smaller batch: `normals(seed, 4, nz)` is the first four rows of
`normals(seed, 64, nz)`. Not cryptographic; its moments and normality are checked by tests.
JavaScript's Math.log/cos/sin may differ from numpy's in the last bit of a float64, which
survives the float32 rounding only rarely (then by one float32 ulp).
"""

from __future__ import annotations

import numpy as np

ALGORITHM = "ganforge-normal-v1"
MAX_SEED = 2**53 - 1  # JavaScript numbers hold integers exactly up to here
_M1, _M2, _M3 = np.uint32(0xED5AD4BB), np.uint32(0xAC4C1B51), np.uint32(0x31848BAB)


def _mix(x: np.ndarray) -> np.ndarray:
    """triple32 on a uint32 array (wrapping multiplication, as in C and Math.imul)."""
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(17)
    x *= _M1
    x ^= x >> np.uint32(11)
    x *= _M2
    x ^= x >> np.uint32(15)
    x *= _M3
    x ^= x >> np.uint32(14)
    return x


def _key(seed: int) -> np.uint32:
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed = {seed!r}: must be an integer in 0..{MAX_SEED}")
    lo, hi = int(seed) & 0xFFFFFFFF, int(seed) >> 32
    inner = _mix(np.array([hi ^ 0x85EBCA6B], np.uint32))
    return _mix(np.array([lo], np.uint32) + inner)[0]


def uint32_words(seed: int, count: int, offset: int = 0) -> np.ndarray:
    """Words `offset` .. `offset + count` of the stream for `seed` (uint32 [count])."""
    key = _key(seed)
    i = np.arange(offset, offset + count, dtype=np.int64).astype(np.uint32)
    return _mix(_mix(i ^ key) + key)


def normals(seed: int, num: int, nz: int, start: int = 0) -> np.ndarray:
    """float32 [num, nz] standard normals of the ganforge-normal-v1 stream for `seed`.

    `start` skips the first `start` latents: `normals(s, a, nz)` followed by
    `normals(s, b, nz, start=a)` equals `normals(s, a + b, nz)`, so large requests can be
    drawn in batches.
    """
    first, end = start * nz, (start + num) * nz
    if end >= 2**32:
        raise ValueError(f"{start + num} × {nz} latents exceed the stream's 2**32 words")
    # Box–Muller turns word pairs (2i, 2i+1) into normals (2i, 2i+1): start on a pair.
    skip = first % 2
    total = end - first + skip
    pairs = (total + 1) // 2
    words = uint32_words(seed, 2 * pairs, offset=first - skip).astype(np.float64)
    u1 = (words[0::2] + 1.0) / 2.0**32
    u2 = words[1::2] / 2.0**32
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    out = np.empty(2 * pairs, np.float64)
    out[0::2] = radius * np.cos(angle)
    out[1::2] = radius * np.sin(angle)
    return out[skip:total].astype(np.float32).reshape(num, nz)
