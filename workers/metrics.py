"""Classification metrics of a trained model on one split, with scikit-learn.

For split ``val`` (or ``test``) :func:`split_metrics` returns

- scalars: ``val_loss`` (the training loss function on the predictions, regularisation terms left out),
  ``val_accuracy``, ``val_precision``, ``val_recall``, ``val_f1`` (macro averages over the classes);
- ``val_per_class``: ``{"precision": [...], "recall": [...], "f1": [...], "support": [...]}``, one entry
  per class index (``labels`` names them when the dataset has class names);
- ``val_confusion_matrix``: rows are true classes, columns predicted classes.

Every value is a plain Python number or list (JSON-serialisable). Above
:data:`~hyperhive.payloads.MAX_PER_CLASS_CLASSES` classes the per-class scores, and above
:data:`~hyperhive.payloads.MAX_MATRIX_CLASSES` the confusion matrix, are not computed (the store would
not keep them): ``truncated`` is then ``True`` and ``truncated_notes`` says what was left out.
The scalar names are those
:mod:`hyperhive.search_spaces.metric_names` lists (what ``objective.metric`` may name); tests/worker check
both agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hyperhive.payloads import MAX_MATRIX_CLASSES, MAX_PER_CLASS_CLASSES
from hyperhive.search_spaces.metric_names import SPLIT_SCALARS

SCALARS = SPLIT_SCALARS


def scalar_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, prefix: str) -> dict[str, float]:
    """``{prefix}_accuracy`` and the macro ``precision``, ``recall``, ``f1``."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels = list(range(n_classes))
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {
        f"{prefix}_accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}_precision": float(p),
        f"{prefix}_recall": float(r),
        f"{prefix}_f1": float(f),
    }


def split_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    n_classes: int,
    prefix: str,
    loss_fn: Callable[[np.ndarray, np.ndarray], float],
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every metric of one split (see the module docstring). ``y_true`` are class indices, ``probs``
    the model's ``(n, n_classes)`` output, ``loss_fn(y_true, probs)`` the mean loss."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(n_classes))
    y_pred = np.argmax(probs, axis=1)
    out: dict[str, Any] = {f"{prefix}_loss": float(loss_fn(y_true, probs))}
    out.update(scalar_scores(y_true, y_pred, n_classes, prefix))
    notes: list[str] = []
    if n_classes <= MAX_PER_CLASS_CLASSES:
        p, r, f, s = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=0
        )
        per_class: dict[str, Any] = {
            "precision": [float(v) for v in p],
            "recall": [float(v) for v in r],
            "f1": [float(v) for v in f],
            "support": [int(v) for v in s],
        }
        if class_names is not None:
            per_class["labels"] = [str(c) for c in class_names]
        out[f"{prefix}_per_class"] = per_class
    else:
        notes.append(f"{prefix}_per_class: {n_classes} classes, stored only up to {MAX_PER_CLASS_CLASSES}")
    if n_classes <= MAX_MATRIX_CLASSES:
        out[f"{prefix}_confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    else:
        notes.append(
            f"{prefix}_confusion_matrix: {n_classes} classes, stored only up to {MAX_MATRIX_CLASSES}"
        )
    if notes:
        out["truncated"], out["truncated_notes"] = True, notes
    return out
