"""Hyperhive's REST service: FastAPI routes per resource over the store, bearer-token auth, and the
``hyperhive`` commands that serve it, talk to it (through :mod:`hyperhive.client`) or run it embedded.

The web app reads and writes only through the :class:`~hyperhive.store.base.Store` interface and never
imports Keras or the workers: it is not in the trial path and can restart while a search runs.

Importing this package is cheap (``hyperhive.service.cli`` is loaded by every ``hyperhive`` command); the app
lives in :mod:`hyperhive.service.app` (``create_app``).
"""

NO_AUTH_WARNING = (
    "AUTHENTICATION IS OFF (--no-auth): anyone who can reach this server can read, submit, cancel and "
    "delete every search. Use it only on a laptop bound to 127.0.0.1."
)
"""Printed by ``serve --no-auth`` and logged by every API process it starts (here, so that the process
that only supervises ``serve --workers N`` does not import the app)."""
