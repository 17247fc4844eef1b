"""One trial of a Hyperas script, in its own process: ``python -m hyperhive.workers.hyperas_child JOB.json``.

Started by :mod:`hyperhive.workers.hyperas_run` with its working directory a fresh temporary folder. It limits
itself first (``RLIMIT_AS``: the memory limit; ``RLIMIT_FSIZE``: the largest file it may write; no core
dumps), puts the ``hyperas`` shim first on ``sys.path`` (and drops the working directory from it), makes
the Keras-2 imports of Hyperas's examples resolve (``keras.layers.core``, ``keras.utils.np_utils``; and
``history['val_acc']`` reads ``val_accuracy``), then
runs the rendered script as module ``hyperas_script`` (so ``if __name__ == '__main__':`` never runs),
calls ``data()`` (or loads its cached arrays) and ``create_model(*data)``, and writes the outcome as JSON
to the job's ``result`` path: ``{"loss", "status", "metrics"}`` or ``{"error", "line"}``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import math
import os
import re
import resource
import sys
import traceback
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SHIM = Path(__file__).resolve().parent / "hyperas_shim"
MODULE = "hyperas_script"
KERAS2_ALIASES = {
    "keras.layers.core": "keras.layers",
    "keras.layers.convolutional": "keras.layers",
    "keras.layers.pooling": "keras.layers",
    "keras.layers.recurrent": "keras.layers",
    "keras.layers.normalization": "keras.layers",
    "keras.layers.advanced_activations": "keras.layers",
    "keras.utils.np_utils": "keras.utils",
}
"""Keras-2 module paths of Hyperas's examples -> their Keras-3 homes (same names inside)."""


class _Keras2Aliases(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve :data:`KERAS2_ALIASES` to the Keras 3 modules."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        if fullname in KERAS2_ALIASES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return importlib.import_module(KERAS2_ALIASES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class Keras2History(dict[str, Any]):
    """``History.history`` that also answers Keras 2's metric names (``acc``, ``val_acc``)."""

    def __missing__(self, key: str) -> Any:
        renamed = {"acc": "accuracy", "val_acc": "val_accuracy"}.get(key)
        if renamed is not None and renamed in self:
            return self[renamed]
        hint = f"; Keras 3 names it {renamed!r}" if renamed else ""
        raise KeyError(f"{key!r} (the history has {', '.join(map(repr, self))}){hint}")


def keras2_history() -> None:
    """Let ``model.fit(...).history['val_acc']`` (Hyperas's examples) read Keras 3's ``val_accuracy``."""
    keras = sys.modules.get("keras")
    history_class = getattr(getattr(keras, "callbacks", None), "History", None)
    if history_class is None or getattr(history_class, "_hyperhive_keras2", False):
        return
    original = history_class.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.history = Keras2History()

    history_class.__init__ = __init__
    history_class._hyperhive_keras2 = True


def limit_self(memory_mb: int, file_mb: int) -> None:
    """This process's limits: address space (0: none), size of any file written, no core dumps."""
    if memory_mb > 0:
        size = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if file_mb > 0:
        size = file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def script_line(exc: BaseException, filename: str) -> int | None:
    """The line of the script where ``exc`` was raised (its deepest frame in the script)."""
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def _load_data(module: types.ModuleType, cache: Path | None) -> tuple[Any, ...]:
    import numpy as np

    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as npz:
            return tuple(npz[f"arr_{i}"] for i in range(len(npz.files)))
    data = module.data()
    data = tuple(data) if isinstance(data, tuple | list) else (data,)
    if cache is not None and data and all(isinstance(a, np.ndarray) and a.dtype != object for a in data):
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        try:
            np.savez(tmp, *data)
            os.replace(tmp, cache)
        except OSError:
            tmp.unlink(missing_ok=True)
    return data


def _json_scalar(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise TypeError


def _model_metrics(model: Any, data: tuple[Any, ...]) -> dict[str, Any]:
    """The standard metrics of a returned Keras classifier on ``x_test, y_test`` (data()'s 3rd and 4th)."""
    import numpy as np

    from hyperhive.workers.metrics import split_metrics

    if len(data) < 4 or not hasattr(model, "predict"):
        return {}
    x_test, y_test = data[2], np.asarray(data[3])
    probs = np.asarray(model.predict(x_test, verbose=0))
    if probs.ndim != 2 or probs.shape[1] < 2:
        return {"metrics_note": "the returned model is not a classifier with one output per class"}
    y_true = np.argmax(y_test, axis=1) if y_test.ndim == 2 else y_test.reshape(-1).astype(int)

    def loss_fn(y: np.ndarray, p: np.ndarray) -> float:
        picked = np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)
        return float(-np.mean(np.log(picked)))

    return split_metrics(y_true, probs, int(probs.shape[1]), "test", loss_fn)


def outcome(result: Any, model_metrics: dict[str, Any]) -> dict[str, Any]:
    """The JSON outcome of ``create_model``'s return value."""
    if isinstance(result, int | float) and not isinstance(result, bool):
        result = {"loss": result}
    if not isinstance(result, dict) or "loss" not in result:
        got = type(result).__name__
        return {"error": f"create_model must return {{'loss': ..., 'status': STATUS_OK, ...}}, got a {got}"}
    status = str(result.get("status", "ok"))
    try:
        loss = float(result["loss"])
    except (TypeError, ValueError):
        return {"error": f"create_model returned a loss that is not a number: {result['loss']!r}"[:500]}
    if status != "ok":
        return {"error": f"create_model returned status {status!r} (loss {loss:g})", "status": status}
    if not math.isfinite(loss):
        return {"error": f"create_model returned a loss of {loss}"}
    metrics: dict[str, Any] = {**model_metrics}
    skipped = []
    for key, value in result.items():
        if key in ("loss", "status", "model"):
            continue
        try:
            metrics[str(key)] = _json_scalar(value)
        except TypeError:
            skipped.append(str(key))
    if skipped:
        metrics["skipped_keys"] = skipped
    metrics["loss"] = loss
    return {"loss": loss, "status": status, "metrics": metrics}


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run the job's script (see the module docstring); the outcome to write."""
    filename = job["script"]
    stage = "the script's top level"
    try:
        source = Path(filename).read_text(encoding="utf-8")
        module = types.ModuleType(MODULE)
        module.__file__ = filename
        sys.modules[MODULE] = module
        exec(compile(source, filename, "exec"), module.__dict__)
        keras2_history()
        stage = "data()"
        cache = Path(job["data_cache"]) if job.get("data_cache") else None
        data = _load_data(module, cache)
        stage = "create_model(...)"
        result = module.create_model(*data)
        stage = "the metrics of the returned model"
        model = result.get("model") if isinstance(result, dict) else None
        return outcome(result, _model_metrics(model, data) if model is not None else {})
    except BaseException as exc:  # the user's code: report whatever it raised, with its line
        line = script_line(exc, filename)
        where = f"line {line}" if line else stage
        text = f"{where} ({stage}): {type(exc).__name__}: {exc}"
        if isinstance(exc, MemoryError):
            text += f" (the trial's memory limit is {job.get('memory_mb')} MB)"
        elif hint := keras3_hint(str(exc)):
            text += f"; {hint}"
        tb = "".join(traceback.format_exception(exc)).rstrip().splitlines()[-8:]
        return {"error": text[:2000], "line": line, "traceback": "\n".join(tb)[-4000:]}


KERAS3_HINTS = {
    "lr": "Keras 3 optimizers take learning_rate= instead of lr=",
    "np_utils": "Keras 3: keras.utils.to_categorical",
    "keras.optimizers.legacy": "Keras 3: keras.optimizers.Adam etc.",
    "nb_epoch": "Keras 3: epochs= instead of nb_epoch=",
    "Convolution2D": "Keras 3: keras.layers.Conv2D",
    "MaxPooling2D": "Keras 3: keras.layers.MaxPooling2D",
}


def keras3_hint(message: str) -> str | None:
    """A Keras 3 replacement for a Keras-2-era name in an error message, if one is known."""
    for name, hint in KERAS3_HINTS.items():
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message):
            return hint
    return None


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    limit_self(int(job.get("memory_mb") or 0), int(job.get("file_mb") or 0))
    here = os.getcwd()
    sys.path[:] = [str(SHIM)] + [p for p in sys.path if p not in ("", ".", here)]
    sys.meta_path.insert(0, _Keras2Aliases())
    sys.argv = [job["script"]]
    out = run(job)
    Path(job["result"]).write_text(json.dumps(out, allow_nan=False, default=str))
    return 0 if "error" not in out else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
