"""Hyperhive's workers: long-lived processes that claim trials from the store, train the Keras model each
trial describes (or call a function objective) and report the metrics.

Importing this package is cheap: Keras, TensorFlow and scikit-learn are imported on the first Keras
trial only, so a worker that runs function objectives starts fast.

- :mod:`hyperhive.workers.daemon`: the claim / run / report loop (:class:`~hyperhive.workers.daemon.Worker`).
- :mod:`hyperhive.workers.supervisor`: one worker process per GPU, restarted when it dies.
- :mod:`hyperhive.workers.execution`: one claimed trial turned into a result (function or Keras).
- :mod:`hyperhive.workers.training`: build, compile, fit and evaluate one Keras model.
- :mod:`hyperhive.workers.model_builder`, :mod:`hyperhive.workers.blocks`,
  :mod:`hyperhive.workers.optimizers`: the ``model`` and
  ``training`` sections turned into Keras objects (allow-listed names only, never code).
- :mod:`hyperhive.workers.datasets`: ``digits``, keras.datasets, ``.npz`` files, image folders, uploads.
- :mod:`hyperhive.workers.metrics`: the final classification metrics (scikit-learn).
- :mod:`hyperhive.workers.objectives`: function objectives, restricted to allowed module prefixes.
- :mod:`hyperhive.workers.cli`: ``hyperhive worker`` and ``hyperhive retrain``.
"""
