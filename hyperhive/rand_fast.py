"""hyperopt's random search (``hyperopt.rand.suggest``) without its per-call graph interpreter.

``rand.suggest`` evaluates the domain's sampling graph (``Domain.s_idxs_vals``) with ``pyll.rec_eval``
on every call, then wraps the draw in a hyperopt trial document. :class:`RandomSampler` compiles that
graph once into a :class:`~hyperhive.pyll_program.Program` (the node functions called in
``rec_eval``'s order, on the same ``numpy`` generator ``default_rng(seed)``), so every draw is the one
``rand.suggest`` makes: the suggestions are the same, value for value, for a given seed
(``tests/engine/test_rand_fast.py`` checks it against ``rand.suggest`` on every kind of parameter and
on nested choices). A graph the program cannot replay (``switch`` nodes) is evaluated by
``rec_eval``, as in ``rand.suggest``.

A space without conditional parameters (no distribution inside a choice's option) goes faster still:
its graph is, per label, one sampling node with constant arguments and a ``size`` computed from the
trial ids alone, and the rest of the graph only routes ids and values. For one trial those routes
always give ``[new_id]`` and size 1, so :class:`RandomSampler` calls the sampling nodes' functions
directly, in the program's order, on the same generator (``default_rng(seed)``'s state, put into a
generator by :func:`~hyperhive.pcg64.seeded_generator` without numpy's ``SeedSequence`` object). It
takes that path only when the graph has that shape and the routes give those values for two different
ids, and checks once, on a few seeds, that it draws what the program draws. When every parameter is a
uniform, a loguniform or a choice (a one-value ``randint``), it draws them from a
:class:`~hyperhive.pcg64.PCG64Stream` (numpy's generator in Python: no numpy call per draw but
loguniform's ``exp``), after checking on 38 seeds that the stream draws the program's values; the
values are then Python numbers where numpy gives numpy scalars (the engine makes both plain).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from hyperopt.base import Domain
from hyperopt.pyll import stochastic
from hyperopt.pyll.base import Apply, Literal

from hyperhive.pcg64 import PCG64Stream, seeded_generator
from hyperhive.pyll_program import Program

_Draw = tuple[str, Callable[..., Any], list[Any], dict[str, Any], str]
"""A label, its sampling node's function, its constant positional and named arguments, and the name
of the named argument that takes the generator."""


class RandomSampler:
    """``rand.suggest`` for one domain, compiled once (see the module docstring)."""

    def __init__(self, domain: Domain) -> None:
        self._new_ids = domain.s_new_ids
        self._rng = domain.s_rng
        self.program = Program(domain.s_idxs_vals, [domain.s_new_ids, domain.s_rng])
        self._labels: list[str] = []
        self._draw_calls: list[tuple[str, Callable[[np.random.Generator], Any]]] | None = None
        """The direct path's draws as calls of the generator returning the value drawn."""
        self._stream_calls: list[tuple[str, Callable[[PCG64Stream], Any]]] | None = None
        """The same draws on a :class:`~hyperhive.pcg64.PCG64Stream`, when it has them all and they
        checked out against the program."""
        self.draws: list[_Draw] | None = self._flat_draws(domain)
        """The direct path's draws in order, or None: every call runs the program."""

    def vals(self, new_id: int, seed: int) -> dict[str, list[Any]]:
        """hyperopt's ``misc.vals`` of the trial that ``rand.suggest([new_id], domain, trials, seed)``
        suggests: ``{label: [value] | []}`` (its ``miscs_update_idxs_vals``: the last value drawn for
        ``new_id``, none for a parameter the trial does not reach)."""
        return self._direct(seed) if self.draws is not None else self._run(new_id, seed)

    def _run(self, new_id: int, seed: int) -> dict[str, list[Any]]:
        rng = np.random.default_rng(seed)
        idxs, vals = self.program.run({self._new_ids: [new_id], self._rng: rng})
        out: dict[str, list[Any]] = {}
        for key in idxs:
            drawn = [v for tid, v in zip(idxs[key], vals[key], strict=True) if tid == new_id]
            out[key] = drawn[-1:]
        return out

    def _direct(self, seed: int) -> dict[str, list[Any]]:
        if self._stream_calls is not None and 0 <= seed < 2**32:
            stream = PCG64Stream(seed)  # default_rng(seed)'s generator, in Python
            drawn = {label: draw(stream) for label, draw in self._stream_calls}
        else:
            assert self._draw_calls is not None
            rng = seeded_generator(seed)  # default_rng(seed)'s state, without its SeedSequence
            drawn = {label: draw(rng) for label, draw in self._draw_calls}
        return {label: [drawn[label]] for label in self._labels}  # the graph's label order

    def _flat_draws(self, domain: Domain) -> list[_Draw] | None:
        """The direct path's draws, or None when the graph is not of the flat shape (see the module
        docstring) or the direct path does not draw what the program draws."""
        steps = self.program.steps
        top = self.program.top
        if steps is None or top.name != "pos_args" or len(top.pos_args) != 2:
            return None
        idxs_node, vals_node = top.pos_args
        if idxs_node.name != "dict" or vals_node.name != "dict" or idxs_node.pos_args or vals_node.pos_args:
            return None
        labels = self._labels = [k for k, _ in idxs_node.named_args]
        samplers = dict(vals_node.named_args)
        if labels != [k for k, _ in vals_node.named_args]:
            return None
        order = {node: i for i, (node, *_rest) in enumerate(steps)}
        per_label: list[tuple[int, _Draw]] = []
        for label, idxs in idxs_node.named_args:
            node = samplers[label]
            if node not in order or not all(isinstance(a, Literal) for a in node.pos_args):
                return None
            rng_args = [k for k, v in node.named_args if v is self._rng]
            if len(rng_args) != 1 or self._reaches(idxs, self._rng):
                return None
            kwargs: dict[str, Any] = {}
            for k, v in node.named_args:
                if k == rng_args[0]:
                    kwargs[k] = None
                elif isinstance(v, Literal):
                    kwargs[k] = v.obj
                elif k == "size" and not self._reaches(v, self._rng):
                    size = self._constant_route(v)
                    if size is _VARIES:
                        return None
                    kwargs[k] = size
                else:
                    return None
            if self._constant_route(idxs, of_ids=True) is _VARIES:
                return None
            fn = steps[order[node]][1]
            per_label.append((order[node], (label, fn, [a.obj for a in node.pos_args], kwargs, rng_args[0])))
        draws = [draw for _, draw in sorted(per_label, key=lambda p: p[0])]
        self._draw_calls = [(draw[0], _last_drawn(*draw[1:])) for draw in draws]
        try:
            for seed in (0, 1, 12345):
                direct = self._direct(seed)
                if list(direct) != labels or repr(direct) != repr(self._run(7, seed)):
                    self._draw_calls = None
                    return None
        except Exception:
            self._draw_calls = None
            return None
        self._stream_calls = self._checked_stream_calls(draws)
        return draws

    def _checked_stream_calls(
        self, draws: list[_Draw]
    ) -> list[tuple[str, Callable[[PCG64Stream], Any]]] | None:
        """The draws on a :class:`~hyperhive.pcg64.PCG64Stream`, when the stream has every one of them and
        draws the program's values (made plain) on :data:`_STREAM_CHECK_SEEDS`; else None."""
        calls = []
        for label, fn, args, kwargs, rng_arg in draws:
            call = _stream_draw(fn, args, kwargs, rng_arg)
            if call is None:
                return None
            calls.append((label, call))
        numpy_calls, self._stream_calls = self._stream_calls, calls
        try:
            for seed in _STREAM_CHECK_SEEDS:
                got = {k: [plain(x) for x in v] for k, v in self._direct(seed).items()}
                want = {k: [plain(x) for x in v] for k, v in self._run(7, seed).items()}
                if repr(got) != repr(want):
                    return None
        except Exception:
            return None
        finally:
            self._stream_calls = numpy_calls
        return calls

    def _reaches(self, node: Apply, target: Apply) -> bool:
        """Whether ``node``'s value depends on ``target``."""
        stack, seen = [node], set()
        while stack:
            n = stack.pop()
            if n is target:
                return True
            if id(n) in seen:
                continue
            seen.add(id(n))
            stack.extend(n.inputs())
        return False

    def _constant_route(self, node: Apply, *, of_ids: bool = False) -> Any:
        """The value of a node that depends on the trial ids only, when it is the same for two
        different ids (``of_ids``: when it is ``[id]`` for each), else :data:`_VARIES`."""
        values = []
        for new_id in (3, 1001):
            memo: dict[Apply, Any] = {self._new_ids: [new_id]}
            value = Program(node, [self._new_ids]).run(memo)
            if of_ids:
                if [int(x) for x in np.asarray(value).ravel()] != [new_id]:
                    return _VARIES
                value = None
            values.append(value)
        if repr(values[0]) != repr(values[1]):
            return _VARIES
        return values[0]


_VARIES = object()
_STREAM_CHECK_SEEDS = (0, 1, 2, 17, 12345, 2**31 - 2, *range(1000, 1032))


def plain(x: Any) -> Any:
    """numpy scalars to Python ones, so that vals are JSON-serialisable."""
    if isinstance(x, np.generic):
        return x.item()
    return x


def _one_value(kwargs: dict[str, Any], rng_arg: str) -> bool:
    """Whether a sampling node's constant arguments draw one value from its ``rng`` argument."""
    return rng_arg == "rng" and kwargs.get("size") in ((1,), [1], 1)


def _stream_draw(
    fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], rng_arg: str
) -> Callable[[PCG64Stream], Any] | None:
    """The last value ``fn(*args, **kwargs, rng_arg=rng)`` draws (one here), drawn from a
    :class:`~hyperhive.pcg64.PCG64Stream`: hyperopt's ``uniform``, ``loguniform`` (numpy's ``exp`` of the
    uniform draw, as hyperopt's body) and ``randint`` of one value below 2**32; None for another."""
    if not _one_value(kwargs, rng_arg):
        return None
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs).arguments
    except TypeError:
        return None
    if fn is stochastic.randint:
        first, second = bound["low"], bound.get("high")
        start, stop = (0, first) if second is None else (first, second)
        if not (isinstance(start, int) and isinstance(stop, int) and 1 <= stop - start < 2**32):
            return None
        i0: int = start
        i1: int = stop
        return lambda stream: stream.integers(i0, i1)
    if fn in (stochastic.uniform, stochastic.loguniform):
        low, high = float(bound["low"]), float(bound["high"])
        if fn is stochastic.uniform:
            return lambda stream: stream.uniform(low, high)
        return lambda stream: np.exp(stream.uniform(low, high))
    return None


def _last_drawn(
    fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], rng_arg: str
) -> Callable[[np.random.Generator], Any]:
    """A call of the generator that returns the last value ``fn(*args, **kwargs, rng_arg=rng)`` draws
    (``size`` gives one here). hyperopt's ``randint`` of one value is numpy's scalar ``integers`` draw:
    the same number from the same generator state, leaving the same state, a quarter of the cost of the
    one-element array (checked against the program with the other draws in ``_flat_draws``)."""
    if fn is stochastic.randint and _one_value(kwargs, rng_arg):
        bound = inspect.signature(stochastic.randint).bind(*args, **kwargs)
        low, high = bound.arguments["low"], bound.arguments.get("high")
        return lambda rng: rng.integers(low, high)

    def draw(rng: np.random.Generator) -> Any:
        return fn(*args, **{**kwargs, rng_arg: rng})[-1]

    return draw
