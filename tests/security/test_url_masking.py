"""Issue 8.9: a store URL's password and secret options never reach a message, a log line or the CLI's output.

Every shape is checked three ways: :func:`redact_url` itself, the error raised by opening the URL (a bad
URL, or a server that refuses the connection), and what ``hyperhive store ping`` prints. The secrets all
contain ``SECRET`` (or ``tok9`` / ``kpw9`` / ``ppw9``), so one search of the output finds any of them.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hyperhive.cli import app
from hyperhive.errors import HyperhiveError
from hyperhive.store import open_store, redact_url

SECRETS = ("SECRET", "S%45CRET", "tok9", "kpw9", "ppw9", "se/cr")
REFUSED = "127.0.0.1:1"  # nothing listens: the connection is refused at once
FAST = "serverSelectionTimeoutMS=300"

# (url, what stays visible in the redacted form)
SHAPES = [
    pytest.param(f"mongodb://hh:SECRET@{REFUSED}/hive?{FAST}", f"hh:***@{REFUSED}/hive", id="plain"),
    pytest.param(f"mongodb://hh:S%45CRET@{REFUSED}/hive?{FAST}", "hh:***@", id="percent-encoded"),
    pytest.param(
        f"mongodb://hh:se/crSECRET@{REFUSED}/hive?{FAST}", f"mongodb://***@{REFUSED}/hive", id="slash"
    ),
    pytest.param(
        f"mongodb://hh:a@bSECRET@{REFUSED}/hive?{FAST}", f"mongodb://***@{REFUSED}/hive", id="at-sign"
    ),
    pytest.param(f"mongodb://hh:pa?SECRET@{REFUSED}/hive?{FAST}", "hh:***@", id="question-mark"),
    pytest.param("mongodb://hh:SECRET@127.0.0.1:99999/hive", "hh:***@127.0.0.1:99999", id="bad-port"),
    pytest.param(f"mongodb://hh:SECRET@{REFUSED}/hive?bogusOption=1", "hh:***@", id="unknown-option"),
    pytest.param(
        f"mongodb://hh:SECRET@{REFUSED}/hive?{FAST}&tls=true&tlsCertificateKeyFilePassword=kpw9",
        "tlsCertificateKeyFilePassword=***",
        id="tls-key-password",
    ),
    pytest.param(
        f"mongodb://{REFUSED}/hive?{FAST}&authMechanism=MONGODB-AWS"
        "&authMechanismProperties=AWS_SESSION_TOKEN:tok9",
        "authMechanismProperties=***",
        id="aws-session-token",
    ),
    pytest.param(
        f"mongodb://{REFUSED}/hive?{FAST}&proxyHost=p&proxyUsername=u&proxyPassword=ppw9",
        "proxyPassword=***",
        id="proxy-password",
    ),
    pytest.param("mongodb+srv://hh:SECRET@cluster0.example.invalid/hive", "hh:***@cluster0", id="srv"),
    pytest.param(
        "mongodb+srv://hh:se/crSECRET@cluster0.example.invalid/hive", "***@cluster0", id="srv-slash"
    ),
]


def _clean(text: str) -> bool:
    return not any(s in text for s in SECRETS)


@pytest.mark.parametrize(("url", "visible"), SHAPES)
def test_redact_url_masks_every_shape(url: str, visible: str) -> None:
    shown = redact_url(url)
    assert _clean(shown), shown
    assert visible in shown, shown


@pytest.mark.parametrize(("url", "visible"), SHAPES)
def test_opening_the_url_raises_without_the_secrets(url: str, visible: str) -> None:
    with pytest.raises(HyperhiveError) as info:
        open_store(url).close()
    text = str(info.value)
    assert _clean(text), text
    # nothing chained either (a traceback in a log would print it)
    cause = info.value.__cause__
    assert cause is None or _clean(str(cause)), cause


@pytest.mark.parametrize(("url", "visible"), SHAPES)
def test_store_ping_prints_no_secret(url: str, visible: str) -> None:
    result = CliRunner().invoke(app, ["store", "ping", "--store", url])
    assert result.exit_code in (2, 3), result.output  # a bad URL, or a store it cannot reach
    assert "error:" in result.output and "Traceback" not in result.output
    assert _clean(result.output), result.output


def test_urls_without_secrets_are_shown_as_they_are() -> None:
    for url in (
        "sqlite:///.hyperhive/hyperhive.db",
        "mongodb://db1:27018,db2/hive?replicaSet=rs0&w=majority",
        "mongodb://hh@db/hive?authSource=admin",
        "mongodb://db/hive?appname=me@laptop",
    ):
        assert redact_url(url) == url


def test_hyperhive_up_gives_its_workers_the_store_url_outside_argv(tmp_path: object) -> None:
    """Every local user can read a process's command line (``ps``): the URL travels in the environment."""
    from pathlib import Path

    from hyperhive.service.embedded import Embedded
    from hyperhive.settings import Settings

    home = Path(str(tmp_path)) / "home"
    url = "mongodb://hh:SECRET@db.internal/hive"
    emb = Embedded(Settings(home=home, store=url), workers=1)  # type: ignore[call-arg]
    assert _clean(" ".join(emb.worker_command()))
