"""``hyperas.optim`` for a script that Hyperhive runs: ``minimize`` is called only from the script's
``if __name__ == '__main__':`` block, which never runs in a trial."""

from typing import NoReturn


def minimize(*args: object, **kwargs: object) -> NoReturn:
    raise RuntimeError(
        "hyperas.optim.minimize does not run inside a Hyperhive trial: submit the script with "
        "`hyperhive submit model.py` and Hyperhive runs the search"
    )


def best_models(*args: object, **kwargs: object) -> NoReturn:
    raise RuntimeError("hyperas.optim.best_models does not run inside a Hyperhive trial")
