"""Indexes: created at startup, idempotently, with the unique constraints the store relies on."""

from __future__ import annotations

import pytest
from mongokit import search_spec
from pymongo.errors import DuplicateKeyError

from hyperhive.store.mongo import MongoStore
from hyperhive.store.mongo_documents import INDEXES, trial_doc_of


def _keys(store: MongoStore, coll: str) -> dict[str, list[tuple[str, int]]]:
    return {name: list(info["key"]) for name, info in store.db[coll].index_information().items()}


def test_every_index_exists_after_startup(mstore: MongoStore) -> None:
    trials = _keys(mstore, "trials")
    assert trials["search_number"] == [("search_id", 1), ("number", 1)]
    assert trials["state_lease"] == [("state", 1), ("lease_expires_at", 1)]
    assert trials["search_state"] == [("search_id", 1), ("state", 1)]
    assert trials["search_value"][:2] == [("search_id", 1), ("value", 1)]
    assert _keys(mstore, "searches")["status_fair"][0] == ("status", 1)
    assert _keys(mstore, "tokens")["hash"] == [("hash", 1)]
    assert _keys(mstore, "dataset_chunks")["seq"] == [("dataset_id", 1), ("seq", 1)]
    for coll, indexes in INDEXES.items():
        assert {name for name, _, _ in indexes} <= set(_keys(mstore, coll)), coll


def test_index_creation_is_idempotent(mstore: MongoStore) -> None:
    before = {c: _keys(mstore, c) for c in INDEXES}
    mstore.ensure_indexes()
    again = MongoStore(mstore.url, database=mstore.database, client=mstore.client)  # a second process
    assert {c: _keys(again, c) for c in INDEXES} == before


def test_slot_numbers_and_token_hashes_are_unique(mstore: MongoStore) -> None:
    s = mstore.create_search(search_spec())
    t = mstore.claim("w")
    assert t is not None
    clash = {**trial_doc_of(t), "_id": "another-id"}
    with pytest.raises(DuplicateKeyError):
        mstore._trials.insert_one(clash)
    info, _ = mstore.create_token("a")
    doc = mstore._tokens.find_one({"_id": info.id})
    with pytest.raises(DuplicateKeyError):
        mstore._tokens.insert_one({**doc, "_id": "other"})
    assert mstore.get_search(s.id).counts.total == 1
