"""A hyperopt pyll graph compiled once into a straight-line program, for graphs evaluated many times.

``pyll.rec_eval`` walks the graph on every call: a depth-first search, a table of each node's clients
(to free intermediate values early) and a work stack, all in Python; on TPE's posterior graph that is
most of an ask at small histories. :class:`Program` runs the same walk once, records the order in which
``rec_eval`` would call the nodes' functions given which nodes the caller supplies, and afterwards calls
them in that order. The order matters: sampling nodes draw from a shared random generator, so a
different (equally valid) topological order would draw different numbers.

A node whose function returns a pyll expression (hyperopt's ``randint_via_categorical`` returns
``scope.categorical(...)``) has that expression evaluated at once by ``rec_eval``, as ``rec_eval`` itself
does. Graphs with ``switch`` nodes, which ``rec_eval`` evaluates lazily (only the chosen branch), are
run by ``rec_eval`` itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from hyperopt import pyll
from hyperopt.pyll.base import Apply, Literal, scope


def rec_eval_order(top: Apply, given: Iterable[Apply]) -> list[Apply] | None:
    """The nodes whose functions ``pyll.rec_eval(top, memo=given)`` calls, in its order (literals
    included, they only yield their value); ``None`` if the graph has ``switch`` nodes."""
    node_inputs: dict[Apply, list[Apply]] = {}
    pyll.dfs(top, [], seqset=node_inputs)
    done = set(given)
    order: list[Apply] = []
    todo = deque([top])
    while todo:  # rec_eval's loop, without the calls
        node = todo.pop()
        if node in done:
            continue
        if node.name == "switch":
            return None
        waiting = [] if isinstance(node, Literal) else [v for v in node_inputs[node] if v not in done]
        if waiting:
            todo.append(node)
            todo.extend(waiting)
        else:
            done.add(node)
            order.append(node)
    return order


class Program:
    """``expr`` (a pyll graph, or anything ``pyll.as_apply`` takes) evaluated with the nodes in
    ``inputs`` supplied by the caller on each run."""

    def __init__(self, expr: Any, inputs: Iterable[Apply]) -> None:
        self.top = pyll.as_apply(expr)
        self.inputs = list(inputs)
        order = rec_eval_order(self.top, self.inputs)
        self.constants: dict[Apply, Any] = {}
        self.steps: list[tuple[Apply, Callable[..., Any], list[Apply], list[tuple[str, Apply]]]] | None = None
        if order is not None:
            self.steps = []
            for node in order:
                if isinstance(node, Literal):
                    self.constants[node] = node.obj
                else:
                    self.steps.append((node, scope._impls[node.name], node.pos_args, node.named_args))

    def run(self, inputs: dict[Apply, Any]) -> Any:
        """The value of the graph, given the values of the supplied nodes."""
        if self.steps is None:
            return pyll.rec_eval(self.top, memo=inputs, print_node_on_error=False)
        values = dict(self.constants)
        values.update(inputs)
        for node, fn, pos_args, named_args in self.steps:
            args = [values[a] for a in pos_args]
            rval = fn(*args, **{k: values[v] for k, v in named_args}) if named_args else fn(*args)
            if isinstance(rval, Apply):  # as rec_eval: evaluate the returned expression now
                rval = pyll.rec_eval(rval, memo=values, print_node_on_error=False)
            values[node] = rval
        return values[self.top]
