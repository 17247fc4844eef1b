"""Hyperhive's search-space language: YAML/JSON search documents, validated and compiled to hyperopt.

Pure: no I/O besides parsing text given to it, no Keras import, no network.

A document names a search (``name``, ``max_trials``, ``algorithm``, ``objective``, ``dataset``)
and holds the searched sections ``model``, ``training`` and ``params``, where any value may be a
distribution written as a one-key mapping::

    model:
      layers:
        - {type: Conv2D, filters: {choice: [32, 64]}, kernel_size: 3, activation: relu}
        - {type: Dropout, rate: {uniform: [0.1, 0.5]}}
    training:
      optimizer: {type: Adam, learning_rate: {loguniform: [1.0e-4, 1.0e-2]}}

Distributions (see :mod:`.distributions`): choice, pchoice, randint, uniformint, uniform,
quniform, loguniform, qloguniform, normal, qnormal, lognormal, qlognormal. Options of a choice
may hold further distributions (conditional spaces).

Literal escape: ``{literal: X}`` is the value X taken as is, with nothing inside read as a
distribution; a mapping whose only key is a distribution name is written
``{literal: {choice: [1, 2]}}``.

Labels and configurations: see :mod:`.compiler`. Entry points: :func:`load` (text or mapping
to SearchSpec), :func:`validate`, ``SearchSpec.space``, :func:`config_from_vals`,
:func:`sample`.
"""

from .compiler import (
    Parameter,
    compile_space,
    config_from_draw,
    config_from_vals,
    count_parameters,
    parameter_labels,
    parameters,
    sample,
)
from .distributions import DISTRIBUTION_NAMES, LITERAL_KEY
from .document import MAX_BYTES, MAX_DEPTH, MAX_NODES, MAX_PARAMETERS, MAX_TRIALS_LIMIT, parse_text
from .errors import FieldError, SpecError
from .model_section import flatten_layers
from .spec import SearchSpec, load, validate
from .training_section import TRAINING_DEFAULTS

__all__ = [
    "DISTRIBUTION_NAMES",
    "LITERAL_KEY",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_PARAMETERS",
    "MAX_TRIALS_LIMIT",
    "TRAINING_DEFAULTS",
    "FieldError",
    "Parameter",
    "SearchSpec",
    "SpecError",
    "compile_space",
    "config_from_draw",
    "config_from_vals",
    "count_parameters",
    "flatten_layers",
    "load",
    "parameter_labels",
    "parameters",
    "parse_text",
    "sample",
    "validate",
]
