"""Dataset uploads: multipart and raw, stored in chunks, size limits, bad files, temp files removed."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from servicekit import EXAMPLES, Users, good_npz, make_client, npz_bytes

from hyperhive.npz import DatasetError, inspect_npz
from hyperhive.settings import Settings
from hyperhive.store.base import Store


def upload(client: Any, headers: dict[str, str], data: bytes, name: str | None = None) -> Any:
    form = {"name": name} if name else None
    return client.post("/api/datasets", files={"file": ("digits.npz", data)}, data=form, headers=headers)


def test_multipart_upload_is_stored_and_described(
    client: Any, users: Users, store: Store, settings: Settings
) -> None:
    data = good_npz(n=30, classes=3)
    r = upload(client, users.alice, data, name="my digits")
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["name"] == "my digits" and d["owner"] == "alice" and d["size"] == len(data)
    assert d["sha256"] == hashlib.sha256(data).hexdigest()
    assert d["meta"]["splits"] == {"train": 30, "val": 4}
    assert d["meta"]["input_shape"] == [8, 8, 1] and d["meta"]["classes"] == 3
    assert b"".join(store.read_dataset(d["id"])) == data
    assert list((settings.home / "uploads").iterdir()) == []  # the temporary file is gone
    assert client.get("/api/datasets", headers=users.alice).json()[0]["id"] == d["id"]
    assert client.get(f"/api/datasets/{d['id']}", headers=users.alice).json() == d


def test_raw_upload_with_name_query(client: Any, users: Users) -> None:
    r = client.post(
        "/api/datasets?name=raw.npz",
        content=good_npz(),
        headers={**users.alice, "content-type": "application/octet-stream"},
    )
    assert r.status_code == 201 and r.json()["name"] == "raw.npz"


def test_big_upload_is_stored_in_4mib_chunks(client: Any, users: Users, store: Store) -> None:
    x = np.zeros((2000, 32, 32, 3), dtype=np.float32)  # ~24 MB
    data = npz_bytes(x_train=x, y_train=np.arange(2000) % 10)
    r = upload(client, users.alice, data)
    assert r.status_code == 201, r.text
    chunks = list(store.read_dataset(r.json()["id"]))
    assert len(chunks) == -(-len(data) // (4 << 20)) and all(len(c) == 4 << 20 for c in chunks[:-1])
    assert b"".join(chunks) == data


def test_upload_size_limit_is_413(settings: Settings, store: Store, users: Users) -> None:
    client = make_client(settings.model_copy(update={"max_upload_bytes": 4096}), store)
    rng = np.random.default_rng(1)
    data = npz_bytes(x_train=rng.random((20, 8, 8)), y_train=np.arange(20) % 2)
    assert len(data) > 4096
    r = upload(client, users.alice, data)
    assert r.status_code == 413

    def stream() -> Any:  # chunked, no Content-Length: stopped while streaming
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    r = client.post(
        "/api/datasets", content=stream(), headers={**users.alice, "content-type": "application/octet-stream"}
    )
    assert r.status_code == 413
    assert store.list_datasets() == []
    assert list((settings.home / "uploads").iterdir()) == []
    # the search body limit does not apply to uploads
    small = make_client(settings.model_copy(update={"max_request_bytes": 1024}), store)
    assert upload(small, users.alice, good_npz()).status_code == 201


def _truncated() -> bytes:
    """An npz whose x_train.npy header promises more data than it holds."""
    whole = io.BytesIO()
    np.save(whole, np.zeros((6, 8, 8), np.float32))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x_train.npy", whole.getvalue()[:-100])
        y = io.BytesIO()
        np.save(y, np.array([0, 1, 2, 0, 1, 2]))
        zf.writestr("y_train.npy", y.getvalue())
    return buf.getvalue()


rng = np.random.default_rng(2)
X = rng.random((6, 8, 8), dtype=np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])
BAD_FILES: dict[str, tuple[bytes, str, str]] = {
    "not a zip": (b"hello, not a zip file at all", "file", "not a .npz"),
    "missing y_train": (npz_bytes(x_train=X), "y_train", "missing"),
    "lengths differ": (npz_bytes(x_train=X, y_train=Y[:5]), "y_train", "5 labels for 6 images"),
    "2-d images": (npz_bytes(x_train=X.reshape(6, 64), y_train=Y), "x_train", "(n, h, w)"),
    "strings": (
        npz_bytes(x_train=np.array([["a"] * 8] * 8).reshape(1, 8, 8).repeat(6, 0), y_train=Y),
        "x_train",
        "numbers",
    ),
    "pickled objects": (
        npz_bytes(x_train=np.array([object()] * 6, dtype=object), y_train=Y),
        "x_train",
        "numbers",
    ),
    "val without y": (npz_bytes(x_train=X, y_train=Y, x_val=X), "x_val", "together"),
    "val shape differs": (npz_bytes(x_train=X, y_train=Y, x_val=X[:, :4], y_val=Y), "x_val", "x_train's"),
    "negative labels": (npz_bytes(x_train=X, y_train=-Y), "y_train", ">= 0"),
    "bad one-hot": (npz_bytes(x_train=X, y_train=np.full((6, 3), 0.5)), "y_train", "one-hot"),
    "one class": (npz_bytes(x_train=X, y_train=np.zeros(6, int)), "y_train", "2 classes"),
    "truncated array": (_truncated(), "x_train", "cut short"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_422_naming_the_array(
    client: Any, users: Users, store: Store, settings: Settings, case: str
) -> None:
    data, array, needle = BAD_FILES[case]
    r = upload(client, users.alice, data)
    assert r.status_code == 422, r.text
    items = r.json()["detail"]
    assert any(i["loc"][:2] == ["body", "file"] for i in items)
    if array != "file":
        assert any(i["loc"][2:] == [array] and needle in i["msg"] for i in items), items
    else:
        assert items[0]["loc"] == ["body", "file"] and needle in items[0]["msg"]
    assert store.list_datasets() == []
    assert list((settings.home / "uploads").iterdir()) == []


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (
            b'--xyz\r\nContent-Disposition: form-data; name="other"\r\n\r\nv\r\n--xyz--\r\n',
            "multipart/form-data; boundary=xyz",
            422,
        ),
        (b"garbage", "multipart/form-data", 422),
        (b"{}", "application/json", 415),
    ],
)
def test_malformed_upload_requests(client: Any, users: Users, body: bytes, ctype: str, status: int) -> None:
    r = client.post("/api/datasets", content=body, headers={**users.alice, "content-type": ctype})
    assert r.status_code == status, r.text


def test_inspect_npz_one_hot_and_test_split(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    onehot = np.eye(4)[np.arange(8) % 4]
    p.write_bytes(
        npz_bytes(
            x_train=np.ones((8, 5, 5, 3), np.uint8),
            y_train=onehot,
            x_test=np.ones((2, 5, 5, 3), np.uint8),
            y_test=onehot[:2],
            extra=np.arange(3),
        )
    )
    meta = inspect_npz(p)
    assert meta == {
        "splits": {"train": 8, "test": 2},
        "ignored": ["extra"],
        "dtype": "uint8",
        "input_shape": [5, 5, 3],
        "classes": 4,
        "label_format": "one_hot",
        "decoded_bytes": 10 * (5 * 5 * 3 * 4 + 8),  # float32 images, int64 labels
    }
    p.write_bytes(b"")
    with pytest.raises(DatasetError):
        inspect_npz(p)


def test_deleting_a_dataset_an_unfinished_search_reads_is_409_naming_it(
    client: Any, users: Users, store: Store
) -> None:
    """A delete under a pending or running search would fail its trials one by one: refused with 409
    naming the search, the dataset kept; once the search is final the delete goes through."""
    dataset_id = upload(client, users.alice, good_npz()).json()["id"]
    lecture = yaml.safe_load((EXAMPLES / "lecture-cnn.yaml").read_text())
    lecture.update(name="reads-my-upload", dataset={"upload": dataset_id})
    r = client.post("/api/searches", json=lecture, headers=users.alice)
    assert r.status_code == 201, r.text
    search_id = r.json()["id"]

    r = client.delete(f"/api/datasets/{dataset_id}", headers=users.alice)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert search_id in detail and "reads-my-upload" in detail and "pending" in detail
    assert store.get_dataset(dataset_id).id == dataset_id
    assert b"".join(store.read_dataset(dataset_id)) == good_npz()

    assert client.post(f"/api/searches/{search_id}/cancel", headers=users.alice).status_code == 200
    assert client.delete(f"/api/datasets/{dataset_id}", headers=users.alice).status_code == 204
    assert client.get(f"/api/datasets/{dataset_id}", headers=users.alice).status_code == 404


def test_deleting_a_dataset_no_search_reads_is_204(client: Any, users: Users) -> None:
    dataset_id = upload(client, users.alice, good_npz()).json()["id"]
    assert client.delete(f"/api/datasets/{dataset_id}", headers=users.bob).status_code == 404
    assert client.delete(f"/api/datasets/{dataset_id}", headers=users.alice).status_code == 204
