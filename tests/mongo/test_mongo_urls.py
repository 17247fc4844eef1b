"""MongoDB store URLs: parsing, clear errors for bad or unreachable URLs, retries through connection loss."""

from __future__ import annotations

import time
from typing import Any

import mongomock
import pytest
from pymongo.errors import AutoReconnect, NotPrimaryError, OperationFailure

from hyperhive.errors import BadStoreURL, StoreUnavailable
from hyperhive.store import open_store
from hyperhive.store.mongo import MongoStore, parse_mongo_url, redact_url


def test_parse_takes_hosts_database_and_options() -> None:
    p = parse_mongo_url("mongodb://u:pw@db1:27018,db2/hive?replicaSet=rs0&w=majority&authSource=admin")
    assert p["nodelist"] == [("db1", 27018), ("db2", 27017)]
    assert p["database"] == "hive" and p["username"] == "u"
    assert p["options"]["replicaSet"] == "rs0"


def test_srv_urls_are_checked_without_a_dns_lookup() -> None:
    p = parse_mongo_url("mongodb+srv://user:pw@cluster0.example.net/hive")
    assert p["fqdn"] == "cluster0.example.net" and p["database"] == "hive"
    with pytest.raises(BadStoreURL, match="port"):
        parse_mongo_url("mongodb+srv://cluster0.example.net:27017/hive")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mongodb://", "hostname"),
        ("mongodb://db:99999/hive", "Port"),
        ("mongodb://db/bad name", "database name"),
        ("mongodb://db/hive?serverSelectionTimeoutMS=soon", "serverselectiontimeoutms"),
        ("mongodb://db/hive?wrongOption=1", "Unknown option"),
        ("postgres://db/hive", "must start with mongodb://"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, why: str) -> None:
    with pytest.raises(BadStoreURL, match=why):
        parse_mongo_url(url)


def test_bad_url_through_open_store_masks_the_password() -> None:
    with pytest.raises(BadStoreURL) as info:
        open_store("mongodb://alice:s3cret@db:99999/hive")
    assert "s3cret" not in str(info.value) and "alice:***@db" in str(info.value)


def test_redact_url() -> None:
    assert redact_url("mongodb://a:b@h/db?x=1") == "mongodb://a:***@h/db?x=1"
    assert redact_url("mongodb://a@h/db") == "mongodb://a@h/db"
    assert redact_url("mongodb://h/db") == "mongodb://h/db"


def test_database_comes_from_the_url_path_or_defaults() -> None:
    client: Any = mongomock.MongoClient()
    assert MongoStore("mongodb://localhost/hive", client=client).database == "hive"
    assert MongoStore("mongodb://localhost", client=client).database == "hyperhive"
    assert MongoStore("mongodb://localhost/hive", client=client, database="other").database == "other"


def test_open_store_picks_the_mongo_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    client: Any = mongomock.MongoClient()
    made: list[dict[str, Any]] = []

    def factory(url: str, **kw: Any) -> Any:
        made.append({"url": url, **kw})
        return client

    monkeypatch.setattr(MongoStore, "client_factory", staticmethod(factory))
    store = open_store("mongodb://db.internal/hive?serverSelectionTimeoutMS=2500")
    assert isinstance(store, MongoStore) and store.database == "hive"
    [kw] = made
    assert kw["retryWrites"] is True and kw["retryReads"] is True
    assert "serverSelectionTimeoutMS" not in kw, "the URL's own timeout is kept"
    assert kw["connectTimeoutMS"] == 10_000
    assert store.write_concern is not None and store.write_concern.document == {"w": "majority"}


def test_unreachable_server_is_store_unavailable_naming_host_and_timeout() -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        open_store("mongodb://127.0.0.1:1/hive?serverSelectionTimeoutMS=200")
    message = str(info.value)
    assert "127.0.0.1:1" in message and "0.2 s" in message
    assert time.monotonic() - start < 5, "startup fails fast instead of retrying"


def test_unresolvable_srv_name_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match=r"no-such-cluster\.invalid"):
        MongoStore("mongodb+srv://no-such-cluster.invalid/hive?serverSelectionTimeoutMS=200")


class Flaky:
    """Stands in for a collection method: fails ``n`` times with ``exc``, then answers."""

    def __init__(self, n: int, exc: Exception) -> None:
        self.n, self.exc, self.calls = n, exc, 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.calls <= self.n:
            raise self.exc
        return "answer"


def _store(**kw: Any) -> MongoStore:
    return MongoStore("mongodb://localhost/hive", client=mongomock.MongoClient(), **kw)


@pytest.mark.parametrize(
    "exc",
    [
        AutoReconnect("connection reset"),
        NotPrimaryError("not primary"),
        OperationFailure("primary stepped down", code=189),
    ],
)
def test_connection_loss_and_elections_are_retried_with_backoff(exc: Exception) -> None:
    store = _store(retry_seconds=10)
    flaky = Flaky(3, exc)
    assert store._call("test call", flaky) == "answer" and flaky.calls == 4


def test_a_long_outage_becomes_store_unavailable() -> None:
    store = _store(retry_seconds=0.3)
    flaky = Flaky(10_000, AutoReconnect("no primary"))
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"localhost:27017.*test call"):
        store._call("test call", flaky)
    assert 0.1 < time.monotonic() - start < 2 and flaky.calls > 1


def test_other_server_errors_are_not_retried() -> None:
    store = _store()
    flaky = Flaky(1, OperationFailure("bad update", code=9))
    with pytest.raises(OperationFailure):
        store._call("test call", flaky)
    assert flaky.calls == 1


def test_refused_credentials_are_a_bad_url_not_a_retry() -> None:
    store = MongoStore("mongodb://alice:pw@localhost/hive", client=mongomock.MongoClient())
    flaky = Flaky(1, OperationFailure("Authentication failed.", code=18))
    with pytest.raises(BadStoreURL, match=r"refused the credentials.*'alice'.*authSource=admin"):
        store._call("test call", flaky)
    assert flaky.calls == 1


def test_ping_is_one_attempt() -> None:
    store = _store(retry_seconds=30)
    flaky = Flaky(1, AutoReconnect("down"))
    store.db = type("DB", (), {"command": flaky})()
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.ping()
    assert flaky.calls == 1 and time.monotonic() - start < 1


def test_the_store_url_attribute_is_safe_to_log(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    client: Any = mongomock.MongoClient()

    def factory(url: str, **kw: Any) -> Any:
        seen.append(url)
        return client

    monkeypatch.setattr(MongoStore, "client_factory", staticmethod(factory))
    store = open_store("mongodb://alice:s3cret@db/hive")
    assert store.url == "mongodb://alice:***@db/hive" and seen == ["mongodb://alice:s3cret@db/hive"]
