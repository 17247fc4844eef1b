"""The bad-input corpus for the formats the API takes besides search documents: Hyperas scripts
(``text/x-python``) and dataset uploads (``.npz``, multipart or raw). Each case is one request against
one app and store: it must be a 4xx (never a 5xx or a hang) whose message names the field, and the
store must be byte-for-byte what it was (searches, trials, datasets and their chunks, quotas).

Search documents have their own corpus (tests/spaces, test_service_searches.py); zip bombs and
decoded-size limits are in tests/security/test_upload_bombs.py; truncated arrays and missing or
mismatched arrays in test_service_datasets.py."""

from __future__ import annotations

import io
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from servicekit import bearer, good_npz, make_client, npz_bytes

from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

pytestmark = pytest.mark.timeout(120)

TINY = (Path(__file__).resolve().parents[1] / "hyperas" / "scripts" / "tiny.py.txt").read_text()
MAX_REQUEST = 64 * 1024
STORED_TABLES = ("searches", "trials", "trial_history", "datasets", "dataset_chunks", "quotas")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("corpus")
    db = tmp / "hh.db"
    store = SQLiteStore(db)
    settings = Settings(
        store=f"sqlite:///{db}", home=tmp / "home", max_request_bytes=MAX_REQUEST, max_upload_bytes=1 << 20
    )  # type: ignore[call-arg]
    client = make_client(settings, store)
    admin = bearer(store.create_token("root", admin=True)[1])
    # something stored already, so that "unchanged" covers existing rows too
    r = client.post(
        "/api/searches", content=TINY.encode(), headers={**admin, "content-type": "text/x-python"}
    )
    assert r.status_code == 201, r.text
    r = client.post("/api/datasets", files={"file": ("d.npz", good_npz())}, headers=admin)
    assert r.status_code == 201, r.text
    yield {"client": client, "admin": admin, "db": db, "home": settings.home}
    store.close()


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row that a request could change (tokens' last-use times aside)."""
    with sqlite3.connect(db) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in STORED_TABLES}


def refused(world: dict[str, Any], method: str, url: str, **kw: Any) -> tuple[int, Any]:
    before = snapshot(world["db"])
    r: Any = world["client"].request(method, url, **kw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    assert snapshot(world["db"]) == before, "a refused request changed the store"
    uploads = world["home"] / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == [], "a refused upload left a file behind"
    return r.status_code, r.json()["detail"]


def paths(detail: Any) -> set[str]:
    """The fields a 4xx names: ``path`` (or the joined ``loc``) of each item."""
    if isinstance(detail, str):
        return set()
    return {d.get("path") or ".".join(str(p) for p in d["loc"][1:]) for d in detail}


def messages(detail: Any) -> str:
    return detail if isinstance(detail, str) else " | ".join(d["msg"] for d in detail)


# ---------------------------------------------------------------------------------- Hyperas scripts
def with_template(template: str) -> str:
    return TINY.replace("{{uniform(-1, 1)}}", template)


SCRIPTS: dict[str, tuple[bytes, str, str]] = {
    # name: (body, field named, words in the message)
    "binary junk": (bytes(range(256)) * 8, "script", "UTF-8"),
    "latin-1 text": ("a = 1  # café\n".encode("latin-1") + TINY.encode(), "script", "UTF-8"),
    "utf-16 with BOM": (TINY.encode("utf-16"), "script", "UTF-8"),
    "NUL byte": (TINY.replace("import numpy", "import\x00numpy").encode(), "script", ""),
    "empty": (b"", "script", ""),
    "no template": (b"print('hello')\n", "script", ""),
    "syntax error": (TINY.replace("return {", "return {{").encode(), "script", "line"),
    "nested parentheses": (("x = " + "(" * 300 + "1" + ")" * 300 + "\n" + TINY).encode(), "script", ""),
    "nested unary minus": (("x = " + "-" * 50_000 + "1\n" + TINY).encode(), "script", ""),
    "nested blocks": (
        ("".join(" " * i + "if x:\n" for i in range(120)) + " " * 120 + "pass\n" + TINY).encode(),
        "script",
        "",
    ),
    "long attribute chain": (("x = a" + ".b" * 20_000 + "\n" + TINY).encode(), "script", ""),
    "nested template": (with_template("{{uniform({{uniform(0, 1)}}, 2)}}").encode(), "script", ""),
    "unclosed template": (with_template("{{uniform(-1, 1)").encode(), "script", ""),
    "empty template": (with_template("{{}}").encode(), "script", ""),
    "not a call": (with_template("{{3}}").encode(), "script", "distribution"),
    "unknown distribution": (with_template("{{gaussian(0, 1)}}").encode(), "script", "gaussian"),
    "string bounds": (with_template("{{uniform('a', 1)}}").encode(), "script", "number"),
    "one bound": (with_template("{{uniform(1)}}").encode(), "script", "uniform"),
    "infinite bound": (with_template("{{uniform(0, 1e400)}}").encode(), "script", "finite"),
    # a template that parses but whose values are wrong is named by its parameter (``a = {{...}}``)
    "bounds reversed": (with_template("{{uniform(1, -1)}}").encode(), "params.a", "low < high"),
    "negative q": (with_template("{{quniform(0, 1, -1)}}").encode(), "params.a", ""),
    "huge loguniform": (with_template("{{loguniform(0, 1000)}}").encode(), "script", "700"),
    "empty choice": (with_template("{{choice([])}}").encode(), "script", "non-empty"),
    "choice of no list": (with_template("{{choice()}}").encode(), "script", "choice"),
    "star args": (with_template("{{uniform(*bounds)}}").encode(), "script", "*args"),
    "expression bound": (with_template("{{uniform(__import__('os').getpid(), 1)}}").encode(), "script", ""),
    "nested literal bound": (
        with_template("{{uniform(" + "[" * 200 + "]" * 200 + ", 1)}}").encode(),
        "script",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_a_bad_script_is_a_4xx_naming_the_script_and_stores_nothing(world: dict[str, Any], case: str) -> None:
    body, field, words = SCRIPTS[case]
    headers = {**world["admin"], "content-type": "text/x-python"}
    status, detail = refused(
        world, "POST", "/api/searches", content=body, params={"max_trials": 2}, headers=headers
    )
    assert status == 422, detail
    assert field in paths(detail), detail
    assert words in messages(detail), detail


SCRIPT_QUERIES: dict[str, tuple[dict[str, Any], str]] = {
    "max_trials not a number": ({"max_trials": "many"}, "max_trials"),
    "max_trials zero": ({"max_trials": 0}, "max_trials"),
    "max_trials huge": ({"max_trials": 10**12}, "max_trials"),
    "max_trials overflows": ({"max_trials": "9" * 400}, "max_trials"),
    "seed not a number": ({"seed": "1.5"}, "seed"),
    "mode sideways": ({"mode": "sideways"}, "objective.mode"),
    "unknown algorithm": ({"algorithm": "bogus"}, "algorithm"),
    "unknown field": ({"colour": "red"}, "colour"),
    "name too long": ({"name": "n" * 5000}, "name"),
}


@pytest.mark.parametrize("case", sorted(SCRIPT_QUERIES))
def test_bad_script_fields_are_a_4xx_naming_the_field(world: dict[str, Any], case: str) -> None:
    query, field = SCRIPT_QUERIES[case]
    headers = {**world["admin"], "content-type": "text/x-python"}
    status, detail = refused(
        world, "POST", "/api/searches", content=TINY.encode(), params=query, headers=headers
    )
    assert status == 422, detail
    assert field in paths(detail), detail


def test_a_huge_script_is_413_before_it_is_read(world: dict[str, Any]) -> None:
    body = (TINY + "#" * (MAX_REQUEST + 10)).encode()
    headers = {**world["admin"], "content-type": "text/x-python"}
    status, detail = refused(world, "POST", "/api/searches", content=body, headers=headers)
    assert status == 413 and str(MAX_REQUEST) in detail

    def stream() -> Iterator[bytes]:  # no Content-Length: stopped while it streams in
        yield TINY.encode()
        for _ in range(MAX_REQUEST // 1000 + 2):
            yield b"#" * 1000

    status, detail = refused(world, "POST", "/api/searches", content=stream(), headers=headers)
    assert status == 413 and str(MAX_REQUEST) in detail


# ---------------------------------------------------------------------------------- uploads
def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


X = np.random.default_rng(3).random((6, 8, 8), dtype=np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])
GOOD = good_npz()


def _crc_broken() -> bytes:
    data = bytearray(zipped({"x_train.npy": npy(X), "y_train.npy": npy(Y)}))
    start = data.index(b"\x93NUMPY") + 200  # a byte of x_train's data: the stored CRC no longer matches
    data[start] ^= 0xFF
    return bytes(data)


def _encrypted() -> bytes:
    """x_train's central-directory entry says it is encrypted (general-purpose flag bit 0)."""
    data = bytearray(zipped({"x_train.npy": npy(X), "y_train.npy": npy(Y)}))
    data[data.index(b"PK\x01\x02") + 8] |= 1
    return bytes(data)


def _huge_npy_header() -> bytes:
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (6, 8, 8), }" + b" " * 200_000 + b"\n"
    return zipped(
        {"x_train.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header, "y_train.npy": npy(Y)}
    )


UPLOADS: dict[str, tuple[bytes, str]] = {
    # name: (file bytes, field named: file or file.<array>)
    "empty file": (b"", "file"),
    "zip magic only": (b"PK\x03\x04", "file"),
    "cut in half": (GOOD[: len(GOOD) // 2], "file"),
    "last byte missing": (GOOD[:-1], "file"),
    "gzip, not zip": (zlib.compress(GOOD), "file"),
    "npy, not npz": (npy(X), "file"),
    "empty zip": (zipped({}), "file"),
    "member with wrong magic": (
        zipped({"x_train.npy": b"NOTNUMPY" + bytes(600), "y_train.npy": npy(Y)}),
        "x_train",
    ),
    "member is text": (zipped({"x_train.npy": b"hello", "y_train.npy": npy(Y)}), "x_train"),
    "npy version 9": (
        zipped({"x_train.npy": b"\x93NUMPY\x09\x00" + bytes(100), "y_train.npy": npy(Y)}),
        "x_train",
    ),
    "huge npy header": (_huge_npy_header(), "x_train"),
    "shape says negative": (
        zipped({"x_train.npy": npy(X).replace(b"(6, 8, 8)", b"(-6, 8, 8)"), "y_train.npy": npy(Y)}),
        "x_train",
    ),
    "crc mismatch": (_crc_broken(), "x_train"),
    "nan images": (npz_bytes(x_train=np.where(X > 0.5, np.nan, X), y_train=Y), "x_train"),
    "infinite validation images": (
        npz_bytes(x_train=X, y_train=Y, x_val=np.full_like(X, np.inf), y_val=Y),
        "x_val",
    ),
    "float labels": (npz_bytes(x_train=X, y_train=Y + 0.5), "y_train"),
    "complex images": (npz_bytes(x_train=X.astype(np.complex64), y_train=Y), "x_train"),
    "no images": (npz_bytes(x_train=X[:0], y_train=Y[:0]), "x_train"),
    "encrypted member": (_encrypted(), "x_train"),
}


def upload_items(detail: Any) -> set[str]:
    return {".".join(str(p) for p in d["loc"][1:]) for d in detail}


@pytest.mark.parametrize("case", sorted(UPLOADS))
@pytest.mark.parametrize("how", ["multipart", "raw"])
def test_a_bad_upload_is_422_naming_the_file_or_array_and_stores_nothing(
    world: dict[str, Any], case: str, how: str
) -> None:
    data, field = UPLOADS[case]
    if how == "multipart":
        kw: dict[str, Any] = {"files": {"file": ("d.npz", data)}, "headers": world["admin"]}
    else:
        headers = {**world["admin"], "content-type": "application/octet-stream"}
        kw = {"content": data, "headers": headers, "params": {"name": "d.npz"}}
    status, detail = refused(world, "POST", "/api/datasets", **kw)
    assert status == 422, detail
    named = upload_items(detail)
    want = "file" if field == "file" else f"file.{field}"
    assert want in named or (field == "file" and any(n.startswith("file") for n in named)), detail


UPLOAD_REQUESTS: dict[str, tuple[dict[str, Any], int]] = {
    "two file parts": ({"files": [("file", ("a.npz", GOOD)), ("file", ("b.npz", GOOD))]}, 422),
    "file part named otherwise": ({"files": {"data": ("d.npz", GOOD)}}, 413),  # a 4 KiB text field
    "text/plain body": ({"content": GOOD, "headers": {"content-type": "text/plain"}}, 415),
    "no content type": ({"content": GOOD, "headers": {"content-type": ""}}, 415),
    "multipart without boundary": (
        {"content": GOOD, "headers": {"content-type": "multipart/form-data"}},
        422,
    ),
    "over the upload limit": (
        {"content": GOOD + bytes(2 << 20), "headers": {"content-type": "application/octet-stream"}},
        413,
    ),
}


@pytest.mark.parametrize("case", sorted(UPLOAD_REQUESTS))
def test_malformed_upload_requests_are_4xx_and_store_nothing(world: dict[str, Any], case: str) -> None:
    kw, expected = UPLOAD_REQUESTS[case]
    kw = {**kw, "headers": {**world["admin"], **kw.get("headers", {})}}
    status, detail = refused(world, "POST", "/api/datasets", **kw)
    assert status == expected, detail
