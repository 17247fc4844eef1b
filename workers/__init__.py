"""Hyperhive's workers: long-lived processes that claim trials from the store, train the Keras model each
trial describes (or call a function objective) and report the metrics.

Importing this package is cheap: Keras, TensorFlow and scikit-learn are imported on the first Keras
trial only, so a worker that runs function objectives starts fast.

- :mod:`workers.daemon`: the claim / run / report loop (:class:`~workers.daemon.Worker`).
- :mod:`workers.supervisor`: one worker process per GPU, restarted when it dies.
- :mod:`workers.execution`: one claimed trial turned into a result (function or Keras).
- :mod:`workers.training`: build, compile, fit and evaluate one Keras model.
- :mod:`workers.model_builder`, :mod:`workers.blocks`, :mod:`workers.optimizers`: the ``model`` and
  ``training`` sections turned into Keras objects (allow-listed names only, never code).
- :mod:`workers.datasets`: ``digits``, keras.datasets, ``.npz`` files, image folders, uploads.
- :mod:`workers.metrics`: the final classification metrics (scikit-learn).
- :mod:`workers.objectives`: function objectives, restricted to allowed module prefixes.
- :mod:`workers.cli`: ``hyperhive worker`` and ``hyperhive retrain``.
"""
