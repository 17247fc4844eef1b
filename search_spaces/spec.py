"""A validated search: :class:`SearchSpec`, :func:`validate` and :func:`load`.

Top-level keys of a document (anything else is an error):

=========================  ================================================================
name                       required; 1-100 characters ``[A-Za-z0-9][A-Za-z0-9_.-]*``
description                optional string
algorithm                  ``tpe`` (default) | ``random`` | ``anneal``, or
                           ``{type: tpe, n_startup_trials: 10, gamma: 0.25, ...}``; TPE's
                           ``n_startup_trials`` defaults to ``max_trials // 10`` within 5..20,
                           ``gamma`` to 0.5 (hyperopt: 0.25)
max_trials                 required; 1..MAX_TRIALS_LIMIT
seed                       optional; 0..2**31-1
objective                  ``{metric, mode, function}``, all optional
dataset                    required with ``model`` (see :mod:`.dataset_section`)
model                      a Keras model (see :mod:`.model_section`), or
params                     free parameters; required with ``objective.function``
training                   only with ``model`` (see :mod:`.training_section`)
max_consecutive_failures   default 5, >= 1: the search fails after so many failed trials in a row
max_retries                default 2, 0..100: requeues of a trial whose worker died
script                     a Hyperas script (see :mod:`.hyperas`); ``params`` is derived from it
=========================  ================================================================

A search is either a Keras search (``model`` + ``dataset``, optional ``training`` and
``params``) or a function search (``objective.function: "package.module:function"`` +
``params``; the callable gets the sampled ``params`` and returns a loss or a dict with
``loss``), or a Hyperas search (``script``: the source of a Hyperas script; ``params`` is derived
from its templates; the metric is the ``loss`` that ``create_model`` returns). Objective defaults:
metric ``val_accuracy`` for a model, ``loss`` for a function or script; mode ``max`` when the
metric name contains accuracy, precision, recall, f1 or auc, else ``min``.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .checks import EnumRule, Nullable, NumberRule, Rule, StrRule, check, check_keys, int_rule, node_kind
from .compiler import compile_space, config_from_vals, parameter_labels, parse_sections, sample
from .dataset_section import check_dataset
from .document import MAX_TRIALS_LIMIT, normalize_document, parse_text
from .errors import DOCUMENT_LOC, ErrorList, SpecError
from .hyperas import script_params
from .keras_args import check_objective_metric
from .limit_checks import check_limits
from .limits import ALGORITHM_MAXIMA
from .model_section import check_model
from .nodes import Const, MapNode, Node, plain
from .paths import describe
from .training_section import check_training

TOP_LEVEL_KEYS = frozenset(
    {
        "name",
        "description",
        "algorithm",
        "max_trials",
        "seed",
        "objective",
        "dataset",
        "model",
        "training",
        "params",
        "max_consecutive_failures",
        "max_retries",
        "script",
    }
)
OBJECTIVE_KEYS = frozenset({"metric", "mode", "function"})
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
FUNCTION_PATTERN = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*"
"""``package.module:function``: ONE function name after the colon (no ``a.b`` attribute chain), no part
starting with ``_``. Workers check it again, and run only plain functions of allowed modules."""
MAX_SEED = 2**31 - 1
_TPE_MAX = ALGORITHM_MAXIMA["tpe"]
_ANNEAL_MAX = ALGORITHM_MAXIMA["anneal"]
_MAXIMISED = re.compile(r"accuracy|precision|recall|f1|auc", re.IGNORECASE)

ALGORITHM_OPTIONS: Mapping[str, Mapping[str, tuple[Rule, Any]]] = {
    "tpe": {
        "n_startup_trials": (int_rule(0, int(_TPE_MAX["n_startup_trials"])), 20),
        "gamma": (NumberRule(lo=0, hi=1, lo_open=True, hi_open=True), 0.5),
        "n_ei_candidates": (int_rule(1, int(_TPE_MAX["n_ei_candidates"])), 24),
        "prior_weight": (NumberRule(lo=0, hi=_TPE_MAX["prior_weight"], lo_open=True), 1.0),
    },
    "anneal": {
        "avg_best_idx": (NumberRule(lo=0, hi=_ANNEAL_MAX["avg_best_idx"], lo_open=True), 2.0),
        "shrink_coef": (NumberRule(lo=0, hi=_ANNEAL_MAX["shrink_coef"], lo_open=True), 0.1),
    },
    "random": {},
}
"""Each algorithm's options: (rule, default)."""

HYPEROPT_OPTION_NAMES: Mapping[str, Mapping[str, str]] = {
    "tpe": {
        "n_startup_trials": "n_startup_jobs",
        "gamma": "gamma",
        "n_ei_candidates": "n_EI_candidates",
        "prior_weight": "prior_weight",
    },
    "anneal": {"avg_best_idx": "avg_best_idx", "shrink_coef": "shrink_coef"},
    "random": {},
}
"""Each algorithm's options as hyperopt's ``suggest`` names them (document name -> hyperopt keyword)."""


def hyperopt_options(algorithm: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """A search's algorithm options as keyword arguments of hyperopt's ``suggest`` for ``algorithm``."""
    if algorithm not in HYPEROPT_OPTION_NAMES:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    names = HYPEROPT_OPTION_NAMES[algorithm]
    return {names[k]: v for k, v in options.items() if k in names}


_TOP_RULES: Mapping[str, Rule] = {
    "name": StrRule(
        pattern=NAME_PATTERN, max_len=100, what="a name of letters, digits, _ . - (1-100 characters)"
    ),
    "description": Nullable(StrRule(max_len=10_000, what="a string")),
    "max_trials": int_rule(1, MAX_TRIALS_LIMIT),
    "seed": Nullable(int_rule(0, MAX_SEED)),
    "max_consecutive_failures": int_rule(1),
    "max_retries": int_rule(0, 100),
}
_OBJECTIVE_RULES: Mapping[str, Rule] = {
    "metric": StrRule(pattern=r"[A-Za-z_][A-Za-z0-9_./-]*", max_len=100, what="a metric name"),
    "mode": EnumRule(("min", "max")),
    "function": StrRule(
        pattern=FUNCTION_PATTERN,
        max_len=300,
        what="'package.module:function' (one function name after the colon, no attribute chain, "
        "no names starting with '_')",
    ),
}


@dataclass(frozen=True, kw_only=True)
class SearchSpec:
    """A validated search document. Built by :func:`validate`; treat it as read-only.

    ``model``, ``training`` and ``params`` are the raw sections (distributions still in them;
    None when absent); ``document`` is the whole normalised document (JSON-serialisable), which
    ``validate`` accepts again. ``space`` is the compiled hyperopt space (computed once).
    """

    name: str
    algorithm: str
    algorithm_options: dict[str, Any]
    max_trials: int
    seed: int | None
    objective_metric: str
    objective_mode: str
    objective_function: str | None
    dataset: dict[str, Any] | None
    model: Any
    training: Any
    params: Any
    max_consecutive_failures: int = 5
    max_retries: int = 2
    description: str | None = None
    script: str | None = None
    document: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_document(self) -> dict[str, Any]:
        """A copy of the whole document, to store and to ``validate`` again later."""
        return copy.deepcopy(self.document)

    @functools.cached_property
    def space(self) -> dict[str, Any]:
        """The hyperopt space: ``{"model": ..., "training": ..., "params": ...}`` (present sections)."""
        return compile_space(self.document)

    @property
    def parameter_labels(self) -> list[str]:
        """The hyperopt labels of the space, in document order."""
        return parameter_labels(self)

    def config_from_vals(self, vals: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration for hyperopt ``vals`` (see :func:`.compiler.config_from_vals`)."""
        return config_from_vals(self.space, vals)

    def sample(self, rng_seed: int | None = None) -> dict[str, Any]:
        """One random configuration."""
        return sample(self, rng_seed)

    @property
    def maximize(self) -> bool:
        """Whether the objective metric is maximised (the loss given to hyperopt is then -metric)."""
        return self.objective_mode == "max"

    def hyperopt_algo(self) -> Callable[..., Any]:
        """The hyperopt ``suggest`` function with this search's options bound (for ``fmin``'s algo)."""
        from hyperopt import anneal, rand, tpe

        suggest = {"tpe": tpe.suggest, "anneal": anneal.suggest, "random": rand.suggest}[self.algorithm]
        return functools.partial(suggest, **hyperopt_options(self.algorithm, self.algorithm_options))


def default_startup_trials(max_trials: Any) -> int:
    """TPE's random start-up trials when the document does not set ``n_startup_trials``: a tenth of
    ``max_trials``, at least 5 and at most hyperopt's 20 (Optuna's 10 at 100 trials). With hyperopt's
    fixed 20, a search of 20 trials never got past random search and one of 50 spent 40 % of its budget
    on it; measured on a table of real trainings by ``benchmarks/search_quality.py``."""
    if not isinstance(max_trials, int) or isinstance(max_trials, bool):
        return int(ALGORITHM_OPTIONS["tpe"]["n_startup_trials"][1])
    return min(int(ALGORITHM_OPTIONS["tpe"]["n_startup_trials"][1]), max(5, max_trials // 10))


def _algorithm(node: Node | None, errors: ErrorList, max_trials: Any = None) -> tuple[str, dict[str, Any]]:
    """The algorithm name and its options with defaults filled in (TPE's ``n_startup_trials`` from
    ``max_trials``: :func:`default_startup_trials`)."""
    if node is None or (isinstance(node, Const) and node.value is None):
        defaults = {k: d for k, (_, d) in ALGORITHM_OPTIONS["tpe"].items()}
        return "tpe", {**defaults, "n_startup_trials": default_startup_trials(max_trials)}
    given: dict[str, Node] = {}
    if isinstance(node, Const):
        name_node: Node = node
    elif isinstance(node, MapNode):
        if "type" not in node.items:
            errors.add(node.path, f"needs a 'type', one of {', '.join(sorted(ALGORITHM_OPTIONS))}")
            return "tpe", {}
        name_node = node.items["type"]
        given = {k: v for k, v in node.items.items() if k != "type"}
    else:
        errors.add(
            node.path, f"must be an algorithm name or {{type: tpe, ...options}}, got {node_kind(node)}"
        )
        return "tpe", {}
    name = name_node.value if isinstance(name_node, Const) else None
    if not isinstance(name, str) or name not in ALGORITHM_OPTIONS:
        shown = describe(name) if isinstance(name_node, Const) else node_kind(name_node)
        errors.add(
            name_node.path,
            f"unknown algorithm {shown}; expected one of {', '.join(sorted(ALGORITHM_OPTIONS))}",
        )
        return "tpe", {}
    table = ALGORITHM_OPTIONS[name]
    options: dict[str, Any] = {}
    for key, value in given.items():
        if key not in table:
            expected = f"expected one of {', '.join(sorted(table))}" if table else f"{name} takes no options"
            errors.add(value.path, f"unknown option for {name}; {expected}")
    for key, (rule, default) in table.items():
        if key in given:
            check(given[key], rule, errors, allow_dist=False)
            value_node = given[key]
            options[key] = value_node.value if isinstance(value_node, Const) else default
        else:
            options[key] = default
    if name == "tpe" and "n_startup_trials" not in given:
        options["n_startup_trials"] = default_startup_trials(max_trials)
    return name, options


def validate(doc: Mapping[str, Any]) -> SearchSpec:
    """Check a whole document and return its SearchSpec.

    Raises SpecError listing every problem found (document-level limits such as size and depth
    are reported alone, before the rest is checked).
    """
    doc = normalize_document(doc)
    errors = ErrorList()
    root = plain(doc, "")
    assert isinstance(root, MapNode)
    check_keys(root, TOP_LEVEL_KEYS, errors, required=("name", "max_trials"))
    for key, rule in _TOP_RULES.items():
        check(root.items.get(key), rule, errors, allow_dist=False)
    algorithm, algorithm_options = _algorithm(root.items.get("algorithm"), errors, doc.get("max_trials"))

    objective: dict[str, Any] = {}
    objective_node = root.items.get("objective")
    if objective_node is not None and not (
        isinstance(objective_node, Const) and objective_node.value is None
    ):
        if isinstance(objective_node, MapNode):
            check_keys(objective_node, OBJECTIVE_KEYS, errors)
            for key, rule in _OBJECTIVE_RULES.items():
                check(objective_node.items.get(key), rule, errors, allow_dist=False)
            objective = {k: v for k, v in doc["objective"].items() if v is not None}
        else:
            errors.add(
                "objective", f"must be a mapping {{metric, mode, function}}, got {node_kind(objective_node)}"
            )

    def present(key: str) -> bool:
        return doc.get(key) is not None

    function = objective.get("function")
    script = doc.get("script")
    if script is not None:
        _check_script(doc, script, function, errors)
    elif present("model"):
        if function is not None:
            errors.add("objective.function", "cannot be combined with model; a search has one or the other")
        if not present("dataset"):
            # The embedded default: scikit-learn's digits ship with every install, so a Keras search
            # runs offline. Recorded in the document, so the stored search says what it trained on.
            doc["dataset"] = dict(DEFAULT_DATASET)
        if function is None and isinstance(objective_node, MapNode):
            check_objective_metric(
                objective_node.items.get("metric"), doc.get("dataset"), doc.get("training"), errors
            )
    elif function is not None:
        if not present("params"):
            errors.add("params", "required when objective.function is given")
        for key in ("training", "dataset"):
            if present(key):
                errors.add(key, "only used with model")
    else:
        errors.add(
            DOCUMENT_LOC,
            "needs either model (a Keras search) or objective.function with params (a function search)",
        )

    nodes = parse_sections(doc, errors=errors)
    if "model" in nodes:
        check_model(nodes["model"], errors)
    if "training" in nodes:
        check_training(nodes["training"], errors)
    if "params" in nodes and not isinstance(nodes["params"], MapNode):
        errors.add(
            "params",
            f"must be a mapping of names to values or distributions, got {node_kind(nodes['params'])}",
        )
    if present("dataset"):
        check_dataset(plain(doc["dataset"], "dataset"), errors)
    check_limits(nodes, errors)
    errors.raise_if_any()

    metric = objective.get("metric") or ("val_accuracy" if present("model") and script is None else "loss")
    mode = objective.get("mode") or ("max" if _MAXIMISED.search(metric) else "min")
    return SearchSpec(
        name=doc["name"],
        description=doc.get("description"),
        algorithm=algorithm,
        algorithm_options=algorithm_options,
        max_trials=doc["max_trials"],
        seed=doc.get("seed"),
        objective_metric=metric,
        objective_mode=mode,
        objective_function=function,
        dataset=doc.get("dataset"),
        model=doc.get("model"),
        training=doc.get("training"),
        params=doc.get("params"),
        max_consecutive_failures=doc.get("max_consecutive_failures", 5),
        max_retries=doc.get("max_retries", 2),
        script=doc.get("script"),
        document=doc,
    )


DEFAULT_DATASET: dict[str, Any] = {"name": "digits"}


def _check_script(doc: dict[str, Any], script: Any, function: Any, errors: ErrorList) -> None:
    """A Hyperas search: ``script`` parses, nothing else defines the trial, and ``params`` is derived."""
    if not isinstance(script, str):
        errors.add("script", f"must be the text of a Hyperas script, got {describe(script)}")
        return
    for key in ("model", "training", "dataset"):
        if doc.get(key) is not None:
            errors.add(key, "not used with script (a Hyperas script defines its own model and data)")
    if function is not None:
        errors.add("objective.function", "cannot be combined with script")
    try:
        derived = script_params(script)
    except SpecError as exc:
        for e in exc.errors:
            errors.add(e.loc, e.msg)
        return
    given = doc.get("params")
    if given is not None and given != derived:
        errors.add("params", "must be left out with script: the space is derived from the script's templates")
    doc["params"] = derived


def load(source: str | bytes | Mapping[str, Any], fmt: str | None = None) -> SearchSpec:
    """Validate a document given as YAML/JSON text (see :func:`.document.parse_text`) or a mapping."""
    doc = source if isinstance(source, Mapping) else parse_text(source, fmt)
    return validate(doc)
