"""Hyperhive: hyperparameter search for Keras image classifiers."""

from hyperhive import _lazy_atpe

__version__ = "0.1.0"

_lazy_atpe.install()
