"""The service's ``hyperhive`` commands (see :mod:`hyperhive.service.cli_server` and
:mod:`hyperhive.service.cli_client`).

Importing this module is cheap: FastAPI, uvicorn and the store are imported when a command runs.
"""

from __future__ import annotations

import typer

from hyperhive.service import cli_client, cli_quota, cli_server


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``up``, ``run``, ``token`` and the client commands to the ``hyperhive`` app."""
    cli_server.register(app)
    cli_client.register(app)
    cli_quota.register(app)
