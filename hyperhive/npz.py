"""Checking an uploaded ``.npz`` dataset with numpy alone (the web app never imports Keras).

Layout (the lecture's): ``x_train, y_train`` required; ``x_val, y_val`` and ``x_test, y_test`` optional,
each pair complete. ``x_*``: numeric (bool, integer or float) arrays of shape ``(n, h, w)`` or
``(n, h, w, c)``, the same per-sample shape in every split. ``y_*``: integer labels ``(n,)`` (or floats
holding integers, or ``(n, 1)``), or one-hot ``(n, classes)``; ``n`` equal to its ``x``'s. Other arrays
in the file are ignored and listed in ``meta["ignored"]``. The workers check again (and more) when they
load the data.

The file is untrusted, so it is read as a stream under :class:`Limits` and never loaded whole
(a 3 KB deflate bomb can expand to gigabytes):

- the archive: at most ``max_members`` members, each a plainly named ``NAME.npy`` (no folders, no
  duplicates), stored or deflated (no bzip2/lzma/..., no encryption); anything else is refused;
- every member is decompressed in chunks and its bytes counted as they come: more than ``max_ratio``
  times its compressed size (members decoding to at most :data:`RATIO_FLOOR` excepted), or more than
  ``max_decoded_bytes`` for the whole file, stops the reading and refuses the file. The sizes the zip
  headers claim are never trusted;
- an array is read through its ``.npy`` header (``numpy.lib.format``); a shape whose data would break
  those limits is refused before its data is read; image data is only streamed through (to check it is
  all there); labels are read in bounded chunks to count classes (at most ``max_labels`` labels and
  ``max_classes`` classes);
- the dataset's size once decoded to float32 (images ``n*h*w*c*4`` plus int64 labels, see
  :func:`decoded_bytes`) is recorded in ``meta["decoded_bytes"]`` and refused above
  ``max_decoded_bytes``; a search resizing the images (``image_size``) is checked against the same limit
  when it is submitted and when a worker loads the file.
"""

from __future__ import annotations

import math
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

SPLITS = ("train", "val", "test")
MAX_CLASSES = 10_000
"""The default cap on classes (``Settings.max_dataset_classes``)."""
RATIO_FLOOR = 1 << 20
"""Members that decode to at most this many bytes are not held to the compression-ratio limit."""
CHUNK = 1 << 20
MEMBER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\.npy")
ALLOWED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
FLOAT32 = 4
READ_ERRORS = (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error)
"""What reading a damaged member raises (a bad CRC, corrupt deflate data, a short member)."""
LABEL_BYTES = 8  # int64, what the workers turn labels into


@dataclass(frozen=True)
class Limits:
    """What an uploaded file may cost to read and to load (see the module docstring)."""

    max_ratio: float = 1000.0
    max_decoded_bytes: int = 2 << 30
    max_labels: int = 10_000_000
    max_classes: int = MAX_CLASSES
    max_members: int = 64

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """The limits a :class:`~hyperhive.settings.Settings` sets (``HYPERHIVE_MAX_*``)."""
        return cls(
            max_ratio=float(settings.max_upload_ratio),
            max_decoded_bytes=int(settings.max_dataset_bytes),
            max_labels=int(settings.max_dataset_labels),
            max_classes=int(settings.max_dataset_classes),
        )

    @classmethod
    def from_env(cls) -> Limits:
        """The limits of ``HYPERHIVE_*`` environment variables (the defaults if they are invalid)."""
        from hyperhive.settings import get_settings

        try:
            return cls.from_settings(get_settings())
        except ValueError:
            return cls()


class DatasetError(ValueError):
    """The file is not a usable dataset; ``errors`` is ``[(array name or "<file>", message)]``."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors))


class _Refused(Exception):
    """A limit was hit while reading; ``where`` is the array name or ``<file>``."""

    def __init__(self, where: str, message: str) -> None:
        self.where, self.message = where, message
        super().__init__(message)


def gib(n: float) -> str:
    return f"{n / (1 << 30):.3g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.3g} MiB"


def decoded_bytes(meta: dict[str, Any], image_size: tuple[int, int] | list[int] | None = None) -> int:
    """What the dataset ``meta`` describes takes once loaded by a worker: float32 images (resized to
    ``image_size`` when given) and int64 labels."""
    shape = list(meta.get("input_shape") or [])
    n = sum(int(v) for v in (meta.get("splits") or {}).values())
    if len(shape) < 2:
        return 0
    channels = int(shape[2]) if len(shape) > 2 else 1
    h, w = (int(image_size[0]), int(image_size[1])) if image_size else (int(shape[0]), int(shape[1]))
    return n * (h * w * channels * FLOAT32 + LABEL_BYTES)


class _Counted:
    """A member's decompressed stream that counts its bytes and stops at its allowance or the file's."""

    def __init__(self, raw: IO[bytes], name: str, allowance: int, budget: list[int], limits: Limits) -> None:
        self.raw, self.name, self.allowance, self.budget, self.limits = raw, name, allowance, budget, limits
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        data = self.raw.read(min(n, CHUNK))
        self.count += len(data)
        self.budget[0] -= len(data)
        if self.count > self.allowance:
            raise _Refused(
                self.name,
                f"decompresses to more than {self.limits.max_ratio:g}x its compressed size "
                "(a zip bomb?); refused (max_upload_ratio)",
            )
        if self.budget[0] < 0:
            raise _Refused(
                "<file>",
                f"decompresses to more than {gib(self.limits.max_decoded_bytes)} in total; "
                "refused (max_dataset_bytes)",
            )
        return data

    def chunks(self, total: int) -> Iterator[bytes]:
        """Exactly ``total`` more bytes in chunks; ValueError when the member ends sooner."""
        left = total
        while left > 0:
            data = self.read(min(left, CHUNK))
            if not data:
                raise ValueError(f"its data is cut short ({total - left} of {total} bytes)")
            left -= len(data)
            yield data

    def expect_end(self) -> None:
        if self.read(1):
            raise ValueError("holds more data than its header's shape")


def _check_archive(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The members by array name, after the archive-level rules (see the module docstring)."""
    errors: list[tuple[str, str]] = []
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if not MEMBER_NAME.fullmatch(name):
            errors.append(("<file>", f"member {name[:80]!r}: an .npz holds only NAME.npy arrays, no folders"))
            continue
        if info.flag_bits & 0x1:
            errors.append((name[:-4], "is encrypted; refused"))
        elif info.compress_type not in ALLOWED_METHODS:
            errors.append(
                (name[:-4], f"uses compression method {info.compress_type}; only stored or deflate")
            )
        if name[:-4] in members:
            errors.append((name[:-4], "appears twice in the file"))
        members[name[:-4]] = info
    if errors:
        raise DatasetError(errors)
    return members


def _entries(path: Path, limits: Limits) -> None:
    """Refuse a central directory too large to parse (``zipfile`` keeps every entry in memory)."""
    with path.open("rb") as f:
        end = zipfile._EndRecData(f)  # type: ignore[attr-defined]
    if not end:
        raise DatasetError([("<file>", "not a .npz (zip) file: no end of central directory")])
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > limits.max_members or size > 1 << 20:
        raise DatasetError([("<file>", f"has {entries} members; at most {limits.max_members}")])


@dataclass
class _Array:
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran: bool
    stream: _Counted

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _open_array(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int, budget: list[int], limits: Limits
) -> _Array:
    """Open a member and read its ``.npy`` header; refuse a shape whose data would break the limits."""
    name = info.filename[:-4]
    compressed = max(1, min(info.compress_size, file_size))
    allowance = max(int(limits.max_ratio * compressed), RATIO_FLOOR)
    stream = _Counted(zf.open(info), name, allowance, budget, limits)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    array = _Array(tuple(int(d) for d in shape), dtype, bool(fortran), stream)
    if any(d < 0 for d in array.shape):
        raise ValueError(f"has a negative dimension: {array.shape}")
    if _numeric(dtype) and array.nbytes + stream.count > allowance:
        raise _Refused(
            name,
            f"its header claims shape {array.shape} ({gib(array.nbytes)}) from {compressed} compressed "
            f"bytes, more than {limits.max_ratio:g}x; refused (max_upload_ratio)",
        )
    if _numeric(dtype) and array.nbytes > budget[0]:
        raise _Refused(
            name,
            f"its header claims shape {array.shape} ({gib(array.nbytes)}); the file may decompress to "
            f"at most {gib(limits.max_decoded_bytes)}; refused (max_dataset_bytes)",
        )
    return array


def _numeric(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in "biuf" and not dtype.hasobject and dtype.fields is None and dtype.itemsize <= 8


def _skip(array: _Array) -> None:
    """Stream an array's data through (counted, checked complete by the zip CRC), keeping none of it."""
    for _ in array.stream.chunks(array.nbytes):
        pass
    array.stream.expect_end()


def _check_finite(name: str, array: _Array, errors: list[tuple[str, str]]) -> None:
    """Stream float images through like :func:`_skip`, refusing NaN or infinite values (training on
    them gives NaN losses, a trial failure far from its cause)."""
    first = None
    seen = 0
    for block in _label_chunks(array):
        if first is None:
            bad = ~np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1)
            if bad.any():
                first = seen + int(np.argmax(bad))
        seen += block.shape[0]
    array.stream.expect_end()
    if first is not None:
        errors.append((name, f"holds NaN or infinite values (first in image {first})"))


def _label_chunks(array: _Array) -> Iterator[np.ndarray[Any, Any]]:
    """The labels in chunks of whole rows (about :data:`CHUNK` bytes each)."""
    row = math.prod(array.shape[1:]) * array.dtype.itemsize
    rows = max(1, CHUNK // max(row, 1))
    left = array.shape[0]
    while left > 0:
        take = min(rows, left)
        data = b"".join(array.stream.chunks(take * row))
        yield np.frombuffer(data, dtype=array.dtype).reshape((take, *array.shape[1:]))
        left -= take
    array.stream.expect_end()


def _classes(name: str, array: _Array, limits: Limits, errors: list[tuple[str, str]]) -> int | None:
    """The number of classes the labels imply, read in chunks; None after adding an error."""
    one_hot = len(array.shape) == 2 and array.shape[1] > 1
    if one_hot and array.shape[1] > limits.max_classes:
        errors.append((name, f"has {array.shape[1]} one-hot columns; at most {limits.max_classes} classes"))
        return None
    if one_hot and array.fortran:
        errors.append((name, "one-hot labels must be in C order (save np.ascontiguousarray(y))"))
        return None
    top = 0
    for y in _label_chunks(array):
        if one_hot:
            if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
                errors.append((name, "a 2-D label array must be one-hot (each row one 1, the rest 0)"))
                return None
            continue
        flat = y.reshape(-1)
        if y.dtype.kind == "f" and not np.all(np.isfinite(flat) & (flat == np.round(flat))):
            errors.append((name, "labels must be whole numbers"))
            return None
        if flat.size and flat.min() < 0:
            errors.append((name, f"labels must be >= 0, found {flat.min()}"))
            return None
        if flat.size:
            top = max(top, int(flat.max()) + 1)
        if top > limits.max_classes:
            errors.append((name, f"labels go up to {top - 1}; at most {limits.max_classes} classes"))
            return None
    return int(array.shape[1]) if one_hot else top


def inspect_npz(path: str | Path, limits: Limits | None = None) -> dict[str, Any]:
    """Validate the file (see the module docstring); return its ``meta``: ``splits`` ``{split: n}``,
    ``input_shape``, ``dtype``, ``classes``, ``label_format`` (``labels`` | ``one_hot``), ``ignored``,
    ``decoded_bytes``. Raises :class:`DatasetError` listing every problem found."""
    limits = limits or Limits()
    path = Path(path)
    try:
        _entries(path, limits)
    except OSError as exc:
        raise DatasetError([("<file>", f"not a .npz (zip) file: {exc}")]) from None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DatasetError([("<file>", f"not a .npz (zip) file: {exc}")]) from None
    try:
        with zf:
            return _inspect(zf, path.stat().st_size, limits)
    except _Refused as exc:
        raise DatasetError([(exc.where, exc.message)]) from None


def _inspect(zf: zipfile.ZipFile, file_size: int, limits: Limits) -> dict[str, Any]:
    members = _check_archive(zf)
    errors: list[tuple[str, str]] = []
    present = set(members)
    for req in ("x_train", "y_train"):
        if req not in present:
            errors.append((req, "missing: the file needs x_train and y_train"))
    for split in ("val", "test"):
        if (f"x_{split}" in present) != (f"y_{split}" in present):
            errors.append((f"x_{split}", f"x_{split} and y_{split} come together; one is missing"))
    if errors:
        raise DatasetError(errors)
    budget = [limits.max_decoded_bytes]
    meta: dict[str, Any] = {
        "splits": {},
        "ignored": sorted(present - {f"{a}_{s}" for a in "xy" for s in SPLITS}),
    }
    sample_shape: tuple[int, ...] | None = None
    classes: set[int] = set()
    label_formats: set[str] = set()
    n_labels = 0
    for split in SPLITS:
        xn, yn = f"x_{split}", f"y_{split}"
        if xn not in present:
            continue
        arrays: dict[str, _Array] = {}
        for name in (xn, yn):
            try:
                arrays[name] = _open_array(zf, members[name], file_size, budget, limits)
            except READ_ERRORS as exc:
                errors.append((name, f"not a readable numpy array: {exc}"))
        if len(arrays) < 2:
            continue
        x, y = arrays[xn], arrays[yn]
        xs, ys = x.shape, y.shape
        if not _numeric(x.dtype):
            errors.append((xn, f"must hold numbers, not {x.dtype}"))
        if len(xs) not in (3, 4):
            errors.append((xn, f"must have shape (n, h, w) or (n, h, w, c), got {xs}"))
        elif any(d < 1 for d in xs[1:]):
            errors.append((xn, f"has an empty image dimension: {xs}"))
        elif sample_shape is None:
            sample_shape = xs[1:]
            meta["dtype"] = str(x.dtype)
        elif xs[1:] != sample_shape:
            errors.append((xn, f"images are {xs[1:]}, but x_train's are {sample_shape}"))
        if split == "train" and xs and xs[0] == 0:
            errors.append((xn, "holds no samples"))
        meta["splits"][split] = int(xs[0]) if xs else 0
        if len(xs) in (3, 4):  # refuse what will not fit before streaming the data through
            check_decoded({"splits": meta["splits"], "input_shape": list(xs[1:])}, limits)
        if _numeric(x.dtype):
            try:
                _check_finite(xn, x, errors) if x.dtype.kind == "f" and len(xs) in (3, 4) else _skip(x)
            except READ_ERRORS as exc:
                errors.append((xn, str(exc)))
        if not _numeric(y.dtype):
            errors.append((yn, f"must hold numbers, not {y.dtype}"))
            continue
        if len(ys) not in (1, 2):
            errors.append((yn, f"must have shape (n,) or (n, classes), got {ys}"))
            continue
        if len(xs) >= 1 and ys[0] != xs[0]:
            errors.append((yn, f"has {ys[0]} labels for {xs[0]} images in {xn}"))
        n_labels += ys[0]
        if n_labels > limits.max_labels:
            errors.append(
                (yn, f"the file holds over {limits.max_labels} labels; refused (max_dataset_labels)")
            )
            continue
        try:
            n = _classes(yn, y, limits, errors)
        except READ_ERRORS as exc:
            errors.append((yn, f"not a readable numpy array: {exc}"))
            continue
        if n is not None:
            classes.add(n)
            label_formats.add("one_hot" if len(ys) == 2 and ys[1] > 1 else "labels")
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
    meta["decoded_bytes"] = decoded_bytes(meta)
    check_decoded(meta, limits)
    return meta


def check_decoded(meta: dict[str, Any], limits: Limits, image_size: Any = None) -> None:
    """Refuse a dataset whose float32 form (resized to ``image_size`` when given) is over the limit."""
    size = decoded_bytes(meta, image_size)
    if size > limits.max_decoded_bytes:
        resized = f" resized to {list(image_size)}" if image_size else ""
        raise DatasetError(
            [
                (
                    "<file>",
                    f"the dataset{resized} takes {gib(size)} as float32, over the "
                    f"{gib(limits.max_decoded_bytes)} a worker is sent (max_dataset_bytes)",
                )
            ]
        )
