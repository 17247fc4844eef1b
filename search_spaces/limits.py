"""Every size limit of a search document, in one place (search_spaces/README.md lists them).

A search is one claim on shared machines: these bounds keep one document from turning into minutes of
CPU on the server (suggestions) or gigabytes on a worker (a model, a batch, an image size). Each bound
applies to every value a distribution can give, not only to constants: ``units: {randint: [1, 10**9]}``
is refused like ``units: 1000000000``. :mod:`.limit_checks` applies them at submit; the engine checks
the algorithm options again before it asks hyperopt (a stored document may bypass the API).

This module holds numbers only (no imports), so that any module of the package can read it.
"""

from __future__ import annotations

# ------------------------------------------------------------------ the document as text
MAX_BYTES = 256 * 1024
"""Largest document accepted: as text (UTF-8) and as compact JSON."""
MAX_DEPTH = 24
"""Deepest nesting of mappings and lists (the document itself is level 1)."""
MAX_NODES = 200_000
"""Most values (scalars and containers, after alias expansion) in one document."""
MAX_PARAMETERS = 500
"""Most distributions (choice included) in one search space."""
MAX_TRIALS_LIMIT = 100_000
"""Largest ``max_trials``."""

# ------------------------------------------------------------ constant payload (model, training, params)
MAX_STRING_CHARS = 1_000
"""Longest string in ``model``, ``training`` or ``params``."""
MAX_LIST_ITEMS = 1_000
"""Most items of one list in ``model``, ``training`` or ``params``."""
MAX_CHOICE_OPTIONS = 1_000
"""Most options of one ``choice``/``pchoice``."""
MAX_CONFIG_BYTES = 32 * 1024
"""Largest configuration a search can sample, as compact JSON (every trial stores its configuration)."""

# ------------------------------------------------------------------ algorithm options
ALGORITHM_MAXIMA: dict[str, dict[str, float]] = {
    "tpe": {
        "n_startup_trials": 10_000,
        "n_ei_candidates": 1_000,
        "prior_weight": 100.0,
    },
    "anneal": {
        "avg_best_idx": 1_000.0,
        "shrink_coef": 10.0,
    },
}
"""Largest value of each algorithm option (``gamma`` is within (0, 1) by its nature). hyperopt's cost
per suggestion grows with ``n_ei_candidates`` times the history; 1,000 is about 40x the default."""

# ------------------------------------------------------------------ model
MAX_LAYERS = 200
"""Most Keras layers one configuration can build (the largest choice counted; see BLOCK_LAYERS)."""
BLOCK_LAYERS: dict[str, int] = {"ResidualBlock": 10, "InceptionBlock": 20}
"""How many layers a composite block counts as: the most Keras layers it builds."""
LAYER_ARGUMENT_MAXIMA: dict[str, int] = {
    "units": 8_192,
    "filters": 2_048,
    "filters_1x1": 2_048,
    "filters_3x3_reduce": 2_048,
    "filters_3x3": 2_048,
    "filters_5x5_reduce": 2_048,
    "filters_5x5": 2_048,
    "filters_pool": 2_048,
    "kernel_size": 15,
    "pool_size": 64,
    "strides": 16,
    "dilation_rate": 64,
    "depth_multiplier": 64,
    "size": 16,
    "padding": 256,
    "cropping": 256,
}
"""Largest value of each sized layer argument, in every layer and block, in every number of a list
(``kernel_size: [3, 3]``); string values such as ``padding: same`` are not numbers and not limited."""

# ------------------------------------------------------------------ training
TRAINING_MAXIMA: dict[str, int] = {
    "epochs": 1_000,
    "batch_size": 8_192,
    "early_stopping.patience": 1_000,
    "pruning.warmup_epochs": 1_000,
    "pruning.min_trials": MAX_TRIALS_LIMIT,
}
"""Largest value of each training key (dotted: a key of a training block)."""

# ------------------------------------------------------------------ dataset
MAX_IMAGE_SIDE = 1_024
"""Largest ``dataset.image_size`` side (images are resized to it on the worker)."""
