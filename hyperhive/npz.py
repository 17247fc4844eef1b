"""Checking an uploaded ``.npz`` dataset with numpy alone (the web app never imports Keras).

Layout (the lecture's): ``x_train, y_train`` required; ``x_val, y_val`` and ``x_test, y_test`` optional,
each pair complete. ``x_*``: numeric (bool, integer or float) arrays of shape ``(n, h, w)`` or
``(n, h, w, c)``, the same per-sample shape in every split. ``y_*``: integer labels ``(n,)`` (or floats
holding integers, or ``(n, 1)``), or one-hot ``(n, classes)``; ``n`` equal to its ``x``'s. Arrays are read
with ``allow_pickle=False``; the image arrays only by their headers (no data is loaded), the label
arrays in full to count classes. Other arrays in the file are ignored and listed in ``meta["ignored"]``.
The workers check again (and more) when they load the data.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")
MAX_CLASSES = 100_000


class DatasetError(ValueError):
    """The file is not a usable dataset; ``errors`` is ``[(array name or "<file>", message)]``."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors))


def _header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """An array's shape and dtype from its ``.npy`` header; ValueError if its data is cut short."""
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    shape = tuple(int(d) for d in shape)
    if not dtype.hasobject:
        needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if zf.getinfo(member).file_size - offset < needed:
            raise ValueError(f"its data is cut short (shape {shape} needs {needed} bytes)")
    return shape, dtype


def _numeric(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in "biuf" and not dtype.hasobject


def _classes(name: str, y: np.ndarray[Any, Any], errors: list[tuple[str, str]]) -> int | None:
    """The number of classes ``y`` implies, or None after adding an error."""
    if y.size == 0:
        return 0
    if y.ndim == 2 and y.shape[1] > 1:
        if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
            errors.append((name, "a 2-D label array must be one-hot (each row one 1, the rest 0)"))
            return None
        return int(y.shape[1])
    flat = y.reshape(-1)
    if y.dtype.kind == "f" and not np.all(np.isfinite(flat) & (flat == np.round(flat))):
        errors.append((name, "labels must be whole numbers"))
        return None
    if flat.min() < 0:
        errors.append((name, f"labels must be >= 0, found {flat.min()}"))
        return None
    top = int(flat.max()) + 1
    if top > MAX_CLASSES:
        errors.append((name, f"labels go up to {top - 1}; at most {MAX_CLASSES} classes"))
        return None
    return top


def inspect_npz(path: str | Path) -> dict[str, Any]:
    """Validate the file (see the module docstring); return its ``meta``: ``splits`` ``{split: n}``,
    ``input_shape``, ``dtype``, ``classes``, ``label_format`` (``labels`` | ``one_hot``), ``ignored``.
    Raises :class:`DatasetError` listing every problem found."""
    errors: list[tuple[str, str]] = []
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError([("<file>", f"not a .npz (zip) file: {exc}")]) from None
    with zf:
        members = {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}
        present = set(members)
        for req in ("x_train", "y_train"):
            if req not in present:
                errors.append((req, "missing: the file needs x_train and y_train"))
        for split in ("val", "test"):
            if (f"x_{split}" in present) != (f"y_{split}" in present):
                errors.append((f"x_{split}", f"x_{split} and y_{split} come together; one is missing"))
        if errors:
            raise DatasetError(errors)
        meta: dict[str, Any] = {
            "splits": {},
            "ignored": sorted(present - {f"{a}_{s}" for a in "xy" for s in SPLITS}),
        }
        sample_shape: tuple[int, ...] | None = None
        classes: set[int] = set()
        label_formats: set[str] = set()
        for split in SPLITS:
            xn, yn = f"x_{split}", f"y_{split}"
            if xn not in present:
                continue
            try:
                xs, xd = _header(zf, members[xn])
                ys, yd = _header(zf, members[yn])
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                errors.append((xn, f"not a readable numpy array: {exc}"))
                continue
            if not _numeric(xd):
                errors.append((xn, f"must hold numbers, not {xd}"))
            if len(xs) not in (3, 4):
                errors.append((xn, f"must have shape (n, h, w) or (n, h, w, c), got {xs}"))
            elif any(d < 1 for d in xs[1:]):
                errors.append((xn, f"has an empty image dimension: {xs}"))
            elif sample_shape is None:
                sample_shape = xs[1:]
                meta["dtype"] = str(xd)
            elif xs[1:] != sample_shape:
                errors.append((xn, f"images are {xs[1:]}, but x_train's are {sample_shape}"))
            if not _numeric(yd):
                errors.append((yn, f"must hold numbers, not {yd}"))
                continue
            if len(ys) not in (1, 2):
                errors.append((yn, f"must have shape (n,) or (n, classes), got {ys}"))
                continue
            if len(xs) >= 1 and ys[0] != xs[0]:
                errors.append((yn, f"has {ys[0]} labels for {xs[0]} images in {xn}"))
            if split == "train" and xs and xs[0] == 0:
                errors.append((xn, "holds no samples"))
            with zf.open(members[yn]) as f:
                y = np.lib.format.read_array(f, allow_pickle=False)
            n = _classes(yn, y, errors)
            if n is not None:
                classes.add(n)
                label_formats.add("one_hot" if y.ndim == 2 and y.shape[1] > 1 else "labels")
            meta["splits"][split] = int(xs[0]) if xs else 0
    if len(label_formats) > 1:
        errors.append(("y_train", "mixes integer labels and one-hot labels across splits"))
    if "one_hot" in label_formats and len(classes) > 1:
        errors.append(("y_train", f"one-hot widths differ across splits: {sorted(classes)}"))
    if errors:
        raise DatasetError(errors)
    meta["input_shape"] = list(sample_shape or ())
    meta["classes"] = max(classes) if classes else 0
    meta["label_format"] = label_formats.pop() if label_formats else "labels"
    if meta["classes"] < 2:
        raise DatasetError([("y_train", f"needs at least 2 classes, found {meta['classes']}")])
    return meta
