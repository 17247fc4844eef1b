"""A small stand-in for the ``hyperas`` package, on the path of a Hyperas script's trial process only.

Hyperhive runs the script itself (``hyperhive.workers.hyperas_child``): the templates are already replaced by
the
sampled values, so ``hyperas.distributions`` and ``hyperas.optim`` only have to import.
"""
