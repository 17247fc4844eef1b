"""The ``hyperhive`` command. Each part registers its own commands; nothing heavy is imported here.

- ``hyperhive.service.cli``: ``serve``, ``up``, ``submit``, ``status``, ``trials``, ``best``, ``cancel``,
  ``export``, ``token``, ...
- ``hyperhive.workers.cli``: ``worker``, ``retrain``.
- ``hyperhive.store.cli``: ``store export`` / ``store import`` between stores.

A module that is not there yet is skipped, so the command works while parts are being built.

Every command takes ``-h`` as well as ``--help``; ``hyperhive --version`` prints the version. On/off
flags show no ``<bool>`` type in the help.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.core

from hyperhive import __version__

app = typer.Typer(
    name="hyperhive",
    help="Hyperparameter search for Keras image classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hyperhive {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Hyperparameter search for Keras image classifiers."""


_PARTS = ("hyperhive.service.cli", "hyperhive.workers.cli", "hyperhive.store.cli")


def _register() -> None:
    for name in _PARTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register()

_display_type_rich = typer.core.TyperOption.display_type_rich


def _quiet_flag_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """No ``<bool>`` next to on/off flags (``--json``, ``--help``) in the help: typer shows one for
    every flag, which reads as if the flag took a value."""
    return None if self.is_flag else _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _quiet_flag_type  # type: ignore[method-assign]


def main() -> None:
    app(prog_name="hyperhive")


if __name__ == "__main__":
    main()
