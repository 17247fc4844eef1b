"""The store interface: the only thing in Hyperhive that touches a database.

Contract (every backend; ``tests/store/test_store_contract.py`` checks it against each one)
=========================================================================================

Records and states are defined in :mod:`hyperhive.models` (``SearchStatus``, ``TrialState``).

A backend implements atomic operations only (the abstract methods below: take a queued trial or a new
slot, save a suggestion, touch a lease, finish a trial, requeue expired leases, read the trials
changed since a cursor, ...). :class:`Store` builds ``claim``, ``heartbeat`` and ``report`` on them;
what a finished trial does to its search is :mod:`hyperhive.store.rules`; which configuration a trial
gets and when it is pruned is the store's policy (:mod:`hyperhive.policy`), which only reads the store.

Searches
    ``create_search`` stores a validated document as ``pending`` with its seed resolved (drawn and recorded
    when the document has none). ``cancel_search`` makes it ``cancelled`` and every non-final trial
    ``cancelled`` in one step. ``extend_search(n)`` adds ``n`` slots; a ``completed`` or ``failed`` search
    becomes ``running`` again (its consecutive-failure count reset); extending a cancelled search is a
    :class:`Conflict`. ``extend_search`` never takes ``max_trials`` past ``limit`` (default
    ``search_spaces.MAX_TRIALS_LIMIT``): the check is part of the same atomic update (SQLite: inside
    the write transaction; MongoDB: a filter ``max_trials <= limit - n``), so concurrent extends cannot
    pass it together; a refused extend raises :class:`~hyperhive.errors.LimitExceeded` (field ``n``) and
    changes nothing. ``delete_search`` removes the search and all its trials.

Budget and completion
    A search has ``max_trials`` slots. Every trial takes exactly one slot for its whole life (a requeued
    trial keeps its slot and its ``number``). ``counts.total`` never exceeds ``max_trials``. When
    ``counts.finished == max_trials`` a search is ``completed`` if at least one trial is ``done``, else
    ``failed`` with ``error`` naming the failed count and the last trial error ("no trial succeeded").
    It is ``failed`` at once when ``max_consecutive_failures`` trials in a row ended ``failed`` (a
    ``done`` trial resets the count), or when a failed report is marked as a *search error*
    (``TrialResult.search_error``: the document itself cannot run, e.g. its model cannot be built or
    its dataset loaded); its ``error`` then holds that trial's error and its non-final trials are
    cancelled. Trials failed by the lease sweep are never search errors.

Claims (atomic)
    ``claim(worker_id, lease_seconds)`` returns a ``running`` trial holding a fresh ``lease_token`` and
    ``lease_expires_at = now + lease_seconds``, or ``None`` when there is no work. Order: first the sweep
    of expired leases, then a ``queued`` trial (oldest first; it keeps its config), else a new slot of a
    runnable search (``pending``/``running`` with slots left) chosen fairly: fewest running trials, then
    least recently claimed. Taking a slot and inserting its trial is one atomic step: two concurrent
    claims never take the same slot, and no slot is taken without its trial existing. The configuration
    is then suggested by the store's policy (:mod:`hyperhive.policy`; by default hyperopt's
    :class:`~hyperhive.engine.Engine`) from the search's history (running trials count as pending) and
    saved on the trial. Until then the trial is ``running`` without a config under the claimer's lease,
    so no other claimer can take it; if the claimer dies in between, the trial's lease expires and the
    next claimer of the requeued trial makes the suggestion. (SQLite suggests for the slot before
    taking it and saves the suggestion with the trial in the same transaction when that slot is the one
    taken; only a slot lost to a concurrent claimer leaves its trial config-less for the step above.)
    A suggestion is made without the configurations of trials that other claimers start meanwhile: when
    the policy has an ``in_flight_rule`` (TPE: no near-duplicate of a trial in flight) the save checks
    it against the search's running trials, and a clashing suggestion is made again, up to
    :data:`SUGGESTION_ATTEMPTS` times (SQLite: inside the saving transaction; MongoDB: just before the
    save, so a twin started in that instant can still pass). A
    trial cancelled or deleted while its suggestion is being made is given up and the claim tried
    again: ``claim`` never raises :class:`~hyperhive.errors.LeaseLost` or
    :class:`~hyperhive.errors.NotFound`. A claim records on the claimer's worker row, if it registered,
    that it is ``busy`` with the claimed trial (``last_seen`` now).

Leases
    ``heartbeat`` extends the lease of the holder of the current token, saves per-epoch history, and
    answers ``stop`` when the search was cancelled or failed (the trial is then already ``cancelled``),
    when the trial should be pruned (the policy's pruner: by default the median rule on the search's
    ``training.pruning``, :mod:`hyperhive.pruning`), or when the token
    is not current (``lease_lost``). ``release`` hands a running trial back to the queue without
    spending a retry (a worker told to stop). ``requeue_expired`` returns every ``running`` trial whose
    lease expired to ``queued`` (token cleared, ``attempts`` kept) while it has retries left
    (``attempts <= max_retries``), else marks it ``failed`` ("worker lost"), oldest expiry first (a
    failure that fails the search cancels the trials after it); it is safe to run from many processes
    at once: a trial is requeued once.

History (appended, not rewritten)
    A worker sends each epoch once: ``heartbeat(..., new_epochs=[...], from_epoch=k)`` makes the history
    ``history[:k] + new_epochs``, so a resent batch (its answer was lost) replaces itself instead of
    being duplicated, and a requeued trial's new attempt (``from_epoch=0``) starts the history afresh.
    ``from_epoch`` past the stored length is a :class:`ValueError` (nothing is saved). What a backend
    writes per heartbeat does not grow with the number of epochs: SQLite inserts one row per epoch into
    ``trial_history`` (primary key ``(trial_id, epoch)``), MongoDB keeps ``history`` as an array of
    per-epoch JSON strings and ``$push``es at ``$position`` ``k`` with ``$slice`` ``k + len(new)``,
    filtered on ``history.<k-1>`` existing. ``heartbeat(..., history=[...])`` (the whole list) and a
    report's ``history`` still replace it; readers see one ``history`` list either way.

Reports (atomic, idempotent)
    ``report(trial_id, token, result)`` is accepted only with the trial's current lease token while the
    trial is ``running`` (a lease that expired but was not swept yet still counts: the report wins and the
    trial can no longer be requeued). A ``failed`` result with ``search_error`` records
    ``info.error_kind = "search"`` on the trial and fails the search (see Budget and completion). It
    sets the final state, the objective ``value`` (from
    ``metrics[objective_metric]``; missing or non-finite turns ``done`` into ``failed``), ``loss`` (what
    hyperopt minimises), updates the search's counts, best trial and status in the same atomic step.
    Repeating a report with the same token after it was accepted returns the stored trial unchanged and
    counts nothing twice. Any other stale token raises :class:`~hyperhive.errors.LeaseLost`. The
    trial ``report`` returns is the trial as stored (what :meth:`~Store.get_trial` reads next).
    ``report_and_claim`` reports and then claims the next trial by the claim's rules (a worker going
    straight on to another trial); a refused report raises and claims nothing.

Concurrency
    A store object may be used from several threads (the worker's heartbeat thread) and several
    processes or machines may open the same store. Backends never fail with "database is locked"-style
    errors under contention: they wait and retry; only :class:`~hyperhive.errors.StoreUnavailable`
    escapes when the database cannot be reached at all.

Tokens and datasets
    API tokens are stored as SHA-256 hashes of high-entropy secrets; the secret is returned once by
    ``create_token``. Uploaded datasets are stored as chunks, so workers on other machines can read them.
    ``searches_using_dataset`` lists the non-final searches whose document reads an uploaded dataset
    (``dataset: {upload: ID}``), so that it is not deleted from under them.

Quotas (see :mod:`hyperhive.quotas`)
    ``set_quota(owner, limits)`` stores an admin's override for one user (a ``quotas`` table/collection
    keyed by owner name; the limits it names, each an integer >= 0 or ``None`` for unlimited; it
    replaces the previous override whole), ``get_quota`` reads it (``None`` when there is none),
    ``delete_quota`` removes it (:class:`NotFound` if none), ``list_quotas`` lists them by owner.
    ``usage(owner)`` says what the user holds now: searches ``pending``/``running``, stored bytes
    (dataset sizes + search document JSON + :data:`~hyperhive.quotas.TRIAL_BYTES_ESTIMATE` per trial
    started) and the sum of ``max_trials`` over the user's searches. Quotas are deployment policy, like
    tokens: ``export``/``import`` do not carry them.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from hyperhive.errors import Conflict, LeaseLost, LimitExceeded, NotFound, StoreUnavailable
from hyperhive.models import (
    DEFAULT_LEASE_SECONDS,
    REPORTABLE_TRIAL_STATES,
    RUNNABLE_SEARCH_STATUSES,
    DatasetInfo,
    HeartbeatAction,
    HeartbeatReply,
    Search,
    SearchStatus,
    TokenInfo,
    Trial,
    TrialResult,
    TrialState,
    WorkerInfo,
    finite_or_none,
    objective_loss,
)
from hyperhive.payloads import cap_error, cap_history, cap_info, cap_metrics
from hyperhive.policy import InFlightRule, Policy, default_policy
from hyperhive.store.rows import TrialHead, TrialRow
from hyperhive.store.rules import no_success_error, worker_lost_error

if TYPE_CHECKING:
    from hyperhive.quotas import Usage
    from hyperhive.search_spaces import SearchSpec

TRIAL_SORT_FIELDS = ("number", "value", "created_at", "finished_at")
TOKEN_TOUCH_SECONDS = 60.0
"""A token's ``last_used_at`` is written at most this often (the API authenticates every request)."""
CLAIM_ATTEMPTS = 20
"""How many trials one ``claim`` may lose to a concurrent cancel or delete before it answers ``None``."""
SUGGESTION_ATTEMPTS = 3
"""How many suggestions one claim may make for its trial when trials in flight that a suggestion did not
see (they started while it was made) nearly duplicate it (the policy's ``in_flight_rule``); the last
one is saved whatever it clashes with."""
EXPORT_FORMAT = "hyperhive-export/1"


def new_id() -> str:
    """A new record id: 16 hex characters (64 random bits)."""
    return secrets.token_hex(8)


def runs_code(document: dict[str, Any]) -> bool:
    """Whether a search's trials run code its submitter wrote (a Hyperas ``script``)."""
    return document.get("script") is not None


def new_lease_token() -> str:
    return secrets.token_hex(16)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def trial_seed(search_seed: int, number: int) -> int:
    """The seed of trial ``number``: fixed by the search's seed, different for every slot."""
    return (search_seed * 1_000_003 + number * 7_919 + 17) % (2**31 - 1)


def trial_limit(limit: int | None = None) -> int:
    """``limit``, or the largest trial budget a search may have (``search_spaces.MAX_TRIALS_LIMIT``,
    imported lazily: the store does not load the search-space compiler)."""
    if limit is not None:
        return limit
    from hyperhive.search_spaces.document import MAX_TRIALS_LIMIT

    return MAX_TRIALS_LIMIT


def epoch_gap(trial_id: str, k: int, stored: int) -> ValueError:
    """The error of an append that would leave a hole in a trial's history."""
    return ValueError(f"from_epoch: {k} is past the {stored} epoch(s) stored for trial {trial_id}")


def extend_refused(search_id: str, current: int, n: int, limit: int) -> LimitExceeded:
    """The error of an extend that would take a search's ``max_trials`` from ``current`` past ``limit``."""
    return LimitExceeded(
        "n",
        f"search {search_id} would have {current + n} trials; at most {limit} "
        f"(it has {current}, so n <= {max(limit - current, 0)})",
        current=current,
        limit=limit,
    )


_STRICT_ORJSON = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""orjson refusing (TypeError) what :func:`json_safe` would not make plain itself: dataclasses, dates,
subclasses of str/int/dict/list. What it takes is plain JSON (str keys, numbers, strings, lists, dicts;
tuples become lists), and it writes a non-finite float as null, as json_safe does."""


def json_safe(v: Any) -> Any:
    """``v`` with non-finite floats replaced by ``None`` and numpy scalars/arrays made plain, so that
    metrics and histories (a NaN loss from a diverged model, say) can be stored as JSON."""
    kind = type(v)
    if kind is str or kind is int or kind is bool or v is None:  # most leaves: nothing to do
        return v
    if kind is dict:  # plain JSON values (a function objective's metrics, a worker's info): through orjson
        try:
            return orjson.loads(orjson.dumps(v, option=_STRICT_ORJSON))
        except TypeError:  # numpy values, keys that are not strings, other objects: the walk below
            pass
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if hasattr(v, "tolist"):  # numpy scalars and arrays
        return json_safe(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


_FLAT = frozenset({int, float, bool, str, type(None)})
"""Types of metric values that :func:`~hyperhive.payloads.cap_metrics` keeps as they are once cut
(strings are cut to their cap by the first pass, and json_safe leaves these types plain)."""


def _capped(
    metrics: dict[str, Any], history: list[dict[str, Any]] | None, objective: str
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Metrics and history within :mod:`hyperhive.payloads`' caps (a cut history is noted in metrics)."""
    note = None
    if history is not None:
        history, note = cap_history(history)
        history = json_safe(history)
    if note:
        given = metrics.get("truncated_notes") if metrics.get("truncated") is True else None
        notes = [*given, note] if isinstance(given, list) else [note]
        metrics = {**metrics, "truncated": True, "truncated_notes": notes}
    return cap_metrics(metrics, keep=objective), history


@dataclass(frozen=True)
class Outcome:
    """A trial's final state as a backend writes it: :meth:`Store.report` computes it from a worker's
    :class:`~hyperhive.models.TrialResult` (the objective ``value`` and hyperopt's ``loss``, metrics made
    JSON-safe, ``info`` holding the hash of the reporting lease token); the lease sweep makes one for a
    worker that was lost. ``history`` ``None`` keeps the stored history."""

    state: TrialState
    value: float | None = None
    loss: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    fails_search: bool = False
    """A ``failed`` outcome caused by the search document itself: the search fails at once."""


def worker_lost(trial: Trial, max_retries: int) -> Outcome:
    """The outcome of a running trial whose lease expired with no retry left."""
    return Outcome(
        TrialState.FAILED,
        metrics=trial.metrics,
        error=worker_lost_error(trial.attempts, max_retries, trial.worker_id),
    )


def reported_again(trial: Trial, lease_token: str) -> Trial:
    """A report on a final trial: the trial itself when this token's report made it final (the same
    report again, counted once), else :class:`LeaseLost`."""
    if trial.info.get("reported_token") == hash_token(lease_token):
        return trial
    raise LeaseLost(f"trial {trial.id} is already {trial.state}")


def check_reportable(result: TrialResult) -> None:
    """ValueError unless ``result`` is a final state a worker may report (done, failed or pruned)."""
    if result.state not in REPORTABLE_TRIAL_STATES:
        raise ValueError(f"a report's state must be done, failed or pruned, not {result.state}")


def finished(trial: Trial, outcome: Outcome, now: float) -> Trial:
    """``trial`` (running, as read before the write) as a backend's finishing write leaves it: what
    :meth:`Store.report` returns without reading the trial back."""
    return Trial(  # every field of Trial is an __init__ argument: its __dict__ and the changes
        **{
            **trial.__dict__,
            "state": outcome.state,
            "value": outcome.value,
            "loss": outcome.loss,
            "metrics": outcome.metrics,
            "history": trial.history if outcome.history is None else outcome.history,
            "error": outcome.error,
            "info": {**trial.info, **outcome.info},
            "lease_token": None,
            "lease_expires_at": None,
            "finished_at": now,
            "updated_at": now,
            "version": trial.version + 1,
        }
    )


def report_outcome(search: Search, lease_token: str, result: TrialResult) -> Outcome:
    """What a report writes (see "Reports" in the contract): metrics and history capped and made
    JSON-safe, the objective ``value`` and ``loss`` (a ``done`` result without a finite objective turns
    ``failed``), ``info`` with the hash of the reporting token."""
    # capped twice: first by class counts (cheap on numpy arrays), then by size once plain (not needed
    # when every value is a single number or a short string: the first pass kept them as they are)
    metrics = json_safe(cap_metrics(result.metrics, keep=search.objective_metric))
    if result.history is None and all(type(v) in _FLAT for v in metrics.values()):
        history = None
    else:
        metrics, history = _capped(metrics, result.history, search.objective_metric)
    state, error = result.state, result.error
    value = loss = None
    if state == TrialState.DONE:
        value = finite_or_none(result.metrics.get(search.objective_metric))
        if value is None:
            state = TrialState.FAILED
            got = result.metrics.get(search.objective_metric, "nothing")
            error = (
                f"objective metric {search.objective_metric!r} missing or not a finite number "
                f"in the reported metrics (got {got!r})"
            )
    elif state == TrialState.PRUNED and history:
        last = history[-1].get(search.objective_metric)
        value = finite_or_none(last)
    if value is not None:
        loss = objective_loss(value, search.objective_mode)
    info = {**cap_info(json_safe(result.info)), "reported_token": hash_token(lease_token)}
    fails_search = state == TrialState.FAILED and result.search_error
    if fails_search:
        info["error_kind"] = "search"
    return Outcome(state, value, loss, metrics, history, cap_error(error), info, fails_search)


class Store(abc.ABC):
    """One interface over the SQLite and MongoDB stores. See the module docstring for the contract."""

    url: str

    def __init__(self, policy: Policy | None = None) -> None:
        self.clock: Callable[[], float] = time.time
        self._policy = policy
        self._policy_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`~hyperhive.errors.StoreUnavailable` unless the database answers."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def policy(self) -> Policy:
        """What this store applies on claims and heartbeats (see :mod:`hyperhive.policy`): the one it
        was given, else :func:`~hyperhive.policy.default_policy`, built on first use."""
        with self._policy_lock:
            if self._policy is None:
                self._policy = default_policy()
            return self._policy

    @property
    def engine(self) -> Any:
        """The policy's suggester (hyperopt's :class:`~hyperhive.engine.Engine` by default)."""
        return self.policy.suggester

    def _forget(self, search_id: str) -> None:
        """Drop this process's caches of a deleted search (backends call it from ``delete_search``)."""
        if self._policy is not None:
            self._policy.forget(search_id)

    # ------------------------------------------------------------------ searches
    def create_search(self, spec: SearchSpec, owner: str | None = None) -> Search:
        """Store a validated search as ``pending``; its seed is resolved (drawn if the spec has none)."""
        now = self.clock()
        seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31 - 1)
        search = Search(
            id=new_id(),
            name=spec.name,
            owner=owner,
            status=SearchStatus.PENDING,
            document=spec.to_document(),
            algorithm=spec.algorithm,
            max_trials=spec.max_trials,
            seed=seed,
            objective_metric=spec.objective_metric,
            objective_mode=spec.objective_mode,
            max_consecutive_failures=spec.max_consecutive_failures,
            max_retries=spec.max_retries,
            created_at=now,
            updated_at=now,
        )
        self._insert_search(search)
        return search

    @abc.abstractmethod
    def _insert_search(self, search: Search) -> None: ...

    @abc.abstractmethod
    def get_search(self, search_id: str) -> Search:
        """The search, or :class:`NotFound`."""

    @abc.abstractmethod
    def list_searches(
        self,
        *,
        status: SearchStatus | str | None = None,
        name: str | None = None,
        owner: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Search]:
        """Searches matching every given filter, newest first."""

    @abc.abstractmethod
    def count_searches(
        self, *, status: SearchStatus | str | None = None, name: str | None = None, owner: str | None = None
    ) -> int: ...

    @abc.abstractmethod
    def cancel_search(self, search_id: str) -> Search:
        """Cancel a non-final search and its non-final trials; cancelling a final search is a no-op."""

    @abc.abstractmethod
    def extend_search(self, search_id: str, n: int, *, limit: int | None = None) -> Search:
        """Add ``n >= 1`` slots (see the contract); :class:`LimitExceeded` if ``max_trials`` would pass
        ``limit`` (``None``: :func:`trial_limit`)."""

    @abc.abstractmethod
    def delete_search(self, search_id: str) -> None:
        """Delete the search and its trials; :class:`NotFound` if absent."""

    # ------------------------------------------------------------------ claims and leases
    def claim(
        self,
        worker_id: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        *,
        search_id: str | None = None,
        allow_code: bool = False,
    ) -> Trial | None:
        """Claim the next trial (see the contract); ``search_id`` restricts the claim to one search.
        Trials of searches that run submitted code (a Hyperas ``script``, see :func:`runs_code`) are
        claimed only with ``allow_code`` (workers started with ``--allow-code``); others leave them queued.

        Returns a ``running`` trial with its config, ``None`` when there is no work, or, when the
        suggestion itself raised (a broken space), that trial already reported ``failed``. A trial that
        is cancelled, requeued or deleted while its suggestion is being made (its search was cancelled
        or deleted meanwhile) is given up and the claim tried again: ``claim`` never raises
        :class:`LeaseLost` or :class:`NotFound`."""
        self.requeue_expired()
        for _ in range(CLAIM_ATTEMPTS):
            now = self.clock()
            trial = self._claim_queued(worker_id, lease_seconds, now, search_id, allow_code=allow_code)
            if trial is None:
                trial = self._claim_new_suggested(
                    worker_id, lease_seconds, now, search_id, allow_code=allow_code
                )
            if trial is None:
                return None
            if trial.config is None:
                try:
                    trial = self._suggest_for(trial)
                except (LeaseLost, NotFound):
                    continue  # lost the trial while suggesting: claim another one
            if trial.state == TrialState.RUNNING:
                self._claimed_by(worker_id, trial)
            return trial
        return None

    def _claimed_by(self, worker_id: str, trial: Trial) -> None:
        """Record on the claimer's worker row (if it registered) that it is busy with ``trial``: best
        effort, a store gone meanwhile does not undo the claim. A backend that writes the row in the
        claim's own transaction makes this a no-op."""
        with contextlib.suppress(StoreUnavailable):
            self.touch_worker(worker_id, status="busy", current_trial_id=trial.id)

    def _suggest_for(self, trial: Trial) -> Trial:
        """Suggest and save the config of our freshly claimed config-less trial (or report it failed
        when the suggestion raises); :class:`LeaseLost`/:class:`NotFound` if the trial was taken away."""
        assert trial.lease_token is not None
        search = self.get_search(trial.search_id)
        suggester = self.policy.suggester
        for attempt in range(SUGGESTION_ATTEMPTS):
            try:
                vals, config = suggester.suggest(self, search, trial)
                rule = suggester.in_flight_rule(search) if attempt + 1 < SUGGESTION_ATTEMPTS else None
            except Exception as exc:  # a broken space must fail its trial, not the worker
                return self.report(
                    trial.id,
                    trial.lease_token,
                    TrialResult.failed(f"suggestion failed: {type(exc).__name__}: {exc}"),
                )
            saved = self._set_suggestion(trial.id, trial.lease_token, vals, config, clash=rule)
            if saved is not None:
                return saved
        raise AssertionError("unreachable: the last attempt saves without a rule")

    @abc.abstractmethod
    def _claim_queued(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        """Atomically turn the oldest ``queued`` trial of a runnable search into ``running`` for us."""

    @abc.abstractmethod
    def _claim_new_slot(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        """Atomically take one slot of the fairest runnable search and insert its ``running`` trial
        (``config`` None, ``number`` = slot, ``seed`` from :func:`trial_seed`); marks the search running."""

    def _claim_new_suggested(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        """:meth:`_claim_new_slot`, whose trial ``claim`` then suggests for. A backend may instead make
        the suggestion for the slot first and save it with the trial in the same atomic step when that
        slot is the one taken (SQLite: one transaction per claim instead of two)."""
        return self._claim_new_slot(worker_id, lease_seconds, now, search_id, allow_code=allow_code)

    @abc.abstractmethod
    def _set_suggestion(
        self,
        trial_id: str,
        lease_token: str,
        vals: dict[str, list[Any]],
        config: dict[str, Any],
        *,
        clash: InFlightRule | None = None,
    ) -> Trial | None:
        """Save the suggested ``vals``/``config`` on our running trial; :class:`LeaseLost` if not ours.
        With ``clash``: nothing saved and None returned when ``clash(vals, others)`` holds for the
        ``vals`` of the search's other running trials (one started while the suggestion was made)."""

    def heartbeat(
        self,
        trial_id: str,
        lease_token: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        history: list[dict[str, Any]] | None = None,
        *,
        new_epochs: list[dict[str, Any]] | None = None,
        from_epoch: int | None = None,
    ) -> HeartbeatReply:
        """Extend the lease, save progress and say whether to stop. Progress is either ``new_epochs``
        (the epochs from index ``from_epoch`` on; see "History" in the contract) or ``history`` (the
        full per-epoch list so far, rewritten whole)."""
        now = self.clock()
        epochs: tuple[int, list[dict[str, Any]]] | None = None
        if new_epochs is not None:
            if history is not None:
                raise ValueError("heartbeat takes history or new_epochs, not both")
            if from_epoch is None or isinstance(from_epoch, bool) or from_epoch < 0:
                raise ValueError(f"from_epoch: must be an index >= 0 with new_epochs (got {from_epoch!r})")
            if new_epochs:
                epochs = (int(from_epoch), json_safe(list(new_epochs)))
        if history is not None:
            history = json_safe(cap_history(history)[0])
        try:
            trial = self._touch_lease(trial_id, lease_token, lease_seconds, history, now, epochs=epochs)
        except LeaseLost:
            current = self.get_trial(trial_id)
            if current.state == TrialState.CANCELLED:
                return HeartbeatReply(HeartbeatAction.STOP, "cancelled")
            return HeartbeatReply(HeartbeatAction.STOP, "lease_lost")
        if history or epochs:
            search = self.get_search(trial.search_id)
            if self.policy.pruner.should_prune(self, search, trial):
                return HeartbeatReply(HeartbeatAction.STOP, "pruned", trial.lease_expires_at)
        return HeartbeatReply(HeartbeatAction.CONTINUE, None, trial.lease_expires_at)

    @abc.abstractmethod
    def _touch_lease(
        self,
        trial_id: str,
        lease_token: str,
        lease_seconds: float,
        history: list[dict[str, Any]] | None,
        now: float,
        *,
        epochs: tuple[int, list[dict[str, Any]]] | None = None,
    ) -> Trial:
        """Atomically extend our lease (and save ``history`` whole, or append ``epochs`` = ``(k, new)``
        as ``history[:k] + new``) if ``trial`` is running under ``lease_token``; else
        :class:`LeaseLost` (:class:`NotFound` if there is no such trial). :class:`ValueError` (nothing
        saved) when ``k`` is past the stored history's length."""

    def report(self, trial_id: str, lease_token: str, result: TrialResult) -> Trial:
        """Finish our trial (see the contract); idempotent for the same token."""
        check_reportable(result)
        return self._report(trial_id, lease_token, result)

    def report_and_claim(
        self,
        trial_id: str,
        lease_token: str,
        result: TrialResult,
        worker_id: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        *,
        search_id: str | None = None,
        allow_code: bool = False,
    ) -> tuple[Trial, Trial | None]:
        """:meth:`report` our trial, then :meth:`claim` the next one (for any search, by the claim's
        rules: queued trials first, then the fairest search's next slot; ``search_id`` and
        ``allow_code`` as in :meth:`claim`): what a worker does between two trials, as one call.
        Returns ``(the reported trial, the claimed one or None)``.

        A report the store refuses (:class:`LeaseLost`: a stale token, a trial cancelled with its
        search; :class:`NotFound`; :class:`ValueError`) raises and claims nothing. A report repeated with
        the same token (its answer was lost) is counted once and the claim goes ahead, so the call may be
        retried whole after :class:`~hyperhive.errors.StoreUnavailable`. This default makes the two
        calls; a backend may do both in one atomic step (SQLite: one write transaction, the slot of a
        search whose suggestion reads the history taken config-less and suggested for after it)."""
        reported = self.report(trial_id, lease_token, result)
        claimed = self.claim(worker_id, lease_seconds, search_id=search_id, allow_code=allow_code)
        return reported, claimed

    def _history_free(self, search: Search) -> bool:
        """Whether the policy's suggestion for ``search`` depends only on the search and the slot
        (:meth:`~hyperhive.policy.Suggester.history_free`)."""
        return self.policy.suggester.history_free(search)

    def _report(self, trial_id: str, lease_token: str, result: TrialResult) -> Trial:
        """Read the trial and its search, then :meth:`_finish_trial`; a backend may do it all in one
        transaction (SQLite)."""
        trial = self.get_trial(trial_id)
        if trial.state.is_final:
            return reported_again(trial, lease_token)
        search = self.get_search(trial.search_id)
        return self._finish_trial(
            trial_id, lease_token, report_outcome(search, lease_token, result), self.clock()
        )

    @abc.abstractmethod
    def _finish_trial(self, trial_id: str, lease_token: str, outcome: Outcome, now: float) -> Trial:
        """Atomically: if the trial is running under ``lease_token`` set it final with these fields,
        update the search's counts, consecutive failures, best trial and status (completed/failed, the
        failed case cancelling the other non-final trials), as :mod:`hyperhive.store.rules` says. If
        the trial is already final with ``info.reported_token == outcome.info['reported_token']``
        return it unchanged. Else :class:`LeaseLost`."""

    @abc.abstractmethod
    def release(self, trial_id: str, lease_token: str) -> Trial:
        """Hand our running trial back to the queue (``queued``, no retry spent, ``attempts`` reduced by
        one); :class:`LeaseLost` if it is not ours."""

    @abc.abstractmethod
    def requeue_expired(self) -> int:
        """Requeue (or fail, once out of retries) every running trial whose lease expired before now.
        Returns how many trials this call changed. Safe to run concurrently from many processes.
        Expired trials are handled oldest expiry first, then by number; a trial cancelled during the
        sweep (an earlier one failed its search) is left cancelled."""

    # ------------------------------------------------------------------ reading trials
    @abc.abstractmethod
    def get_trial(self, trial_id: str) -> Trial:
        """The trial, or :class:`NotFound`."""

    @abc.abstractmethod
    def list_trials(
        self,
        search_id: str,
        *,
        state: TrialState | str | None = None,
        sort: str = "number",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trial]:
        """Trials of a search. ``sort`` is one of :data:`TRIAL_SORT_FIELDS`; sorting by ``value`` puts
        trials without a value last."""

    def list_trials_brief(
        self,
        search_id: str,
        *,
        state: TrialState | str | None = None,
        sort: str = "number",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trial]:
        """:meth:`list_trials` for readers of a page of trials (the API's trial list): the same trials
        in the same order, but ``history`` and ``info`` are left empty and ``lease_token`` unset, so a
        backend need not read or decode them. This default reads full trials and drops those fields;
        backends override it with a narrow read."""
        trials = self.list_trials(
            search_id, state=state, sort=sort, descending=descending, limit=limit, offset=offset
        )
        return [replace(t, history=[], info={}, lease_token=None) for t in trials]

    @abc.abstractmethod
    def count_trials(self, search_id: str, *, state: TrialState | str | None = None) -> int: ...

    @abc.abstractmethod
    def get_trials(self, trial_ids: Iterable[str]) -> list[Trial]:
        """The trials with these ids that exist (any order)."""

    @abc.abstractmethod
    def trial_versions(self, search_id: str) -> dict[str, tuple[int, TrialState]]:
        """``{trial_id: (version, state)}`` for every trial of the search: cheap, so that readers
        (the engine's history cache, the pruner) fetch only the trials that changed."""

    def trials_changed_since(self, search_id: str, cursor: Any) -> tuple[list[Trial], Any]:
        """The search's trials written since ``cursor`` (``None``: all of them) and the cursor to pass
        next time. Trials are never deleted one by one, so a reader that applies every batch holds the
        current state of each trial. Every write is returned by the first call made after it
        completed, once (MongoDB: a trial read while another write to it is in flight comes back again
        when that write lands; apply batches by trial id). This default compares
        :meth:`trial_versions` with the versions kept in the cursor; backends with a change feed
        override it (SQLite: a stamp per commit; MongoDB: a per-search counter, see
        :mod:`hyperhive.store.mongo_protocol`)."""
        known: dict[str, int] = cursor or {}
        versions = self.trial_versions(search_id)
        changed = [tid for tid, (v, _) in versions.items() if known.get(tid) != v]
        return self.get_trials(changed), {tid: v for tid, (v, _) in versions.items()}

    def trial_rows(self, search_id: str, cursor: Any = None) -> tuple[list[TrialRow], Any]:
        """Compact rows (:class:`~hyperhive.store.rows.TrialRow`) of the search's trials written since
        ``cursor`` (``None``: all of them), and the cursor to pass next time: the same change semantics
        as :meth:`trials_changed_since` (cursors of the two are not interchangeable), but a row holds
        only number, state, value, ``vals``, the number of history epochs, start/finish times, worker
        and version, so reading 10,000 trials does not decode their configurations, metrics and
        histories. This default reads full trials; backends override it with a narrow read."""
        trials, cursor = self.trials_changed_since(search_id, cursor)
        return [TrialRow.of(t) for t in trials], cursor

    def trial_heads(self, search_id: str, cursor: Any = None) -> tuple[list[TrialHead], Any]:
        """:meth:`trial_rows` without ``vals``, ``epochs`` and ``worker_id``
        (:class:`~hyperhive.store.rows.TrialHead`): what a view of every trial of a large search needs
        first (numbers, states, values, times), read without decoding any JSON. The same change
        semantics; its cursors are its own. This default derives them from :meth:`trial_rows`;
        backends override it with a narrower read."""
        rows, cursor = self.trial_rows(search_id, cursor)
        return [TrialHead.of(r) for r in rows], cursor

    def trial_rows_of(self, trial_ids: Iterable[str]) -> list[TrialRow]:
        """The compact rows (as in :meth:`trial_rows`) of these trials, in no particular order; ids of no
        trial are left out. This default reads full trials; backends override it with a narrow read."""
        return [TrialRow.of(t) for t in self.get_trials(trial_ids)]

    def best_trial(self, search_id: str) -> Trial | None:
        """The done trial with the best value for the search's objective mode, or ``None``."""
        search = self.get_search(search_id)
        if search.best_trial_id is None:
            return None
        return self.get_trial(search.best_trial_id)

    # ------------------------------------------------------------------ workers
    @abc.abstractmethod
    def register_worker(self, worker: WorkerInfo) -> None:
        """Insert or replace the worker's record."""

    @abc.abstractmethod
    def touch_worker(self, worker_id: str, *, status: str, current_trial_id: str | None) -> None:
        """Refresh ``last_seen`` and the worker's status / current trial."""

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerInfo]: ...

    # ------------------------------------------------------------------ tokens
    def create_token(self, name: str, admin: bool = False, code: bool = False) -> tuple[TokenInfo, str]:
        """Create an API token; returns its record and the secret (shown once, stored hashed).
        ``code``: the token may submit code (Hyperas scripts), see ``TokenInfo.code``."""
        secret = "hh_" + secrets.token_urlsafe(32)
        info = TokenInfo(id=new_id(), name=name, admin=admin, created_at=self.clock(), code=code)
        self._insert_token(info, hash_token(secret))
        return info, secret

    def authenticate(self, secret: str) -> TokenInfo | None:
        """The live token whose secret this is, or ``None``. Records when it was used: ``last_used_at``
        is written at most every :data:`TOKEN_TOUCH_SECONDS`, so authenticating stays a read."""
        info = self._token_by_hash(hash_token(secret))
        if info is None or info.revoked:
            return None
        now = self.clock()
        if info.last_used_at is None or now - info.last_used_at >= TOKEN_TOUCH_SECONDS:
            self._touch_token(info.id, now)
            info.last_used_at = now
        return info

    @abc.abstractmethod
    def _touch_token(self, token_id: str, now: float) -> None:
        """Set the token's ``last_used_at`` to ``now``."""

    @abc.abstractmethod
    def _insert_token(self, info: TokenInfo, token_hash: str) -> None: ...

    @abc.abstractmethod
    def _token_by_hash(self, token_hash: str) -> TokenInfo | None: ...

    @abc.abstractmethod
    def list_tokens(self) -> list[TokenInfo]: ...

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> None: ...

    # ------------------------------------------------------------------ datasets
    @abc.abstractmethod
    def save_dataset(self, info: DatasetInfo, chunks: Iterable[bytes]) -> DatasetInfo:
        """Store an uploaded dataset's bytes (in chunks) and its metadata."""

    @abc.abstractmethod
    def get_dataset(self, dataset_id: str) -> DatasetInfo: ...

    @abc.abstractmethod
    def list_datasets(self, *, owner: str | None = None) -> list[DatasetInfo]: ...

    @abc.abstractmethod
    def read_dataset(self, dataset_id: str) -> Iterator[bytes]:
        """The dataset's bytes, chunk by chunk, in order."""

    @abc.abstractmethod
    def delete_dataset(self, dataset_id: str) -> None: ...

    def searches_using_dataset(self, dataset_id: str) -> list[Search]:
        """The non-final searches whose document reads the uploaded dataset ``dataset_id``
        (``dataset: {upload: ID}``), newest first."""
        using: list[Search] = []
        for status in RUNNABLE_SEARCH_STATUSES:
            offset, page = 0, 500
            while True:
                batch = self.list_searches(status=status, limit=page, offset=offset)
                for s in batch:
                    dataset = s.document.get("dataset")
                    if isinstance(dataset, dict) and str(dataset.get("upload")) == dataset_id:
                        using.append(s)
                if len(batch) < page:
                    break
                offset += page
        return sorted(using, key=lambda s: s.created_at, reverse=True)

    # ------------------------------------------------------------------ quotas
    @abc.abstractmethod
    def get_quota(self, owner: str) -> dict[str, int | None] | None:
        """The admin's quota override for ``owner`` (only the limits it names), or ``None``."""

    def set_quota(self, owner: str, limits: dict[str, Any]) -> dict[str, int | None]:
        """Store (replace) ``owner``'s override; :class:`ValueError` naming a bad field."""
        from hyperhive.quotas import check_override

        if not isinstance(owner, str) or not owner.strip():
            raise ValueError("owner: must be a user (token) name")
        values = check_override(limits)
        self._put_quota(owner, values, self.clock())
        return values

    @abc.abstractmethod
    def _put_quota(self, owner: str, limits: dict[str, int | None], now: float) -> None: ...

    @abc.abstractmethod
    def delete_quota(self, owner: str) -> None:
        """Remove ``owner``'s override (the defaults apply again); :class:`NotFound` if there is none."""

    @abc.abstractmethod
    def list_quotas(self) -> dict[str, dict[str, int | None]]:
        """Every override, by owner name."""

    @abc.abstractmethod
    def usage(self, owner: str) -> Usage:
        """What ``owner`` holds now (see the contract)."""

    # ------------------------------------------------------------------ export / import
    def export_search(self, search_id: str) -> dict[str, Any]:
        """A JSON-serialisable bundle of the search and all its trials (``import_search`` reads it)."""
        search = self.get_search(search_id)
        trials = self.list_trials(search_id)
        return {
            "format": EXPORT_FORMAT,
            "search": search.to_dict(),
            "trials": [t.to_dict() for t in trials],
        }

    def import_search(
        self, bundle: dict[str, Any], *, owner: str | None = None, keep_owner: bool = False
    ) -> Search:
        """Insert an exported search with its trials, keeping ids; :class:`Conflict` if the search id or
        one of the trial ids exists, :class:`ValueError` naming the field if the bundle is inconsistent
        (a trial of another search, trial numbers not ``0..n-1``, more trials than ``max_trials``) or
        holds what a submitted search could not (:mod:`hyperhive.store.vetting`: the document validated
        again, trials' vals checked against the space and their configs against their vals).

        The search is owned by ``owner`` (None: only admins see it), not by whoever the file names,
        unless ``keep_owner`` (a file from this same deployment).

        The import keeps the contract's invariants whatever moment the export caught: running trials
        are imported as ``queued`` (their workers belong to the other store; ``version`` bumped, it is
        a change); a final search's open trials arrive ``cancelled``; a runnable search whose slots all
        finished arrives ``completed``; counts are recomputed from the trials."""
        from hyperhive.store.codec import search_from_dict, trial_from_dict
        from hyperhive.store.vetting import OwnerPolicy, vet_search

        if bundle.get("format") != EXPORT_FORMAT:
            raise ValueError(f"not a Hyperhive export (format {bundle.get('format')!r})")
        search = search_from_dict(bundle["search"])
        trials = [trial_from_dict(t) for t in bundle.get("trials", [])]
        _check_bundle(search, trials)
        vet_search(self, search, trials, OwnerPolicy(owner, keep_owner))
        now = self.clock()
        for t in trials:
            t.metrics, history = _capped(t.metrics, t.history, search.objective_metric)
            t.history, t.error, t.info = history or [], cap_error(t.error), cap_info(t.info)
            if t.state == TrialState.RUNNING:
                t.state, t.lease_token, t.lease_expires_at, t.worker_id = TrialState.QUEUED, None, None, None
                t.version += 1
            if search.status.is_final and not t.state.is_final:
                t.state, t.finished_at, t.updated_at = TrialState.CANCELLED, now, now
                t.version += 1
        try:
            self.get_search(search.id)
        except NotFound:
            pass
        else:
            raise Conflict(f"search {search.id} already exists in this store")
        search.counts = search.counts.__class__(
            **{s: sum(1 for t in trials if t.state == s) for s in TrialState}
        )
        if not search.status.is_final and search.counts.finished >= search.max_trials:
            search.status = SearchStatus.COMPLETED
            search.finished_at = max((t.finished_at for t in trials if t.finished_at), default=now)
            if not search.counts.done:
                failed = [t for t in trials if t.state == TrialState.FAILED]
                last = max(failed, key=lambda t: t.finished_at or 0.0).error if failed else None
                search.status, search.error = SearchStatus.FAILED, no_success_error(search.counts, last)
        self._insert_imported(search, trials)
        return self.get_search(search.id)

    @abc.abstractmethod
    def _insert_imported(self, search: Search, trials: list[Trial]) -> None: ...


def _check_bundle(search: Search, trials: list[Trial]) -> None:
    """:class:`ValueError` unless the trials can be this search's: its own, numbered ``0..n-1``, at most
    ``max_trials`` of them (what every claim, count and slot number relies on)."""
    for i, t in enumerate(trials):
        if t.search_id != search.id:
            raise ValueError(f"trials[{i}].search_id: {t.search_id!r} is not the search's id {search.id!r}")
    numbers = sorted(t.number for t in trials)
    if numbers != list(range(len(trials))):
        raise ValueError(f"trials[].number: must be 0..{len(trials) - 1}, each once (got {numbers})")
    if len(trials) > search.max_trials:
        raise ValueError(f"search.max_trials: {search.max_trials} is less than the {len(trials)} trials")
