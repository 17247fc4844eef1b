"""``hyperhive submit model.py``: a Hyperas script read as a search (see docs/hyperas.md).

The script is parsed here too (``hyperhive.search_spaces.hyperas``, pure: nothing in it runs), so
``--dry-run``
shows the space it found without a server, and a broken script is reported before it is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

SCRIPT_SUFFIXES = (".py",)


def is_script(path: Path) -> bool:
    """Whether ``path`` is read as a Hyperas script (a ``.py`` file)."""
    return path.suffix.lower() in SCRIPT_SUFFIXES


def script_document(
    path: Path, fields: dict[str, Any], default_max_trials: int | None = None
) -> dict[str, Any]:
    """The validated search document of the script at ``path`` with ``fields`` (None values left out);
    raises SpecError (shown as one line per problem by the CLI)."""
    from hyperhive.search_spaces import validate
    from hyperhive.search_spaces.hyperas import script_max_evals

    doc: dict[str, Any] = {"script": path.read_text(encoding="utf-8")}
    for key, value in fields.items():
        if value is None:
            continue
        if key in ("mode", "metric"):
            doc.setdefault("objective", {})[key] = value
        else:
            doc[key] = value
    doc.setdefault("name", path.stem)
    if "max_trials" not in doc:
        doc["max_trials"] = script_max_evals(doc["script"]) or default_max_trials
        if doc["max_trials"] is None:
            raise ValueError("give --max-trials (the script's optim.minimize(max_evals=...) was not found)")
    return validate(doc).to_document()


def space_table(document: dict[str, Any]) -> Table:
    """The parameters a script's templates define: name, line, distribution."""
    from hyperhive.search_spaces.hyperas import parse_script

    table = Table(title=f"Hyperas space of {document['name']!r}", title_justify="left")
    for column in ("parameter", "line", "distribution"):
        table.add_column(column)
    for t in parse_script(document["script"]).templates:
        dist = next(iter(t.param().items()))
        table.add_row(t.name, str(t.line), f"{dist[0]} {dist[1]!r}")
    return table


def submit_path(client: Any, path: Path, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """Submit ``path`` with ``client``: a Hyperas script (``.py``, with ``fields``) or a search document."""
    if not is_script(path):
        return dict(client.submit_file(path))
    document = script_document(path, fields or {})
    script = document.pop("script")
    document.pop("params")
    objective = document.pop("objective", None) or {}
    return dict(client.submit_script(script, **document, **objective))
