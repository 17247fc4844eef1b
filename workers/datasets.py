"""The datasets a search trains on, loaded once per worker process and identified by a content hash.

A search document's ``dataset`` section names exactly one source (see
:mod:`hyperhive.search_spaces.dataset_section`):

- ``name: digits``: scikit-learn's 8x8 digits (shipped, offline), split once into train / val / test
  (60 / 20 / 20 %, stratified, fixed seed) so every trial of every search sees the same split.
- ``name: mnist | fashion_mnist | cifar10 | cifar100``: ``keras.datasets`` (downloaded on first use and
  cached under ``~/.keras/datasets``; offline and not cached: :class:`DatasetError` naming the dataset).
- ``path: file.npz``: the lecture's layout ``x_train, y_train[, x_val, y_val][, x_test, y_test]``, read
  with ``allow_pickle=False`` and checked by :func:`hyperhive.npz.inspect_npz` (the same rules the upload
  API applies) plus finiteness; ``x`` of shape ``(n, h, w[, c])``, ``y`` labels or one-hot.
- ``upload: ID``: an uploaded ``.npz``, copied once from the store to ``<data_dir>/uploads/<sha256>.npz``.
- ``folder: DIR``: one sub-folder per class (or ``train/``, ``val/``, ``test/`` folders, each with one
  sub-folder per class), read with ``keras.utils.image_dataset_from_directory`` (needs TensorFlow).

Options: ``image_size: [h, w]`` (folder: the size images are resized to, default the first image's
size; upload: resize), ``subset: N`` (the first N training samples), ``test`` (read by the trainer).

Images become float32 ``(n, h, w, c)`` in ``[0, 1]`` when they were integers (divided by 255, or by their
maximum when larger); labels become int64 class indices. A dataset's identity, :attr:`Dataset.sha256`,
is the SHA-256 of its arrays (names, shapes, dtypes, bytes), recorded on every trial.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperhive.errors import HyperhiveError, NotFound
from hyperhive.private_files import private_dir

if TYPE_CHECKING:
    from hyperhive.npz import Limits
    from hyperhive.store.base import Store

log = logging.getLogger("hyperhive.worker")

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
SPLITS = ("train", "val", "test")
DIGITS_SPLIT_SEED = 0
HOLDOUT_SEED = 0
CACHE_SIZE = 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

Arrays = tuple[np.ndarray, np.ndarray]


class DatasetError(HyperhiveError, ValueError):
    """A dataset cannot be used; the message names the dataset (and the array) and the reason."""


class DatasetDownloadError(DatasetError):
    """A ``keras.datasets`` dataset could not be downloaded: this machine's network, not the document."""


@dataclass(eq=False)
class Dataset:
    """Arrays ready for Keras: ``x`` float32 ``(n, h, w, c)``, ``y`` int64 class indices in
    ``[0, n_classes)``. ``val`` and ``test`` are ``None`` when the source has no such split."""

    source: str
    train: Arrays
    val: Arrays | None
    test: Arrays | None
    n_classes: int
    class_names: list[str] | None = None
    sha256: str = ""
    _holdouts: dict[float, tuple[Arrays, Arrays]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = content_hash(self)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.train[0].shape[1:])

    def train_val(self, validation_split: float) -> tuple[Arrays, Arrays]:
        """Training and validation arrays: the dataset's own validation split when it has one, else
        ``validation_split`` of the training set held out (stratified when every class has two
        samples, fixed seed, cached), so every trial of a search validates on the same samples."""
        if self.val is not None:
            return self.train, self.val
        if not 0.0 < validation_split < 1.0:
            raise DatasetError(
                f"dataset {self.source}: validation_split must be in (0, 1), got {validation_split}"
            )
        with self._lock:
            cached = self._holdouts.get(validation_split)
            if cached is None:
                cached = _holdout(self.train, validation_split, self.source)
                self._holdouts[validation_split] = cached
            return cached

    def describe(self) -> dict[str, Any]:
        """What a trial records about its data."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "n_train": len(self.train[1]),
            "n_val": None if self.val is None else len(self.val[1]),
            "n_test": None if self.test is None else len(self.test[1]),
        }


def content_hash(ds: Dataset) -> str:
    """SHA-256 over every split's arrays: name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for split, arrays in (("train", ds.train), ("val", ds.val), ("test", ds.test)):
        if arrays is None:
            continue
        for kind, a in zip("xy", arrays, strict=True):
            a = np.ascontiguousarray(a)
            h.update(f"{kind}_{split}:{a.dtype.str}:{a.shape};".encode())
            h.update(a.data)
    return h.hexdigest()


def _holdout(train: Arrays, fraction: float, source: str) -> tuple[Arrays, Arrays]:
    from sklearn.model_selection import train_test_split

    x, y = train
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    n_val = round(len(y) * fraction)
    if n_val < 1 or n_val >= len(y):
        raise DatasetError(
            f"dataset {source}: validation_split {fraction} of {len(y)} training samples "
            "leaves an empty split"
        )
    try:
        x_tr, x_val, y_tr, y_val = train_test_split(
            x, y, test_size=n_val, random_state=HOLDOUT_SEED, stratify=stratify
        )
    except ValueError:  # too few samples per class for a stratified split
        x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=n_val, random_state=HOLDOUT_SEED)
    return (x_tr, y_tr), (x_val, y_val)


# ---------------------------------------------------------------------------------------------- spec
def normalise_spec(spec: Any) -> dict[str, Any]:
    """The ``dataset`` section as a mapping (a bare string is a built-in name or an ``.npz`` path)."""
    if isinstance(spec, str):
        return {"path": spec} if spec.endswith(".npz") else {"name": spec}
    if not isinstance(spec, Mapping):
        raise DatasetError(f"the dataset section must be a mapping such as {{name: digits}}, got {spec!r}")
    sources = [k for k in ("name", "path", "folder", "upload") if spec.get(k) is not None]
    if len(sources) != 1:
        raise DatasetError(
            f"the dataset section needs exactly one of name, path, folder, upload; got {sources or 'none'}"
        )
    return dict(spec)


def _image_size(spec: Mapping[str, Any]) -> tuple[int, int] | None:
    size = spec.get("image_size")
    if size is None:
        return None
    if not (
        isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)
    ):
        raise DatasetError(f"dataset image_size must be [height, width] of positive integers, got {size!r}")
    return int(size[0]), int(size[1])


# --------------------------------------------------------------------------------------------- cache
_cache: OrderedDict[str, Dataset] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every dataset loaded by this process."""
    with _cache_lock:
        _cache.clear()


def _cache_key(spec: Mapping[str, Any], store: Store | None) -> str:
    """The spec itself, plus what identifies the bytes behind it: a file's size and modification time,
    an upload's SHA-256."""
    extra: dict[str, Any] = {}
    if spec.get("path"):
        try:
            st = Path(spec["path"]).stat()
            extra = {"size": st.st_size, "mtime": st.st_mtime_ns}
        except OSError:
            extra = {}
    elif spec.get("upload") and store is not None:
        try:
            extra = {"sha256": store.get_dataset(str(spec["upload"])).sha256}
        except HyperhiveError:
            extra = {}
    return json.dumps({"spec": spec, "extra": extra}, sort_keys=True, default=str)


def load_dataset(spec: Any, *, store: Store | None = None, data_dir: Path | None = None) -> Dataset:
    """The dataset a search's ``dataset`` section names, from this process's cache when it was loaded
    before (the cache keeps the :data:`CACHE_SIZE` most recently used datasets).

    ``store`` is needed for uploads; ``data_dir`` is where uploads are cached on disk (default
    ``.hyperhive/data``). Raises :class:`DatasetError`.
    """
    spec = normalise_spec(spec)
    key = _cache_key(spec, store)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    dataset = _load_uncached(spec, store=store, data_dir=data_dir)
    with _cache_lock:
        _cache[key] = dataset
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return dataset


def search_dataset(
    document: Mapping[str, Any], *, store: Store | None = None, data_dir: Path | None = None
) -> tuple[Dataset, bool]:
    """The dataset a search document's ``dataset`` section names (see :func:`load_dataset`), and whether
    its test split is to be evaluated (``test: true``)."""
    spec = normalise_spec(document.get("dataset"))
    return load_dataset(spec, store=store, data_dir=data_dir), bool(spec.get("test"))


def _load_uncached(spec: Mapping[str, Any], *, store: Store | None, data_dir: Path | None) -> Dataset:
    size = _image_size(spec)
    if spec.get("name") is not None:
        name = str(spec["name"])
        if name == "digits":
            ds = load_digits()
        elif name in KERAS_DATASETS:
            ds = load_keras_dataset(name)
        else:
            raise DatasetError(
                f"unknown dataset name {name!r}; built-in datasets: digits, {', '.join(KERAS_DATASETS)}"
            )
    elif spec.get("path") is not None:
        ds = load_npz(spec["path"], image_size=size)
    elif spec.get("upload") is not None:
        if store is None:
            raise DatasetError(f"dataset upload {spec['upload']!r} needs a store to read it from")
        path = fetch_upload(store, str(spec["upload"]), data_dir or Path(".hyperhive") / "data")
        ds = load_npz(path, image_size=size, source=f"upload {spec['upload']}")
    else:
        ds = load_folder(spec["folder"], image_size=size)
    subset = spec.get("subset")
    if subset is not None:
        ds = take_subset(ds, int(subset))
    return ds


def take_subset(ds: Dataset, n: int) -> Dataset:
    """The dataset with only its first ``n`` training samples (validation and test kept whole)."""
    if n < 1:
        raise DatasetError(f"dataset {ds.source}: subset must be >= 1, got {n}")
    if n >= len(ds.train[1]):
        return ds
    x, y = ds.train
    return Dataset(
        source=f"{ds.source} (first {n} training samples)",
        train=(x[:n], y[:n]),
        val=ds.val,
        test=ds.test,
        n_classes=ds.n_classes,
        class_names=ds.class_names,
    )


# --------------------------------------------------------------------------------------- conversions
def _images(x: np.ndarray, what: str) -> np.ndarray:
    """float32 ``(n, h, w, c)``: a channel axis added to ``(n, h, w)``, integers scaled to [0, 1]."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DatasetError(f"{what}: images must have shape (n, h, w) or (n, h, w, c), got {x.shape}")
    if x.dtype.kind in "iub":
        top = float(x.max()) if x.size else 1.0
        scale = 255.0 if top <= 255 else top
        return (x.astype(np.float32) / (scale if x.dtype.kind != "b" else 1.0)).astype(np.float32)
    if x.dtype.kind != "f":
        raise DatasetError(f"{what}: images must hold numbers, not {x.dtype}")
    out = x.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise DatasetError(f"{what}: holds NaN or infinite values")
    return out


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    """int64 class indices from labels ``(n,)``/``(n, 1)`` or one-hot ``(n, k)``."""
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype(np.int64)
    flat = y.reshape(-1)
    if flat.dtype.kind == "f" and not np.all(np.isfinite(flat) & (flat == np.round(flat))):
        raise DatasetError(f"{what}: labels must be whole numbers")
    if flat.size and flat.min() < 0:
        raise DatasetError(f"{what}: labels must be >= 0, found {flat.min()}")
    return flat.astype(np.int64)


# -------------------------------------------------------------------------------------------- digits
def load_digits() -> Dataset:
    """scikit-learn's digits: 1,797 images 8x8x1 in [0, 1], 10 classes, fixed stratified 60/20/20 split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    y = bunch.target.astype(np.int64)
    x_tr, x_rest, y_tr, y_rest = train_test_split(
        x, y, test_size=0.4, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    x_val, x_te, y_val, y_te = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=DIGITS_SPLIT_SEED, stratify=y_rest
    )
    return Dataset(
        source="digits",
        train=(x_tr, y_tr),
        val=(x_val, y_val),
        test=(x_te, y_te),
        n_classes=10,
        class_names=[str(i) for i in range(10)],
    )


# ------------------------------------------------------------------------------------ keras.datasets
def load_keras_dataset(name: str) -> Dataset:
    """One of ``keras.datasets`` (train and test; validation is held out of train by the trainer)."""
    from hyperhive.workers.backend import import_keras

    keras = import_keras()
    module = getattr(keras.datasets, name)
    try:
        (x_tr, y_tr), (x_te, y_te) = module.load_data()
    except Exception as exc:  # urllib / OSError / HTTP errors: offline, proxy, disk full
        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
        raise DatasetDownloadError(
            f"dataset {name!r} could not be loaded: keras.datasets downloads it on first use and caches it "
            f"in {cache}; this machine may be offline ({type(exc).__name__}: {exc}). Download it once on a "
            "machine with internet access and copy the cache folder, or use an .npz file"
        ) from exc
    return Dataset(
        source=name,
        train=(_images(x_tr, f"{name} x_train"), _labels(y_tr, f"{name} y_train")),
        val=None,
        test=(_images(x_te, f"{name} x_test"), _labels(y_te, f"{name} y_test")),
        n_classes=100 if name == "cifar100" else 10,
    )


# ----------------------------------------------------------------------------------------------- npz
def load_npz(
    path: str | Path,
    *,
    image_size: tuple[int, int] | None = None,
    source: str | None = None,
    limits: Limits | None = None,
) -> Dataset:
    """An ``.npz`` in the lecture's layout (see the module docstring); arrays other than ``x_*``/``y_*``
    are ignored. Raises :class:`DatasetError` naming the file, the array and the reason.

    Before anything is loaded the file is streamed through :func:`hyperhive.npz.inspect_npz` under
    ``limits`` (default: the ``HYPERHIVE_MAX_*`` settings): a zip bomb, or a dataset larger than
    ``max_dataset_bytes`` as float32 (after resizing to ``image_size``), is refused, not loaded."""
    from hyperhive.npz import DatasetError as NpzError
    from hyperhive.npz import Limits, check_decoded, inspect_npz

    source = source or f"file {path}"
    if not Path(path).is_file():
        raise DatasetError(f"dataset {source}: no such file")
    limits = limits or Limits.from_env()
    try:
        meta = inspect_npz(path, limits)  # streamed under the ratio/size limits before np.load
        check_decoded(meta, limits, image_size)
    except NpzError as exc:
        raise DatasetError(
            f"dataset {source}: " + "; ".join(f"{name}: {msg}" for name, msg in exc.errors)
        ) from None
    splits: dict[str, Arrays] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for split in SPLITS:
                if f"x_{split}" not in npz.files:
                    continue
                x = _images(npz[f"x_{split}"], f"dataset {source} x_{split}")
                y = _labels(npz[f"y_{split}"], f"dataset {source} y_{split}")
                splits[split] = (x, y)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"dataset {source}: cannot be read: {exc}") from None
    if image_size is not None:
        splits = {k: (resize_images(x, image_size), y) for k, (x, y) in splits.items()}
    return Dataset(
        source=source,
        train=splits["train"],
        val=splits.get("val"),
        test=splits.get("test"),
        n_classes=int(meta["classes"]),
    )


def resize_images(x: np.ndarray, size: tuple[int, int], batch: int = 1024) -> np.ndarray:
    """Images resized (bilinear) to ``size`` with Keras, in batches."""
    if tuple(x.shape[1:3]) == tuple(size):
        return x
    from hyperhive.workers.backend import import_keras

    keras = import_keras()
    parts = [
        keras.ops.convert_to_numpy(keras.ops.image.resize(x[i : i + batch], size))
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(parts).astype(np.float32)


# -------------------------------------------------------------------------------------------- upload
def fetch_upload(store: Store, dataset_id: str, data_dir: Path) -> Path:
    """The local copy of an uploaded dataset, written once to ``<data_dir>/uploads/<sha256>.npz`` and
    checked against the SHA-256 the store recorded."""
    try:
        info = store.get_dataset(dataset_id)
    except NotFound as exc:  # an unreachable store (StoreUnavailable) is not the dataset's fault
        raise DatasetError(f"dataset upload {dataset_id!r}: {exc}") from exc
    folder = Path(data_dir) / "uploads"
    target = folder / f"{info.sha256}.npz"
    if target.is_file():
        return target
    private_dir(folder)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in store.read_dataset(dataset_id):
                digest.update(chunk)
                f.write(chunk)
        if info.sha256 and digest.hexdigest() != info.sha256:
            raise DatasetError(
                f"dataset upload {dataset_id!r}: the stored bytes hash to {digest.hexdigest()}, "
                f"not the recorded {info.sha256}"
            )
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    log.info("dataset upload %s (%s) cached at %s", dataset_id, info.name, target)
    return target


# -------------------------------------------------------------------------------------------- folder
def _first_image(folder: Path) -> Path:
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            return path
    raise DatasetError(f"dataset folder {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found")


def _read_split(
    folder: Path, size: tuple[int, int] | None, channels: int, class_names: list[str] | None
) -> tuple[Arrays, list[str]]:
    from hyperhive.workers.backend import import_keras

    keras = import_keras()
    color_mode = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels, "rgb")
    try:
        data = keras.utils.image_dataset_from_directory(
            str(folder),
            labels="inferred",
            label_mode="int",
            class_names=class_names,
            color_mode=color_mode,
            batch_size=None,
            image_size=size,
            shuffle=False,
            verbose=False,
        )
    except (ValueError, ImportError, OSError) as exc:
        raise DatasetError(f"dataset folder {folder}: {exc}") from None
    xs, ys = [], []
    for x, y in data.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DatasetError(f"dataset folder {folder}: no images found in its class sub-folders")
    x_arr = (np.stack(xs).astype(np.float32) / 255.0).astype(np.float32)
    return (x_arr, np.asarray(ys, dtype=np.int64)), list(data.class_names)


def load_folder(folder: str | Path, *, image_size: tuple[int, int] | None = None) -> Dataset:
    """Images in one sub-folder per class (``folder/<class>/*.png``), or split folders
    ``folder/train/<class>/...`` with optional ``val/`` (or ``validation/``) and ``test/``.

    Without ``image_size`` every image is resized to the first image's size (read from a PNG header, or
    with Pillow for other formats); grayscale PNGs stay one channel.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root}: no such folder")
    first = _first_image(root)
    probe = _probe_image(first)
    if image_size is None:
        if probe is None:
            raise DatasetError(f"dataset folder {root}: give image_size: [height, width] for non-PNG images")
        image_size = (probe[0], probe[1])
    channels = probe[2] if probe is not None else 3
    split_dirs = {s: root / s for s in ("train", "val", "validation", "test") if (root / s).is_dir()}
    if "train" in split_dirs:
        train, names = _read_split(split_dirs["train"], image_size, channels, None)
        val_dir = split_dirs.get("val") or split_dirs.get("validation")
        val = _read_split(val_dir, image_size, channels, names)[0] if val_dir else None
        test = (
            _read_split(split_dirs["test"], image_size, channels, names)[0] if "test" in split_dirs else None
        )
    else:
        train, names = _read_split(root, image_size, channels, None)
        val = test = None
    return Dataset(
        source=f"folder {root}",
        train=train,
        val=val,
        test=test,
        n_classes=len(names),
        class_names=names,
    )


def _probe_image(path: Path) -> tuple[int, int, int] | None:
    """``(height, width, channels)`` of an image: from a PNG's header, else with Pillow when installed,
    else None."""
    with path.open("rb") as f:
        head = f.read(26)
    if len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        return height, width, {0: 1, 2: 3, 3: 3, 4: 1, 6: 4}.get(head[25], 3)
    try:
        from PIL import Image
    except ImportError:
        return None
    with Image.open(path) as img:
        return img.height, img.width, {"L": 1, "LA": 1, "RGBA": 4}.get(img.mode, 3)
