"""A trial's sampled parameters by their document labels, as people read them.

``{"model.layers[0]": "resnet", "model.layers[0].resnet[1].filters": 32, "model.layers[4]": "(none)",
"training.optimizer.adam.learning_rate": 0.0031}``: a named choice shows the option's name, a choice
whose option is ``null`` shows ``(none)``, a numbered choice of plain values shows the value (of larger
options, ``option N``), a distribution its number. Labels of options not chosen are left out. The labels
are those the search-space language documents (``search_spaces.parameters``), so they match the
documents and the hyperopt trials, unlike the paths of the evaluated configuration
(``model.layers[0][1].type``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

NONE = "(none)"
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


def lookup(config: Any, label: str, choices: frozenset[str] = frozenset()) -> Any:
    """The value at a parameter's label in an evaluated configuration, or ``_MISSING``. A label runs
    through the options of the choices above it (``model.layers[0].resnet[1].filters``: option ``resnet``
    of the choice ``model.layers[0]``); the configuration holds the chosen option in the choice's place,
    so the step after a choice's label (in ``choices``) is skipped."""
    return walk(config, steps(label, choices))


def steps(label: str, choices: frozenset[str] = frozenset()) -> tuple[str | int, ...]:
    """The keys and indexes :func:`lookup` follows for ``label``, the skipped option steps left out."""
    out: list[str | int] = []
    prefix = ""
    skip = False
    for m in _STEP.finditer(label):
        name, index = m.groups()
        prefix += m.group(0)
        if not skip:
            out.append(int(index) if index else name)
        skip = prefix in choices
    return tuple(out)


def walk(config: Any, path: tuple[str | int, ...]) -> Any:
    node = config
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return _MISSING
            node = node[step]
        elif isinstance(node, Mapping) and step in node:
            node = node[step]
        else:
            return _MISSING
    return node


def sampled_params(
    document: Mapping[str, Any], vals: Mapping[str, list[Any]] | None, config: Any
) -> dict[str, Any]:
    """The trial's active parameters by label (see the module docstring); empty before it is sampled."""
    if not vals:
        return {}
    return sampler(document)(vals, config)


def sampler(document: Mapping[str, Any]) -> Callable[[Mapping[str, list[Any]] | None, Any], dict[str, Any]]:
    """:func:`sampled_params` for many trials of one search: the document's parameters are read once
    (reading them costs far more than naming one trial's values)."""
    from hyperhive.search_spaces import parameters

    params = parameters(document)
    choices = frozenset(p.label for p in params if p.options)
    numbered = {p.label: p.options == tuple(str(k) for k in range(len(p.options))) for p in params}
    paths = {p.label: steps(p.label, choices - {p.label}) for p in params if numbered[p.label]}

    def named(vals: Mapping[str, list[Any]] | None, config: Any) -> dict[str, Any]:
        if not vals:
            return {}
        out: dict[str, Any] = {}
        for p in params:
            chosen = vals.get(p.label) or []
            if not chosen:
                continue
            value = chosen[0]
            if not p.options:
                out[p.label] = int(value) if p.integer else value
                continue
            i = int(value)
            if not numbered[p.label]:
                out[p.label] = p.options[i]
                continue
            option = walk(config, paths[p.label])
            if option is None:
                out[p.label] = NONE
            elif option is _MISSING or isinstance(option, Mapping | list):
                out[p.label] = f"option {i}"
            else:
                out[p.label] = option
        return out

    return named
