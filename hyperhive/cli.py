"""The ``hyperhive`` command. Each part registers its own commands; nothing heavy is imported here.

- ``service.cli``: ``serve``, ``up``, ``submit``, ``status``, ``trials``, ``best``, ``cancel``,
  ``export``, ``token``, ...
- ``workers.cli``: ``worker``, ``retrain``.
- ``hyperhive.store.cli``: ``store export`` / ``store import`` between stores.

A module that is not there yet is skipped, so the command works while parts are being built.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="hyperhive",
    help="Hyperparameter search for Keras image classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_PARTS = ("service.cli", "workers.cli", "hyperhive.store.cli")


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
