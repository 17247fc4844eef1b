"""Datasets: digits, .npz files and their validation errors, uploads, image folders, keras.datasets
offline."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hyperhive.models import DatasetInfo
from hyperhive.store import SQLiteStore
from hyperhive.workers import datasets
from hyperhive.workers.datasets import DatasetError, load_dataset


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    datasets.clear_cache()


def test_digits_fixed_split_hash_and_cache() -> None:
    ds = load_dataset({"name": "digits"})
    assert ds.input_shape == (8, 8, 1) and ds.n_classes == 10
    assert [len(ds.train[1]), len(ds.val[1]), len(ds.test[1])] == [1078, 359, 360]
    x = ds.train[0]
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert set(np.unique(ds.val[1])) == set(range(10))
    assert load_dataset("digits") is ds  # cached per process
    datasets.clear_cache()
    again = load_dataset({"name": "digits"})
    assert again is not ds and again.sha256 == ds.sha256 and len(ds.sha256) == 64
    small = load_dataset({"name": "digits", "subset": 100})
    assert len(small.train[1]) == 100 and small.sha256 != ds.sha256
    np.testing.assert_array_equal(small.train[0], ds.train[0][:100])


def _save(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_images_labels_and_holdout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    path = _save(
        tmp_path / "d.npz",
        x_train=rng.integers(0, 256, size=(60, 5, 6), dtype=np.uint8),
        y_train=np.eye(3, dtype=np.float32)[y],
        x_test=rng.integers(0, 256, size=(9, 5, 6), dtype=np.uint8),
        y_test=np.eye(3)[np.arange(9) % 3],
        notes=np.arange(3),
    )
    ds = load_dataset({"path": str(path)})
    assert ds.input_shape == (5, 6, 1) and ds.n_classes == 3 and ds.val is None
    assert ds.train[0].dtype == np.float32 and ds.train[0].max() <= 1.0
    np.testing.assert_array_equal(ds.train[1], y)
    (_, y_tr), (x_val, y_val) = ds.train_val(0.1)
    assert (len(y_tr), len(y_val)) == (54, 6)
    assert sorted(np.bincount(y_val)) == [2, 2, 2]  # stratified
    assert ds.train_val(0.1)[1][0] is x_val  # the same held-out samples for every trial
    assert ds.describe()["n_test"] == 9


GOOD = {"x_train": np.zeros((4, 3, 3, 1), np.float32), "y_train": np.array([0, 1, 0, 1])}


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"x_train": GOOD["x_train"]}, "y_train: missing"),
        ({**GOOD, "y_train": np.array([0, 1, 0])}, "y_train: has 3 labels for 4 images"),
        (
            {**GOOD, "x_train": np.zeros((4, 9), np.float32)},
            "x_train: must have shape (n, h, w) or (n, h, w, c)",
        ),
        ({**GOOD, "x_train": np.array([[["a"]]] * 4)}, "x_train: must hold numbers"),
        ({**GOOD, "y_train": np.array([0, -1, 0, 1])}, "y_train: labels must be >= 0"),
        (
            {**GOOD, "y_train": np.array([[1, 1], [0, 1], [1, 0], [0, 1]])},
            "y_train: a 2-D label array must be one-hot",
        ),
        ({**GOOD, "x_val": np.zeros((2, 3, 3, 1), np.float32)}, "x_val and y_val come together"),
        (
            {**GOOD, "x_test": np.zeros((2, 4, 4, 1), np.float32), "y_test": np.array([0, 1])},
            "x_test: images are (4, 4, 1), but x_train's are (3, 3, 1)",
        ),
        (
            {**GOOD, "x_train": np.full((4, 3, 3, 1), np.nan, np.float32)},
            "x_train: holds NaN or infinite values",
        ),
        ({**GOOD, "y_train": np.zeros(4)}, "needs at least 2 classes"),
    ],
)
def test_npz_validation_errors_name_the_array(tmp_path: Path, arrays: dict[str, Any], expected: str) -> None:
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError) as info:
        load_dataset({"path": str(path)})
    assert expected in str(info.value) and str(path) in str(info.value)


def test_npz_pickled_objects_and_broken_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, x_train=np.array([object()] * 4, dtype=object), y_train=np.array([0, 1, 0, 1]))
    with pytest.raises(DatasetError, match=r"x_train: must hold numbers, not object"):
        load_dataset({"path": str(path)})
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"not a \.npz"):
        load_dataset({"path": str(tmp_path / "junk.npz")})
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset({"path": str(tmp_path / "missing.npz")})
    with pytest.raises(DatasetError, match="unknown dataset name 'imagenet'"):
        load_dataset({"name": "imagenet"})


def test_uploaded_dataset_is_cached_on_disk_by_hash(store: SQLiteStore, tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        x_train=np.random.default_rng(1).random((10, 4, 4, 3)).astype(np.float32),
        y_train=np.arange(10) % 2,
    )
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    info = DatasetInfo(
        id="up1", name="mine.npz", owner=None, size=len(data), sha256=sha, created_at=time.time()
    )
    store.save_dataset(info, [data[:100], data[100:]])
    ds = load_dataset({"upload": "up1"}, store=store, data_dir=tmp_path / "cache")
    assert ds.input_shape == (4, 4, 3) and ds.n_classes == 2
    assert (tmp_path / "cache" / "uploads" / f"{sha}.npz").read_bytes() == data
    datasets.clear_cache()
    store.delete_dataset("up1")
    store.save_dataset(info, [b"different bytes"])  # the disk copy is found by its hash first
    assert load_dataset({"upload": "up1"}, store=store, data_dir=tmp_path / "cache").sha256 == ds.sha256
    bad = DatasetInfo(id="up2", name="x.npz", owner=None, size=3, sha256="0" * 64, created_at=time.time())
    store.save_dataset(bad, [b"abc"])
    with pytest.raises(DatasetError, match="hash to"):
        load_dataset({"upload": "up2"}, store=store, data_dir=tmp_path / "cache")
    with pytest.raises(DatasetError, match="upload 'nope'"):
        load_dataset({"upload": "nope"}, store=store, data_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache" / "uploads").glob(".upload-*"))


def _png(path: Path, pixels: np.ndarray) -> None:
    """A grayscale 8-bit PNG, written without Pillow."""
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[r].astype(np.uint8).tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.mark.slow
def test_image_folder_one_subfolder_per_class(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("test", 1)):
        for label, value in (("cat", 0), ("dog", 255)):
            folder = tmp_path / "imgs" / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                _png(folder / f"{i}.png", np.full((6, 5), value))
    ds = load_dataset({"folder": str(tmp_path / "imgs")})
    assert ds.class_names == ["cat", "dog"] and ds.input_shape == (6, 5, 1)
    assert len(ds.train[1]) == 6 and len(ds.test[1]) == 2 and ds.val is None
    np.testing.assert_allclose(ds.train[0][ds.train[1] == 1], 1.0)
    resized = load_dataset({"folder": str(tmp_path / "imgs" / "train"), "image_size": [4, 4]})
    assert resized.input_shape == (4, 4, 1) and resized.n_classes == 2
    with pytest.raises(DatasetError, match="no images"):
        (tmp_path / "empty").mkdir()
        load_dataset({"folder": str(tmp_path / "empty")})


@pytest.mark.slow
def test_keras_dataset_offline_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.error import URLError

    from hyperhive.workers.backend import import_keras

    keras = import_keras()

    def offline() -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(DatasetError) as info:
        load_dataset({"name": "fashion_mnist"})
    text = str(info.value)
    assert "'fashion_mnist' could not be loaded" in text and "offline" in text and "name resolution" in text
