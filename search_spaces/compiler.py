"""Compiling sections of a document into one hyperopt space, and evaluating points of it.

Labels: every distribution's hyperopt label is its path in the document (see :mod:`.paths`):
``training.optimizer.learning_rate``, ``model.layers[2].rate``. A choice's label is the path of
the choice itself; the distributions inside its options continue the path with ``[i]`` for
numbered options (``model.layers[4][1].units``: option 1 of the choice at ``model.layers[4]``)
and ``.name`` for named options (``model.layers[4].vgg[0].filters``). Labels are unique.

Configurations: a configuration has the shape of the compiled sections with each distribution
replaced by its value: for a choice, the chosen option (evaluated); options not chosen do not
appear. Values are plain Python (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``,
``None``) and JSON-serialisable; int-typed distributions give ``int`` (see
:mod:`.distributions`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from hyperopt import hp, pyll
from hyperopt.pyll import Apply, Literal, scope
from hyperopt.pyll.stochastic import sample as pyll_sample

from .distributions import Number
from .errors import ErrorList, SpecError
from .nodes import Choice, Const, Dist, ListNode, MapNode, Node, Parser, iter_params

if TYPE_CHECKING:
    from .spec import SearchSpec

SECTIONS = ("model", "training", "params")
"""The sections of a document that hold distributions, in space order."""


def parse_sections(
    doc_sections: Mapping[str, Any], sections: Sequence[str] = SECTIONS, errors: ErrorList | None = None
) -> dict[str, Node]:
    """The node trees of the present (not null) ``sections``; raises SpecError on bad distributions
    unless an ErrorList is given to collect them."""
    own = errors is None
    errs = ErrorList() if errors is None else errors
    parser = Parser(errs)
    nodes = {s: parser.parse(doc_sections[s], s) for s in sections if doc_sections.get(s) is not None}
    if own:
        errs.raise_if_any()
    return nodes


def _build(node: Node) -> tuple[Any, bool]:
    """(expression, constant): the hyperopt expression of a node, or its value if constant."""
    if isinstance(node, Const):
        return node.value, True
    if isinstance(node, Dist):
        return node.dist.build(node.path, node.args), False
    if isinstance(node, Choice):
        options = [_as_expr(*_build(option)) for option in node.options]
        if node.probabilities is None:
            return hp.choice(node.path, options), False
        total = sum(node.probabilities)
        return hp.pchoice(
            node.path, [(p / total, o) for p, o in zip(node.probabilities, options, strict=True)]
        ), False
    if isinstance(node, MapNode):
        built = {k: _build(v) for k, v in node.items.items()}
        if all(const for _, const in built.values()):
            return {k: v for k, (v, _) in built.items()}, True
        return {k: _as_expr(v, const) for k, (v, const) in built.items()}, False
    if isinstance(node, ListNode):
        items = [_build(v) for v in node.items]
        if all(const for _, const in items):
            return [v for v, _ in items], True
        return [_as_expr(v, const) for v, const in items], False
    raise SpecError.single(node.path, "invalid distribution")  # Invalid nodes never reach here


def _as_expr(value: Any, const: bool) -> Any:
    """Constant containers become one pyll Literal (fast, and lists stay lists)."""
    if const and isinstance(value, dict | list):
        return Literal(value)
    return value


def compile_space(doc_sections: Mapping[str, Any], sections: Sequence[str] = SECTIONS) -> dict[str, Any]:
    """One hyperopt space: a dict of the present (not null) ``sections`` of ``doc_sections``.

    ``doc_sections`` may be a whole document; other keys are ignored. Raises SpecError when a
    distribution is malformed or the space has more than MAX_PARAMETERS distributions.
    Structural rules (layer types, training keys) are ``validate``'s, not checked here.
    """
    nodes = parse_sections(doc_sections, sections)
    _check_unique(nodes)
    return {name: _as_expr(*_build(node)) for name, node in nodes.items()}


def _check_unique(nodes: Mapping[str, Node]) -> None:
    seen: set[str] = set()
    for node in nodes.values():
        for param in iter_params(node):
            if param.path in seen:
                raise SpecError.single(param.path, "duplicate label")
            seen.add(param.path)


@dataclass(frozen=True)
class Parameter:
    """One distribution of a space, for tools and dashboards.

    ``options`` are the option names of a named choice, ``"0"``, ``"1"``... for a numbered
    choice or pchoice, () for numeric distributions. ``log``: best shown on a log axis.
    """

    label: str
    distribution: str
    args: tuple[Number, ...] = ()
    options: tuple[str, ...] = ()
    probabilities: tuple[float, ...] = ()
    integer: bool = False
    log: bool = False


def _nodes_of(spec: SearchSpec | Mapping[str, Any]) -> dict[str, Node]:
    doc = spec if isinstance(spec, Mapping) else spec.document
    return parse_sections(doc)


def parameters(spec: SearchSpec | Mapping[str, Any]) -> list[Parameter]:
    """The distributions of a SearchSpec or document, depth first in document order."""
    out: list[Parameter] = []
    for node in _nodes_of(spec).values():
        for p in iter_params(node):
            if isinstance(p, Dist):
                out.append(Parameter(p.path, p.name, p.args, integer=p.integer, log=p.dist.log))
            else:
                names = p.names or tuple(str(i) for i in range(len(p.options)))
                out.append(
                    Parameter(
                        p.path, p.name, options=names, probabilities=p.probabilities or (), integer=True
                    )
                )
    return out


def parameter_labels(spec: SearchSpec | Mapping[str, Any]) -> list[str]:
    """The hyperopt labels of a SearchSpec or document, in document order."""
    return [p.label for p in parameters(spec)]


def count_parameters(doc_sections: Mapping[str, Any], sections: Sequence[str] = SECTIONS) -> int:
    """How many distributions (choices included) the sections hold, whether or not they are valid."""
    errors = ErrorList()
    parser = Parser(errors)
    for s in sections:
        if doc_sections.get(s) is not None:
            parser.parse(doc_sections[s], s)
    return parser.count


def to_builtin(value: Any) -> Any:
    """A fresh copy of an evaluated configuration with only plain Python types (tuples become
    lists, numpy scalars become int/float/bool/str)."""
    kind = type(value)
    if kind is float or kind is int or kind is str or kind is bool or value is None:
        return value
    if isinstance(value, dict):
        return {k: to_builtin(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_builtin(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_builtin(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _space_of(space: Any) -> Any:
    if hasattr(space, "space") and hasattr(space, "document"):  # a SearchSpec
        return space.space
    return space


def sample(spec: SearchSpec | Mapping[str, Any], rng_seed: int | None = None) -> dict[str, Any]:
    """One random configuration of a SearchSpec or document (``pyll.stochastic.sample``)."""
    space = spec.space if not isinstance(spec, Mapping) else compile_space(spec)
    rng = np.random.default_rng(rng_seed)
    return to_builtin(pyll_sample(space, rng=rng))


def _label_of(node: Apply) -> str:
    return str(node.arg["label"].obj)


def _normalise_vals(vals: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, value in vals.items():
        if isinstance(value, list | tuple | np.ndarray):
            if len(value) == 0:
                continue  # hyperopt's misc.vals: [] for an inactive parameter
            if len(value) > 1:
                raise ValueError(f"vals[{label!r}]: expected one value, got {len(value)}")
            value = value[0]
        out[label] = value
    return out


def _active_vals(space: Any, vals: dict[str, Any]) -> dict[str, Any]:
    """Check that every parameter reached under ``vals`` has a good value; choice indices become ints.

    Raises ValueError naming every missing label (or the first bad value).
    """
    root = _evaluation_plan(space)[0]
    fixed = dict(vals)
    missing: list[str] = []
    stack: list[Apply] = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        is_switch = node.name == "switch" and node.pos_args[0].name == "hyperopt_param"
        if node.name == "hyperopt_param" or is_switch:
            label = _label_of(node.pos_args[0] if is_switch else node)
            if label not in fixed:
                missing.append(label)
                continue
            value = fixed[label]
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                expected = "an option index" if is_switch else "a number"
                raise ValueError(f"vals[{label!r}]: expected {expected}, got {value!r}")
            if not is_switch:
                continue
            n_options = len(node.pos_args) - 1
            if not (math.isfinite(value) and value == int(value) and 0 <= value < n_options):
                raise ValueError(
                    f"vals[{label!r}]: option index must be an integer in [0, {n_options}), got {value!r}"
                )
            fixed[label] = int(value)
            stack.append(node.pos_args[int(value) + 1])
            continue
        stack.extend(reversed(node.inputs()))
    if missing:
        raise ValueError("vals: no value for " + ", ".join(repr(m) for m in sorted(missing)))
    return fixed


def config_from_vals(space: Any, vals: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration for hyperopt ``vals`` ({label: value}; choice values are option indices).

    ``space`` is a compiled space or a SearchSpec. ``vals`` may also be hyperopt's
    ``misc.vals`` form ({label: [value]} with [] for inactive labels); labels of options not
    chosen are ignored. Evaluates the space as ``hyperopt.space_eval`` does and returns plain Python values
    (see the module doc). Raises ValueError when an active label has no value or a bad one.
    """
    space = _space_of(space)
    return _evaluated(space, _active_vals(space, _normalise_vals(vals)))


def config_from_draw(space: Any, point: dict[str, Any]) -> dict[str, Any]:
    """:func:`config_from_vals` for a point the space itself drew (``{label: value}`` of the labels the
    draw reached, plain Python values): the same configuration, without the walk that checks that every
    reached label has a good value (a draw has them by construction)."""
    return _evaluated(_space_of(space), point)


def _evaluated(space: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    root, params = _evaluation_plan(space)
    memo = {node: fixed[label] for node, label in params if label in fixed}
    try:
        value = _evaluate(root, memo)
    except RecursionError:  # a graph deeper than Python's stack: hyperopt's own loop
        value = pyll.rec_eval(root, memo=memo)
    return to_builtin(value)


def _evaluate(node: Apply, memo: dict[Apply, Any]) -> Any:
    """``pyll.rec_eval(node, memo=memo)`` for a space with its parameters in ``memo``: the same node
    functions on the same values, a ``switch`` evaluating only its chosen option, without rec_eval's
    per-call graph walk (a sort and a client table of the whole graph: most of a suggestion's cost)."""
    if node in memo:
        return memo[node]
    if isinstance(node, Literal):
        value = node.obj
    elif node.name == "switch":
        index = _evaluate(node.pos_args[0], memo)
        if isinstance(index, np.ndarray):
            index = index.item()
        if not isinstance(index, int | np.integer) or index < 0:
            raise ValueError(f"switch index must be an integer >= 0, got {index!r}")
        value = _evaluate(node.pos_args[int(index) + 1], memo)
    else:
        args = [_evaluate(a, memo) for a in node.pos_args]
        kwargs = {k: _evaluate(v, memo) for k, v in node.named_args}
        value = scope._impls[node.name](*args, **kwargs)
        if isinstance(value, Apply):  # as rec_eval: a node that returns an expression has it evaluated
            value = pyll.rec_eval(value, memo=memo)
    memo[node] = value
    return value


_PLANS: dict[int, tuple[Any, Apply, list[tuple[Apply, str]]]] = {}
_PLANS_KEPT = 256
_PLANS_LOCK = threading.Lock()


def _evaluation_plan(space: Any) -> tuple[Apply, list[tuple[Apply, str]]]:
    """What ``hyperopt.space_eval`` computes on every call before evaluating: the space's graph and its
    parameter nodes with their labels (a topological sort of the whole graph). Kept per space object
    (the engine holds one per search), so a suggestion costs one graph evaluation, not a sort too."""
    plan = _PLANS.get(id(space))
    if plan is None or plan[0] is not space:
        root = pyll.as_apply(space)
        params = [(n, _label_of(n)) for n in pyll.toposort(root) if n.name == "hyperopt_param"]
        plan = (space, root, params)  # holding the space keeps its id unique while kept
        with _PLANS_LOCK:
            if len(_PLANS) >= _PLANS_KEPT:
                _PLANS.pop(next(iter(_PLANS)))
            _PLANS[id(space)] = plan
    return plan[1], plan[2]
