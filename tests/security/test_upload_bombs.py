"""Issue 8, item 2: zip bombs and oversized datasets in uploads.

A real ``hyperhive serve`` (uvicorn, SQLite) gets deflate bombs (gigabytes of zeros in the labels, in the
images), an ``.npy`` header claiming an enormous shape, and archives breaking the member rules; each is
refused with a 4xx naming the reason, nothing is stored, and the server's peak RSS (``VmHWM``) stays
flat. The same files handed to a worker are refused before ``np.load`` with flat memory too. The
per-operator limits (``HYPERHIVE_MAX_*``) are exercised on the in-process app.
"""

from __future__ import annotations

import functools
import io
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from servicekit import (
    EXAMPLES,
    bearer,
    cli_env,
    free_port,
    good_npz,
    make_client,
    npz_bytes,
    wait_ready,
)

from hyperhive.npz import DatasetError, Limits, inspect_npz
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

RSS_GROWTH_LIMIT = 50 << 20
LECTURE = (EXAMPLES / "lecture-cnn.yaml").read_text()
ZERO_CHUNK = 16 << 20


# ------------------------------------------------------------------------------------ bomb builders
def npy_header(shape: tuple[int, ...], dtype: str = "<i8") -> bytes:
    """A version 1.0 ``.npy`` header for ``shape`` (no data)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@functools.lru_cache
def zeros_deflate(chunks: int) -> bytes:
    """A raw deflate stream of ``chunks`` * 16 MiB zeros (about 1,028:1), built from one compressed
    chunk repeated (full flushes make the blocks independent)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = c.compress(bytes(ZERO_CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
    return one * chunks + c.flush()


def zip_bytes(members: list[tuple[str, bytes, int, int, int, int]]) -> bytes:
    """A zip by hand: ``(name, payload, method, crc, uncompressed size claimed, flags)`` per member."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, payload, method, crc, size, flags in members:
        offset = out.tell()
        raw = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc,
                              len(payload), size, len(raw), 0))  # fmt: skip
        out.write(raw + payload)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc,
                                  len(payload), size, len(raw), 0, 0, 0, 0, 0, offset))  # fmt: skip
        central.write(raw)
    cd = central.getvalue()
    start = out.tell()
    out.write(cd)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), start, 0))
    return out.getvalue()


def npy_member(name: str, arr: np.ndarray) -> tuple[str, bytes, int, int, int, int]:
    buf = io.BytesIO()
    np.save(buf, arr)
    data = buf.getvalue()
    return (name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data), 0)


def zero_bomb(name: str, shape: tuple[int, ...], dtype: str) -> tuple[str, bytes, int, int, int, int]:
    """A deflated member, honest in every header and CRC: an ``.npy`` header, then its data, all zeros."""
    header = npy_header(shape, dtype)
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    assert nbytes % ZERO_CHUNK == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    crc, block = zlib.crc32(header), bytes(ZERO_CHUNK)
    for _ in range(nbytes // ZERO_CHUNK):
        crc = zlib.crc32(block, crc)
    return (
        name,
        head + zeros_deflate(nbytes // ZERO_CHUNK),
        zipfile.ZIP_DEFLATED,
        crc,
        len(header) + nbytes,
        0,
    )


SMALL_X = np.zeros((8, 4, 4), np.uint8)
SMALL_Y = np.arange(8) % 2
GIB3 = 201 * ZERO_CHUNK  # 3.14 GiB


@functools.lru_cache
def labels_bomb() -> bytes:
    """3.3 MB: y_train is 3.14 GiB of int64 zeros, deflated."""
    return zip_bytes([npy_member("x_train.npy", SMALL_X), zero_bomb("y_train.npy", (GIB3 // 8,), "<i8")])


@functools.lru_cache
def images_bomb() -> bytes:
    """3.3 MB: x_train is 3.14 GiB of uint8 zeros, deflated."""
    return zip_bytes(
        [zero_bomb("x_train.npy", (GIB3 // 64, 8, 8), "|u1"), npy_member("y_train.npy", SMALL_Y)]
    )


def small_labels_bomb() -> bytes:
    """3 KB: y_train's header claims 400 million labels (3.2 GB), the zip header claims they are there,
    the deflate stream holds 3 MB of them."""
    header = npy_header((400_000_000,))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = c.compress(header + bytes(3 << 20)) + c.flush()
    return zip_bytes(
        [npy_member("x_train.npy", SMALL_X),
         ("y_train.npy", payload, zipfile.ZIP_DEFLATED, 0, len(header) + 400_000_000 * 8, 0)]
    )  # fmt: skip


@functools.lru_cache
def trailing_bomb() -> bytes:
    """3.3 MB: y_train holds its 8 labels, then 3.14 GiB of zeros the header does not mention."""
    buf = io.BytesIO()
    np.save(buf, SMALL_Y)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = c.compress(buf.getvalue()) + c.flush(zlib.Z_FULL_FLUSH) + zeros_deflate(201)
    member = ("y_train.npy", payload, zipfile.ZIP_DEFLATED, 0, len(buf.getvalue()) + GIB3, 0)
    return zip_bytes([npy_member("x_train.npy", SMALL_X), member])


def huge_shape() -> bytes:
    """200 bytes: x_train's header claims shape (10**12, 28, 28) of float64; no data follows."""
    header = npy_header((10**12, 28, 28), "<f8")
    return zip_bytes(
        [("x_train.npy", header, zipfile.ZIP_STORED, zlib.crc32(header), len(header), 0),
         npy_member("y_train.npy", SMALL_Y)]
    )  # fmt: skip


def with_method(method: int, flags: int = 0) -> bytes:
    x = npy_member("x_train.npy", SMALL_X)
    return zip_bytes([(x[0], x[1], method, x[3], x[4], flags), npy_member("y_train.npy", SMALL_Y)])


def corrupt_deflate() -> bytes:
    x = npy_member("x_train.npy", SMALL_X)
    junk = b"\xff" * 200
    return zip_bytes([(x[0], junk, zipfile.ZIP_DEFLATED, x[3], x[4], 0), npy_member("y_train.npy", SMALL_Y)])


def nested_zip() -> bytes:
    inner = npz_bytes(x_train=SMALL_X, y_train=SMALL_Y)
    nested = ("inner.npz", inner, zipfile.ZIP_STORED, zlib.crc32(inner), len(inner), 0)
    return zip_bytes([npy_member("x_train.npy", SMALL_X), npy_member("y_train.npy", SMALL_Y), nested])


def path_member() -> bytes:
    return zip_bytes([npy_member("x_train.npy", SMALL_X), npy_member("../y_train.npy", SMALL_Y)])


def duplicate_member() -> bytes:
    return zip_bytes(
        [npy_member("x_train.npy", SMALL_X), npy_member("y_train.npy", SMALL_Y),
         npy_member("y_train.npy", SMALL_Y + 5)]
    )  # fmt: skip


def many_members() -> bytes:
    return zip_bytes(
        [npy_member("x_train.npy", SMALL_X), npy_member("y_train.npy", SMALL_Y)]
        + [npy_member(f"extra_{i}.npy", np.zeros(1)) for i in range(200)]
    )


# (file, the array named in the 422, words in its message)
BOMBS: dict[str, tuple[Any, str, str]] = {
    "labels deflate bomb": (labels_bomb, "y_train", "max_upload_ratio"),
    "images deflate bomb": (images_bomb, "x_train", "max_upload_ratio"),
    "3 KB labels bomb": (small_labels_bomb, "y_train", "max_upload_ratio"),
    "huge npy shape": (huge_shape, "x_train", "claims shape (1000000000000, 28, 28)"),
    "data past the header's shape": (trailing_bomb, "y_train", "holds more data than its header's shape"),
}
ARCHIVE_RULES: dict[str, tuple[Any, str, str]] = {
    "bzip2 member": (lambda: with_method(zipfile.ZIP_BZIP2), "x_train", "only stored or deflate"),
    "lzma member": (lambda: with_method(zipfile.ZIP_LZMA), "x_train", "only stored or deflate"),
    "encrypted member": (lambda: with_method(zipfile.ZIP_STORED, flags=1), "x_train", "encrypted"),
    "nested zip": (nested_zip, "<file>", "only NAME.npy arrays"),
    "corrupt deflate data": (corrupt_deflate, "x_train", "not a readable numpy array"),
    "member with a path": (path_member, "<file>", "no folders"),
    "duplicate member": (duplicate_member, "y_train", "appears twice"),
    "too many members": (many_members, "<file>", "at most 64"),
}


def matches(detail: list[dict[str, Any]], array: str, needle: str) -> bool:
    loc = ["body", "file"] if array == "<file>" else ["body", "file", array]
    return any(i["loc"] == loc and needle in i["msg"] for i in detail)


# ------------------------------------------------------------------------------- the real server
def peak_rss(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    db = tmp_path / "hh.db"
    store = SQLiteStore(db)
    _, secret = store.create_token("mallory")
    store.close()
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "serve", "--store", f"sqlite:///{db}", "--port", str(port)],
        cwd=tmp_path,
        env=cli_env(HYPERHIVE_HOME=str(tmp_path / "home")),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", bearer(secret), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_bombs_are_refused_by_a_live_server_with_flat_memory(
    server: tuple[str, dict[str, str], int], tmp_path: Path
) -> None:
    url, auth, pid = server
    with httpx.Client(base_url=url, headers=auth, timeout=120) as http:

        def post(data: bytes) -> httpx.Response:
            return http.post("/api/datasets", files={"file": ("d.npz", data)})

        # warm up every code path with a good upload before the baseline
        assert post(good_npz()).status_code == 201
        baseline = peak_rss(pid)
        for case, (build, array, needle) in {**BOMBS, **ARCHIVE_RULES}.items():
            data = build()
            r = post(data)
            assert r.status_code == 422, (case, r.text)
            assert matches(r.json()["detail"], array, needle), (case, r.json())
            assert peak_rss(pid) - baseline < RSS_GROWTH_LIMIT, (case, peak_rss(pid) - baseline)
        assert len(http.get("/api/datasets").json()) == 1  # only the good one
        assert list((tmp_path / "home" / "uploads").iterdir()) == []
        growth = peak_rss(pid) - baseline
    assert growth < RSS_GROWTH_LIMIT, f"peak RSS grew by {growth / (1 << 20):.0f} MiB"


def test_small_bomb_sizes_are_what_the_tests_claim() -> None:
    assert len(small_labels_bomb()) < 4096 and len(huge_shape()) < 1024
    assert len(labels_bomb()) < 4 << 20  # 3.3 MB for 3.14 GiB


# ----------------------------------------------------------------------------- the worker side
WORKER_PROBE = """
import sys
from pathlib import Path
from hyperhive.workers.datasets import DatasetError, load_dataset

def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

before = hwm()
try:
    load_dataset({"path": sys.argv[1]})
except DatasetError as exc:
    print("REFUSED", exc)
print("GROWTH", hwm() - before)
"""


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BOMBS))
def test_a_worker_refuses_bombs_before_loading_them(tmp_path: Path, case: str) -> None:
    build, array, needle = BOMBS[case]
    path = tmp_path / "bomb.npz"
    path.write_bytes(build())
    r = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE, str(path)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert f"REFUSED dataset file {path}: {array}:" in r.stdout and needle in r.stdout, r.stdout
    growth = int(r.stdout.rsplit("GROWTH", 1)[1])
    assert growth < RSS_GROWTH_LIMIT, f"worker peak RSS grew by {growth / (1 << 20):.0f} MiB"


# --------------------------------------------------------------------- limits set by the operator
@pytest.mark.parametrize("case", sorted(ARCHIVE_RULES))
def test_archive_rules(tmp_path: Path, case: str) -> None:
    build, array, needle = ARCHIVE_RULES[case]
    path = tmp_path / "a.npz"
    path.write_bytes(build())
    with pytest.raises(DatasetError) as info:
        inspect_npz(path)
    assert any(k == array and needle in m for k, m in info.value.errors), info.value.errors


def test_compression_ratio_is_measured_while_reading(tmp_path: Path) -> None:
    """A legitimate but very compressible member passes under the default ratio and is refused under a
    lower one; the refusal names the setting."""
    path = tmp_path / "z.npz"
    x = np.zeros((64, 64, 64), np.uint8)  # 256 KiB of zeros per 16 rows
    x[:, 0, 0] = np.arange(64)
    np.savez_compressed(path, x_train=np.tile(x, (8, 1, 1)), y_train=np.arange(512) % 2)
    assert inspect_npz(path)["splits"] == {"train": 512}
    with pytest.raises(DatasetError, match=r"x_train.*more than 20x.*max_upload_ratio"):
        inspect_npz(path, Limits(max_ratio=20))


def upload(client: Any, headers: dict[str, str], data: bytes) -> Any:
    return client.post("/api/datasets", files={"file": ("d.npz", data)}, headers=headers)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], SQLiteStore, Settings]]:
    settings = Settings(  # type: ignore[call-arg]
        store=f"sqlite:///{tmp_path / 'hh.db'}",
        home=tmp_path / "home",
        max_dataset_bytes=1 << 20,
        max_dataset_labels=1000,
        max_dataset_classes=50,
    )
    store = SQLiteStore(tmp_path / "hh.db")
    _, secret = store.create_token("alice")
    yield make_client(settings, store), bearer(secret), store, settings
    store.close()


@pytest.mark.parametrize(
    ("arrays", "array", "needle"),
    [
        (  # 300 uint8 images of 32x32x3: 0.9 MB as uploaded, 3.5 MiB as float32
            {"x_train": np.zeros((300, 32, 32, 3), np.uint8), "y_train": np.arange(300) % 2},
            "<file>",
            "takes 3.52 MiB as float32, over the 1 MiB a worker is sent (max_dataset_bytes)",
        ),
        (
            {"x_train": np.zeros((1001, 2, 2), np.uint8), "y_train": np.arange(1001) % 2},
            "y_train",
            "over 1000 labels; refused (max_dataset_labels)",
        ),
        (
            {"x_train": np.zeros((60, 2, 2), np.uint8), "y_train": np.arange(60)},
            "y_train",
            "labels go up to 59; at most 50 classes",
        ),
        (
            {"x_train": np.zeros((4, 2, 2), np.uint8), "y_train": np.eye(60)[[0, 1, 2, 3]]},
            "y_train",
            "has 60 one-hot columns; at most 50 classes",
        ),
    ],
)
def test_operator_limits_refuse_uploads(
    app: tuple[Any, dict[str, str], SQLiteStore, Settings], arrays: dict[str, Any], array: str, needle: str
) -> None:
    client, auth, store, _ = app
    r = upload(client, auth, npz_bytes(**arrays))
    assert r.status_code == 422 and matches(r.json()["detail"], array, needle), r.text
    assert store.list_datasets() == []


def test_decoded_size_is_recorded_and_checked_against_image_size_at_submit(
    app: tuple[Any, dict[str, str], SQLiteStore, Settings],
) -> None:
    client, auth, store, _ = app
    r = upload(
        client, auth, npz_bytes(x_train=np.zeros((100, 8, 8, 1), np.uint8), y_train=np.arange(100) % 2)
    )
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert dataset["meta"]["decoded_bytes"] == 100 * (8 * 8 * 4 + 8)

    def submit(image_size: list[int] | None) -> Any:
        extra = f", image_size: {image_size}" if image_size else ""
        doc = LECTURE.replace("dataset: {name: digits}", f"dataset: {{upload: {dataset['id']}{extra}}}")
        return client.post("/api/searches", content=doc, headers={**auth, "content-type": "application/yaml"})

    assert submit(None).status_code == 201
    assert submit([32, 32]).status_code == 201  # 100 * 32*32*4 = 0.4 MB
    r = submit([64, 64])  # 100 * 64*64*4 = 1.6 MB
    assert r.status_code == 422, r.text
    [item] = r.json()["detail"]
    assert item["path"] == "dataset.image_size"
    assert (
        "resized to [64, 64] takes 1.56 MiB as float32" in item["msg"] and "max_dataset_bytes" in item["msg"]
    )
    assert len(store.list_searches()) == 2


def test_limits_are_operator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Limits() == Limits.from_settings(Settings())  # type: ignore[call-arg]
    assert Limits().max_ratio == 1000 and Limits().max_decoded_bytes == 2 << 30
    monkeypatch.setenv("HYPERHIVE_MAX_UPLOAD_RATIO", "50")
    monkeypatch.setenv("HYPERHIVE_MAX_DATASET_BYTES", str(5 << 30))
    monkeypatch.setenv("HYPERHIVE_MAX_DATASET_CLASSES", "20000")
    limits = Limits.from_env()
    assert (limits.max_ratio, limits.max_decoded_bytes, limits.max_classes) == (50, 5 << 30, 20000)


def test_a_dataset_too_large_as_float32_is_refused_before_its_data_is_read(tmp_path: Path) -> None:
    """x_train's header says 300 x 32x32x3 uint8 (3.5 MiB as float32) but its data is missing: the
    size limit answers from the header, without streaming anything."""
    header = npy_header((300, 32, 32, 3), "|u1")
    x = ("x_train.npy", header, zipfile.ZIP_STORED, zlib.crc32(header), len(header), 0)
    path = tmp_path / "big.npz"
    path.write_bytes(zip_bytes([x, npy_member("y_train.npy", np.arange(300) % 2)]))
    with pytest.raises(DatasetError, match=r"takes 3.52 MiB as float32.*max_dataset_bytes"):
        inspect_npz(path, Limits(max_decoded_bytes=1 << 20))
    with pytest.raises(DatasetError, match="x_train: its data is cut short"):
        inspect_npz(path)
