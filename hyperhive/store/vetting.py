"""Checking an imported search bundle as strictly as a submitted search (``Store.import_search``).

An export file is data from elsewhere: whoever wrote it could have put in a document the API would refuse
(an objective naming ``os:system``, a ``path:`` dataset, out-of-range options), queued trials whose
configuration is not one the space can produce (the worker runs ``config``, not ``vals``), or an
``owner`` that hands the search to someone. So an imported search goes through what ``POST
/api/searches`` does:

- the document is validated again by :func:`search_spaces.validate` (and stored as it normalises it);
  the columns derived from it (name, algorithm, objective, failure and retry limits, seed) must agree
  with it, and ``max_trials`` lies between the document's and the store's limit (``extend`` raises it);
- every trial's ``vals`` name only numbers that are finite and inside their distribution's range; a
  trial a worker will run (queued, or running in the source: it arrives queued) must have ``vals`` that
  are a point of the space (each active label present, choice indices in range) and exactly the
  ``config`` those ``vals`` give, since the worker runs the ``config``. Finished trials are recorded
  results no worker runs again; their configs are not recomputed (that costs a hyperopt evaluation,
  ~10 ms, per trial: minutes for a large store). A trial without ``vals`` has no ``config``;
- ``best_trial_id`` names one of the bundle's own done trials;
- the owner is the importer's choice (:class:`OwnerPolicy`), not the file's, unless the importer says
  the file is trusted (``keep``); an uploaded dataset the document trains on must be in the store and
  belong to that owner; ``dataset.path``/``folder`` (files on the worker machines, admin-only in the
  API) only for a search owned by an admin (no owner, or an admin token's name in this store).

Failures are :class:`ValueError` naming the field (``search.document.objective.function: ...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperhive.errors import NotFound
from hyperhive.models import Search, Trial, TrialState

if TYPE_CHECKING:
    from hyperhive.search_spaces import SearchSpec
    from hyperhive.store.base import Store

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class OwnerPolicy:
    """Who owns what an import brings in: ``owner`` (None: nobody, so only admin tokens see it), or,
    with ``keep``, the owner recorded in the file (for a file from your own deployment, e.g. moving a
    store from SQLite to MongoDB)."""

    owner: str | None = None
    keep: bool = False

    def owner_of(self, recorded: str | None) -> str | None:
        return recorded if self.keep else self.owner


def vet_search(store: Store, search: Search, trials: list[Trial], policy: OwnerPolicy) -> None:
    """Validate ``search`` and ``trials`` in place (see the module doc); :class:`ValueError` naming the
    field when something is not what a submitted search could hold."""
    from hyperhive.search_spaces import MAX_TRIALS_LIMIT, SpecError, validate

    search.owner = policy.owner_of(search.owner)
    if not isinstance(search.document, dict):
        raise ValueError("search.document: must be a search document (a mapping)")
    try:
        spec = validate(search.document)
    except SpecError as exc:
        problems = "; ".join(f"search.document.{e.loc}: {e.msg}" for e in exc.errors)
        raise ValueError(f"the search document is not valid: {problems}") from None
    search.document = spec.to_document()
    derived = {
        "name": spec.name,
        "algorithm": spec.algorithm,
        "objective_metric": spec.objective_metric,
        "objective_mode": spec.objective_mode,
        "max_consecutive_failures": spec.max_consecutive_failures,
        "max_retries": spec.max_retries,
    }
    if spec.seed is not None:
        derived["seed"] = spec.seed
    for key, want in derived.items():
        got = getattr(search, key)
        if got != want or type(got) is not type(want):
            raise ValueError(f"search.{key}: {got!r} does not match the document's {want!r}")
    if isinstance(search.seed, bool) or not isinstance(search.seed, int) or not 0 <= search.seed <= MAX_SEED:
        raise ValueError(f"search.seed: must be an integer in [0, {MAX_SEED}], got {search.seed!r}")
    top = search.max_trials
    if isinstance(top, bool) or not isinstance(top, int) or not spec.max_trials <= top <= MAX_TRIALS_LIMIT:
        raise ValueError(
            f"search.max_trials: must be an integer from the document's {spec.max_trials} "
            f"to {MAX_TRIALS_LIMIT}, got {top!r}"
        )
    _vet_dataset(store, search, spec)
    checker = _Vals(spec)
    for i, trial in enumerate(trials):
        checker.check(i, trial)
    if search.best_trial_id is not None:
        best = next((t for t in trials if t.id == search.best_trial_id), None)
        if best is None or best.state != TrialState.DONE or best.value is None:
            raise ValueError(
                f"search.best_trial_id: {search.best_trial_id!r} is not a done trial of this search"
            )
        search.best_value = best.value


def _owner_is_admin(store: Store, owner: str | None) -> bool:
    if owner is None:
        return True
    return any(t.name == owner and t.admin and not t.revoked for t in store.list_tokens())


def _vet_dataset(store: Store, search: Search, spec: SearchSpec) -> None:
    dataset = spec.dataset if isinstance(spec.dataset, dict) else {}
    upload = dataset.get("upload")
    if upload is not None:
        try:
            info = store.get_dataset(str(upload))
        except NotFound:
            raise ValueError(
                f"search.document.dataset.upload: no dataset {upload!r} in this store (import the file "
                "with its datasets: `hyperhive store export` without --no-datasets)"
            ) from None
        if search.owner is not None and info.owner != search.owner:
            raise ValueError(
                f"search.document.dataset.upload: dataset {upload!r} belongs to another owner than the "
                f"search's ({search.owner!r})"
            )
    for key in ("path", "folder"):
        if key in dataset and not _owner_is_admin(store, search.owner):
            raise ValueError(
                f"search.document.dataset.{key}: reading files on the worker machines is for admins; the "
                f"search would be owned by {search.owner!r}, who holds no admin token in this store"
            )


class _Vals:
    """Checks trials' ``vals`` against the space and their ``config`` against the ``vals``."""

    def __init__(self, spec: SearchSpec) -> None:
        from hyperhive.search_spaces import parameters
        from hyperhive.search_spaces.distributions import NUMERIC_DISTRIBUTIONS

        self.spec = spec
        self.ranges = {
            p.label: NUMERIC_DISTRIBUTIONS[p.distribution].value_range(p.args)
            for p in parameters(spec)
            if p.distribution in NUMERIC_DISTRIBUTIONS
        }

    def check(self, i: int, trial: Trial) -> None:
        where = f"trials[{i}]"
        if trial.vals is None:
            if trial.config is not None:
                raise ValueError(f"{where}.config: a configuration without the vals it came from")
            return
        if not isinstance(trial.vals, dict):
            raise ValueError(f"{where}.vals: must be a mapping of labels to [value] or []")
        for label, value in trial.vals.items():
            if label not in self.ranges:
                continue  # choices: config_from_vals checks their indices
            values = value if isinstance(value, list) else [value]
            for v in values:
                self._in_range(f"{where}.vals[{label!r}]", v, label)
        if trial.state.is_final:
            return  # a recorded result no worker runs again: its vals are checked, its config kept as is
        try:
            config = self.spec.config_from_vals(trial.vals)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"{where}.vals: not a point of the search's space ({exc})") from None
        if trial.config != config:
            raise ValueError(f"{where}.config: is not the configuration its vals give")

    def _in_range(self, where: str, value: Any, label: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{where}: must be a finite number, got {value!r}")
        r = self.ranges[label]
        slack = 1e-9 * max(1.0, abs(value))
        low_ok = value > r.lo if r.lo_open else value >= r.lo - slack
        if not low_ok or value > r.hi + slack:
            raise ValueError(f"{where}: {value!r} is outside the distribution's range [{r.lo}, {r.hi}]")
