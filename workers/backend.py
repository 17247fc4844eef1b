"""The Keras side of a worker process: device setup, the one lazy Keras import, memory release between
trials and the library versions recorded on each trial.

Keras runs on TensorFlow unless ``KERAS_BACKEND`` says ``jax`` or ``torch``; everything else in the worker
uses ``keras.*`` APIs only. The only backend-specific code is here: GPU memory growth (TensorFlow, JAX)
and the release of TensorFlow's custom-gradient registry entries after a trial (see
:func:`release_trial_memory`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import os
import platform
import sys
import threading
from importlib import metadata
from types import ModuleType

log = logging.getLogger("hyperhive.worker")

_keras: ModuleType | None = None
_lock = threading.Lock()
_base_gradients: frozenset[str] = frozenset()
_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def configure_devices(*, cpu: bool = False, gpu: str | None = None) -> None:
    """Set the environment the backends read when they start; call before Keras is imported.

    GPU memory grows on demand (``TF_FORCE_GPU_ALLOW_GROWTH``, ``XLA_PYTHON_CLIENT_PREALLOCATE``) so a
    process holds only what its models need. ``cpu`` hides every GPU; ``gpu`` pins the process to one.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    elif gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def keras_loaded() -> bool:
    """Whether this process has imported Keras through :func:`import_keras`."""
    return _keras is not None


def import_keras() -> ModuleType:
    """Keras, imported once per process (TensorFlow's GPU memory growth switched on first).

    After the import the objects alive so far are moved out of the garbage collector's sight
    (``gc.freeze``): the collections run after every trial then skip Keras's large module graph.
    """
    global _keras, _base_gradients
    with _lock:
        if _keras is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import keras

            # tf.function's "triggered retracing" warnings: every trial builds a new model, by design
            logging.getLogger("tensorflow").setLevel(logging.ERROR)
            if keras.backend.backend() == "tensorflow":
                _tensorflow_memory_growth()
                _base_gradients = frozenset(_gradient_registry() or ())
            gc.collect()
            gc.freeze()
            _keras = keras
        return _keras


def _tensorflow_memory_growth() -> None:
    import tensorflow as tf

    for device in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except (RuntimeError, ValueError) as exc:  # the device was initialised already
            log.debug("memory growth not set on %s: %s", device.name, exc)


def _gradient_registry() -> dict[str, object] | None:
    """TensorFlow's global gradient registry (a private dict), or None if this TensorFlow has none."""
    try:
        from tensorflow.python.framework import ops
    except ImportError:
        return None
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def _forget_custom_gradients() -> int:
    """Drop the ``CustomGradient-N`` entries TensorFlow registered while tracing the last trial's
    functions. Each one holds a closure over its traced graph, so without this every trial leaves its
    graphs alive (about 2-10 MB a trial; tensorflow/tensorflow#97697, keras-team/tf-keras#898)."""
    registry = _gradient_registry()
    if registry is None:
        return 0
    stale = [k for k in registry if k.startswith(_CUSTOM_GRADIENT_PREFIX) and k not in _base_gradients]
    for key in stale:
        registry.pop(key, None)
    return len(stale)


def _malloc_trim() -> None:
    """Give freed heap pages back to the OS (glibc), so RSS reflects what is really in use."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def release_trial_memory() -> None:
    """Free what a finished trial left: Keras's global state, TensorFlow's traced graphs, Python garbage.

    Call after the last reference to the trial's model is gone.
    """
    if _keras is None:
        gc.collect()
        return
    _keras.backend.clear_session(free_memory=False)
    backend = _keras.backend.backend()
    if backend == "tensorflow":
        _forget_custom_gradients()
    elif backend == "jax":
        import jax

        jax.clear_caches()
    gc.collect()
    _malloc_trim()


def devices_used() -> list[str]:
    """The GPUs the Keras backend of this process trains on (``["cpu"]`` when none); empty before Keras
    is imported (a function objective)."""
    if _keras is None:
        return []
    backend = _keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        elif backend == "torch":
            import torch

            gpus = [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
        elif backend == "jax":
            import jax

            gpus = [str(d) for d in jax.devices() if d.platform != "cpu"]
        else:
            gpus = []
    except Exception as exc:  # a backend that cannot say: record that, do not fail the trial
        log.debug("cannot list the %s devices: %s", backend, exc)
        return ["unknown"]
    return gpus or ["cpu"]


@functools.cache
def _hyperhive_version() -> str:
    """The installed package's version, read once per process (parsing its metadata costs more than a
    trial of a cheap function objective)."""
    try:
        return metadata.version("hyperhive")
    except metadata.PackageNotFoundError:  # a source checkout that was not installed
        return "unknown"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a trial's result depends on (Keras and its backend once imported)."""
    import numpy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__}
    versions["hyperhive"] = _hyperhive_version()
    if _keras is not None:
        backend = _keras.backend.backend()
        versions["keras"] = _keras.__version__
        versions["keras_backend"] = backend
        module = sys.modules.get(backend)
        if module is not None:
            versions[backend] = str(getattr(module, "__version__", "unknown"))
    sklearn = sys.modules.get("sklearn")
    if sklearn is not None:
        versions["scikit-learn"] = str(sklearn.__version__)
    return versions
