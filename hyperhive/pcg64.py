"""numpy's PCG64 as ``np.random.default_rng(seed)`` starts it, for a 32-bit seed, in plain Python.

``default_rng(seed)`` hashes the seed through numpy's ``SeedSequence`` (a Python-level class whose
construction and ``generate_state`` allocate arrays, take locks and enter ``np.errstate``) and seeds a
new ``PCG64`` with the result: about a third of a random trial's suggestion. The hash is fixed
arithmetic on 32-bit words (Melissa O'Neill's ``seed_seq`` as numpy implements it in
``numpy/random/bit_generator.pyx``), and PCG64's seeding two steps of its 128-bit LCG
(``pcg_setseq_128_srandom_r``), so :func:`pcg64_state` computes the state ``default_rng(seed)`` starts
from in Python. Two ways to draw from it:

- :func:`seeded_generator`: numpy's own ``Generator``, kept per thread and put in that state (every
  distribution numpy has, the same values);
- :class:`PCG64Stream`: the generator itself in Python (the XSL-RR output of numpy's ``pcg64.h``, the
  32-bit half buffered as numpy buffers it), with the two draws a flat random search makes:
  ``Generator.uniform``'s ``low + (high - low) * next_double`` and ``Generator.integers``'s Lemire
  draw for a range below 2**32 (``buffered_bounded_lemire_uint32`` of ``distributions.c``). A draw
  there costs a few integer operations instead of a numpy call.

``tests/engine/test_pcg64.py`` checks both against numpy for thousands of seeds;
:func:`seeded_generator` checks the state once against numpy and falls back to ``default_rng`` on a
numpy whose seeding differs, and :class:`~hyperhive.rand_fast.RandomSampler` uses the stream only
after checking its draws against hyperopt's on its own space.
"""

from __future__ import annotations

import threading

import numpy as np

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875  # SeedSequence's hashmix (entropy into the pool)
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED  # SeedSequence.generate_state
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715  # SeedSequence's mix
_PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341  # PCG_DEFAULT_MULTIPLIER_128
_POOL = 4  # SeedSequence's default pool size (words)


def _hash_constants(init: int, mult: int, n: int) -> list[tuple[int, int]]:
    """The (xor, multiply) constants of ``n`` successive hash steps: the hash constant moves on by a
    fixed multiplication each step whatever the data, so every step's constants are known ahead."""
    out, h = [], init
    for _ in range(n):
        nxt = (h * mult) & _M32
        out.append((h, nxt))
        h = nxt
    return out


# one entropy word: 4 hashmix steps fill the pool, 12 mix it (every ordered pair of pool words)
_MIX_STEPS = _hash_constants(_INIT_A, _MULT_A, _POOL + _POOL * (_POOL - 1))
_GENERATE_STEPS = _hash_constants(_INIT_B, _MULT_B, 8)  # 4 uint64 words = 8 uint32 words
_MIX_PLAN = [
    (src, dst, *step)
    for (src, dst), step in zip(
        [(src, dst) for src in range(_POOL) for dst in range(_POOL) if src != dst],
        _MIX_STEPS[_POOL:],
        strict=True,
    )
]
"""The mixing of the pool: every ordered pair of its words, each with its hash step's constants."""


def _hashmix(value: int, step: tuple[int, int]) -> int:
    value = ((value ^ step[0]) * step[1]) & _M32
    return value ^ (value >> 16)


_ZERO_POOL = [_hashmix(0, _MIX_STEPS[i]) for i in range(1, _POOL)]
"""The pool words after the seed's one word: the hash of nothing, the same for every seed."""


def pcg64_state(seed: int) -> tuple[int, int]:
    """``(state, inc)`` of ``np.random.PCG64(seed)`` for ``0 <= seed < 2**32`` (one entropy word)."""
    if not 0 <= seed <= _M32:
        raise ValueError(f"pcg64_state takes a seed in [0, 2**32), not {seed}")
    pool = [_hashmix(seed, _MIX_STEPS[0]), *_ZERO_POOL]
    for src, dst, xor, mult in _MIX_PLAN:  # mix(pool[dst], hashmix(pool[src])), inlined
        hashed = ((pool[src] ^ xor) * mult) & _M32
        mixed = (_MIX_L * pool[dst] - _MIX_R * (hashed ^ (hashed >> 16))) & _M32
        pool[dst] = mixed ^ (mixed >> 16)
    w = [_hashmix(pool[i % _POOL], step) for i, step in enumerate(_GENERATE_STEPS)]
    # uint32 pairs read as little-endian uint64: (w0, w1) -> w1 << 32 | w0; seed = u0:u1, inc = u2:u3
    init = (w[1] << 96) | (w[0] << 64) | (w[3] << 32) | w[2]
    inc = (((w[5] << 96) | (w[4] << 64) | (w[7] << 32) | w[6]) << 1 | 1) & _M128
    # pcg_setseq_128_srandom_r: state = 0; step; state += init; step
    return ((inc + init) * _PCG_MULT + inc) & _M128, inc


class PCG64Stream:
    """numpy's ``PCG64`` from the state ``default_rng(seed)`` starts in (``0 <= seed < 2**32``), drawing
    what a ``Generator`` on it draws with :meth:`uniform` and :meth:`integers` (see the module docstring)."""

    __slots__ = ("has_uint32", "inc", "state", "uinteger")

    def __init__(self, seed: int) -> None:
        self.state, self.inc = pcg64_state(seed)
        self.has_uint32 = False
        self.uinteger = 0

    def next_uint64(self) -> int:
        """One step of the LCG, then the XSL-RR output of the new state (``pcg64_random_r``)."""
        state = self.state = (self.state * _PCG_MULT + self.inc) & _M128
        word = ((state >> 64) ^ state) & _M64
        turn = state >> 122
        return ((word >> turn) | (word << (64 - turn))) & _M64

    def next_uint32(self) -> int:
        """The low half of a 64-bit draw, its high half kept for the next call (``pcg64_next32``)."""
        if self.has_uint32:
            self.has_uint32 = False
            return self.uinteger
        word = self.next_uint64()
        self.has_uint32, self.uinteger = True, word >> 32
        return word & _M32

    def uniform(self, low: float, high: float) -> float:
        """``Generator.uniform(low, high)``: the top 53 bits of a 64-bit draw as a double in [0, 1)."""
        return low + (high - low) * ((self.next_uint64() >> 11) * (1.0 / 9007199254740992.0))

    def integers(self, low: int, high: int) -> int:
        """``Generator.integers(low, high)`` (``high`` excluded) for ``1 <= high - low < 2**32``."""
        span = high - 1 - low
        if not 0 <= span < _M32:
            raise ValueError(f"PCG64Stream.integers takes a range of 1 to 2**32 - 1 values, not {span + 1}")
        if span == 0:
            return low
        n = span + 1
        m = self.next_uint32() * n
        if m & _M32 < n:  # Lemire's rejection: only the few leftovers below (2**32 - n) % n draw again
            threshold = (_M32 - span) % n
            while m & _M32 < threshold:
                m = self.next_uint32() * n
        return low + (m >> 32)


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.bit_generator = np.random.PCG64(0)
        self.generator = np.random.Generator(self.bit_generator)


_local = _PerThread()
_exact: bool | None = None
"""Whether :func:`pcg64_state` gives numpy's state here (checked on first use)."""


def _check() -> bool:
    for seed in (0, 1, 17, 2**31 - 2, _M32):
        expected = np.random.PCG64(seed).state["state"]
        if (expected["state"], expected["inc"]) != pcg64_state(seed):
            return False
    return True


def seeded_generator(seed: int) -> np.random.Generator:
    """A generator in the state ``np.random.default_rng(seed)`` starts in: this thread's own, re-seeded
    (valid until the thread's next call). Seeds outside 32 bits, or a numpy that seeds differently,
    get ``default_rng(seed)`` itself."""
    global _exact
    if _exact is None:
        _exact = _check()
    if not _exact or not 0 <= seed <= _M32:
        return np.random.default_rng(seed)
    state, inc = pcg64_state(seed)
    local = _local
    local.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": state, "inc": inc},
        "has_uint32": 0,
        "uinteger": 0,
    }
    return local.generator
