"""Hyperas's distribution names (hyperopt's ``hp`` functions), so that ``from hyperas.distributions import
choice, uniform`` imports. In a trial the templates are already replaced; these are never called by them."""

from hyperopt.hp import (  # noqa: F401 (re-exported names)
    choice,
    lognormal,
    loguniform,
    normal,
    pchoice,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
    uniformint,
)
