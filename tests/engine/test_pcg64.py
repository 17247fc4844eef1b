"""hyperhive.pcg64: default_rng(seed)'s starting state computed in Python, checked against numpy."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from hyperhive import pcg64
from hyperhive.pcg64 import PCG64Stream, pcg64_state, seeded_generator

EDGES = [0, 1, 2, 17, 2**16, 2**31 - 2, 2**31 - 1, 2**32 - 1]


def _numpy_state(seed: int) -> tuple[int, int]:
    state = np.random.PCG64(seed).state["state"]
    return state["state"], state["inc"]


def test_the_state_is_numpys_for_thousands_of_seeds() -> None:
    rnd = random.Random(20261202)
    seeds = EDGES + [rnd.getrandbits(rnd.choice([8, 16, 31, 32])) for _ in range(3000)]
    wrong = [s for s in seeds if pcg64_state(s) != _numpy_state(s)]
    assert wrong == []


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40])
def test_seeds_beyond_one_word_are_refused_by_the_state_function(seed: int) -> None:
    with pytest.raises(ValueError, match="seed"):
        pcg64_state(seed)


def _draws(rng: np.random.Generator) -> str:
    # uint32-buffered draws (small integers) between doubles: the buffer must start empty after seeding
    return repr(
        [
            rng.uniform(-5, 5, size=(1,)),
            rng.integers(0, 3),
            rng.integers(0, 7, size=(2,)),
            np.exp(rng.uniform(-6.9, 0, size=(1,))),
            rng.normal(0, 1, size=(1,)),
            rng.integers(0, 3),
        ]
    )


@pytest.mark.parametrize("seed", [*EDGES, 2**32, 2**40 + 3])
def test_draws_are_default_rngs_even_after_an_earlier_seed_in_the_thread(seed: int) -> None:
    _draws(seeded_generator(seed + 1))  # leaves a half-used uint32 buffer and a moved state behind
    assert _draws(seeded_generator(seed)) == _draws(np.random.default_rng(seed))


def test_each_thread_reseeds_a_generator_of_its_own() -> None:
    mine = seeded_generator(5)
    theirs: list[np.random.Generator] = []
    thread = threading.Thread(target=lambda: theirs.append(seeded_generator(6)))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    assert _draws(mine) == _draws(np.random.default_rng(5))


def test_a_numpy_that_seeds_differently_gets_default_rng(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcg64, "_exact", None)
    monkeypatch.setattr(pcg64, "pcg64_state", lambda seed: (1, 1))  # wrong for every seed
    rng = seeded_generator(9)
    assert rng is not pcg64._local.generator
    assert _draws(rng) == _draws(np.random.default_rng(9))


def test_the_stream_draws_what_numpys_generator_draws() -> None:
    """uniform and integers interleaved (integers of small ranges use numpy's buffered 32-bit halves,
    a range near 2**32 its rejection loop), raw 64-bit words included."""
    rnd = random.Random(11)
    seeds = EDGES + [rnd.getrandbits(32) for _ in range(1500)]
    plan = [
        ("u", -5.0, 5.0),
        ("i", 0, 3),
        ("u", -6.9, 0.0),
        ("i", 0, 7),
        ("i", 0, 3),
        ("i", 5, 6),
        ("i", 0, 2**32 - 1),
    ]
    for seed in seeds:
        ours, numpys = PCG64Stream(seed), np.random.default_rng(seed)
        for kind, low, high in plan:
            got = ours.uniform(low, high) if kind == "u" else ours.integers(int(low), int(high))
            want = numpys.uniform(low, high, size=(1,))[-1] if kind == "u" else numpys.integers(low, high)
            assert got == want and type(got) is (float if kind == "u" else int), (seed, kind, low, high)
        assert [PCG64Stream(seed).next_uint64() for _ in range(1)] == [
            int(np.random.PCG64(seed).random_raw())
        ]


@pytest.mark.parametrize(("low", "high"), [(0, 0), (3, 1), (0, 2**32), (0, 2**40)])
def test_the_stream_refuses_integer_ranges_it_does_not_draw_as_numpy(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="range"):
        PCG64Stream(1).integers(low, high)
