"""The export file of ``hyperhive store export`` / ``import``: how searches, their trials and their
uploaded datasets are written to and read back from a stream, and how what is read is checked.

The file is JSON Lines, one record per line, read and written as a stream:

- ``{"format": "hyperhive-dataset/1", "dataset": {...}}`` then its bytes as
  ``{"format": "hyperhive-dataset-chunk/1", "dataset_id": ..., "seq": i, "data": "<base64>"}`` lines:
  an uploaded dataset a search's ``dataset.upload`` names (``--no-datasets`` leaves them out).
  Datasets come before the searches that use them.
- ``{"format": "hyperhive-export/1", "search": {...}, "trials": [...]}``: one search and all its
  trials (:meth:`Store.export_search`); import keeps every id and field, and turns running trials
  into queued ones (their workers belong to the other store).

API tokens are not exported: they are credentials of one deployment; create new ones on the target.

An import trusts nothing in the file: each search is checked like a submitted one (its document
validated again, its trials' configurations checked against its space: :mod:`hyperhive.store.vetting`),
and what it brings in is owned by ``--owner NAME`` or, by default, by nobody (only admin tokens see it).
``--keep-owners`` keeps the owners the file records: for a file exported from this same deployment
(moving a store between SQLite and MongoDB).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from hyperhive.errors import Conflict, NotFound
from hyperhive.models import DatasetInfo
from hyperhive.store.base import EXPORT_FORMAT, Store
from hyperhive.store.vetting import OwnerPolicy

__all__ = [
    "CHUNK_FORMAT",
    "DATASET_FORMAT",
    "EXPORT_FORMAT",
    "TransferSummary",
    "all_search_ids",
    "export_searches",
    "import_records",
    "uploaded_dataset_id",
]

DATASET_FORMAT = "hyperhive-dataset/1"
CHUNK_FORMAT = "hyperhive-dataset-chunk/1"
PAGE = 200


@dataclass
class TransferSummary:
    """What an export or an import moved."""

    searches: int = 0
    trials: int = 0
    datasets: int = 0
    dataset_bytes: int = 0
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{_n(self.searches, 'search')} ({_n(self.trials, 'trial')}), {_n(self.datasets, 'dataset')}"
        if self.dataset_bytes:
            text += f" ({self.dataset_bytes / 1e6:.1f} MB)"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} already there: {', '.join(self.skipped)}"
        return text


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "es" if noun.endswith("h") else "s")


# ---------------------------------------------------------------------------------------------- export
def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"


def uploaded_dataset_id(document: dict[str, Any]) -> str | None:
    """The uploaded dataset a search document trains on (``dataset.upload``), if any."""
    dataset = document.get("dataset")
    upload = dataset.get("upload") if isinstance(dataset, dict) else None
    return upload if isinstance(upload, str) else None


def all_search_ids(store: Store) -> list[str]:
    """Every search id in the store, oldest first."""
    ids: list[str] = []
    while True:
        page = store.list_searches(limit=PAGE, offset=len(ids))
        ids.extend(s.id for s in page)
        if len(page) < PAGE:
            return ids[::-1]


def export_searches(
    store: Store, search_ids: Iterable[str], out: IO[str], *, datasets: bool = True
) -> TransferSummary:
    """Write the searches (and the uploaded datasets they use) to ``out`` as JSON Lines.
    :class:`~hyperhive.errors.NotFound` names the first search id that does not exist, before anything
    is written."""
    ids = list(dict.fromkeys(search_ids))
    searches = [store.get_search(sid) for sid in ids]
    summary = TransferSummary()
    if datasets:
        wanted = dict.fromkeys(d for s in searches if (d := uploaded_dataset_id(s.document)))
        for dataset_id in wanted:
            try:
                info = store.get_dataset(dataset_id)
            except NotFound:
                continue  # the search names a dataset this store does not hold: nothing to carry
            out.write(_dumps({"format": DATASET_FORMAT, "dataset": info.to_dict()}))
            for seq, chunk in enumerate(store.read_dataset(dataset_id)):
                data = base64.b64encode(chunk).decode("ascii")
                out.write(
                    _dumps({"format": CHUNK_FORMAT, "dataset_id": dataset_id, "seq": seq, "data": data})
                )
                summary.dataset_bytes += len(chunk)
            summary.datasets += 1
    for sid in ids:
        bundle = store.export_search(sid)
        out.write(_dumps(bundle))
        summary.searches += 1
        summary.trials += len(bundle["trials"])
    return summary


# ---------------------------------------------------------------------------------------------- import
class _Records:
    """The records of a JSON Lines stream, with one record of look-ahead and line numbers for errors."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.line = 0
        self._next: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any] | None:
        for text in self._lines:
            self.line += 1
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {self.line}: not JSON ({exc.msg})") from exc
            if not isinstance(record, dict) or "format" not in record:
                raise ValueError(f"line {self.line}: not a Hyperhive export record (no 'format')")
            return record
        return None

    def peek(self) -> dict[str, Any] | None:
        if self._next is None:
            self._next = self._read()
        return self._next

    def pop(self) -> dict[str, Any] | None:
        record = self.peek()
        self._next = None
        return record


def _chunks(records: _Records, dataset_id: str, digest: Any) -> Iterator[bytes]:
    """The chunk records of one dataset that follow its header, decoded and hashed as they go."""
    seq = 0
    while (
        (r := records.peek()) is not None
        and r["format"] == CHUNK_FORMAT
        and r.get("dataset_id") == dataset_id
    ):
        records.pop()
        if r.get("seq") != seq:
            raise ValueError(
                f"line {records.line}: chunk {r.get('seq')} of dataset {dataset_id}, expected {seq}"
            )
        data = base64.b64decode(r["data"], validate=True)
        digest.update(data)
        yield data
        seq += 1


def _import_dataset(
    store: Store, records: _Records, header: dict[str, Any], summary: TransferSummary, policy: OwnerPolicy
) -> None:
    d = header["dataset"]
    info = DatasetInfo(
        **{k: d[k] for k in ("id", "name", "owner", "size", "sha256", "created_at")}, meta=d["meta"]
    )
    info.owner = policy.owner_of(info.owner)
    line = records.line
    try:
        existing = store.get_dataset(info.id)
    except NotFound:
        existing = None
    digest = hashlib.sha256()
    if existing is not None:
        for _ in _chunks(records, info.id, digest):
            pass
        if existing.sha256 != info.sha256:
            raise Conflict(f"line {line}: dataset {info.id} exists in the target with different contents")
        summary.skipped.append(f"dataset {info.id}")
        return
    counted = _Counted(_chunks(records, info.id, digest))
    store.save_dataset(info, counted)
    if digest.hexdigest() != info.sha256 or counted.size != info.size:
        store.delete_dataset(info.id)
        raise ValueError(
            f"line {line}: dataset {info.id}'s bytes do not match its recorded size and sha256 "
            f"({counted.size} bytes, sha256 {digest.hexdigest()[:12]}...); it was not imported"
        )
    summary.datasets += 1
    summary.dataset_bytes += counted.size


class _Counted:
    """An iterable of chunks that counts the bytes it hands out."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk


def import_records(
    store: Store,
    lines: Iterable[str],
    *,
    skip_existing: bool = False,
    owner: str | None = None,
    keep_owners: bool = False,
) -> TransferSummary:
    """Read an export (JSON Lines) into ``store``. A search or dataset id that exists already is a
    :class:`~hyperhive.errors.Conflict` naming its line, unless ``skip_existing`` (identical datasets are
    always skipped). Records before the failing line stay imported; importing again with
    ``skip_existing`` finishes the job.

    Searches and datasets are owned by ``owner`` (None: only admins see them), or keep the file's owners
    with ``keep_owners``; each search is checked like a submitted one (``Store.import_search``)."""
    policy = OwnerPolicy(owner, keep_owners)
    records = _Records(lines)
    summary = TransferSummary()
    while (record := records.pop()) is not None:
        kind = record["format"]
        if kind == DATASET_FORMAT:
            _import_dataset(store, records, record, summary, policy)
        elif kind == EXPORT_FORMAT:
            line, sid = records.line, record.get("search", {}).get("id")
            try:
                store.import_search(record, owner=owner, keep_owner=keep_owners)
            except Conflict as exc:
                if not skip_existing:
                    raise Conflict(f"line {line}: {exc} (use --skip-existing to keep going)") from exc
                summary.skipped.append(f"search {sid}")
                continue
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"line {line}: a bad search record ({type(exc).__name__}: {exc})") from exc
            summary.searches += 1
            summary.trials += len(record.get("trials", []))
        elif kind == CHUNK_FORMAT:
            raise ValueError(f"line {records.line}: a dataset chunk without its dataset record before it")
        else:
            raise ValueError(f"line {records.line}: unknown record format {kind!r}")
    return summary
