"""The policy a store applies: which configuration a claimed trial gets, and when a running trial
stops early.

The store persists and moves records atomically; it does not decide. :meth:`Store.claim
<hyperhive.store.base.Store.claim>` asks the policy's :class:`Suggester` for a new trial's
configuration and :meth:`Store.heartbeat <hyperhive.store.base.Store.heartbeat>` asks its
:class:`Pruner` whether to stop (as Optuna's samplers and pruners read the storage; the storage hosts
neither). Both read the store through :class:`TrialFeed` only, so a backend needs nothing but its
atomic operations, and this module imports no backend and no hyperopt: :func:`default_policy` loads
hyperopt's engine (:mod:`hyperhive.engine`) and the median pruner (:mod:`hyperhive.pruning`) when a
store first needs them. :func:`hyperhive.store.open_store` takes a policy to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hyperhive.models import Search, Trial


class TrialFeed(Protocol):
    """What a policy reads from a store: a search's trials written since a cursor."""

    def trials_changed_since(self, search_id: str, cursor: Any) -> tuple[list[Trial], Any]: ...


class Suggester(Protocol):
    """Proposes the configuration of a claimed trial from its search's history."""

    def suggest(
        self, feed: TrialFeed, search: Search, trial: Trial
    ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
        """``(vals, config)``: hyperopt-style ``{label: [value] | []}`` and the document-shaped config."""
        ...

    def history_free(self, search: Search) -> bool:
        """Whether the suggestion for ``search`` depends only on the search and the slot (its number and
        seed), never on other trials (random search): a store may then make it before the previous
        trial's report lands, or inside a write transaction."""
        ...

    def in_flight_rule(self, search: Search) -> InFlightRule | None:
        """The rule a saved suggestion must pass against the trials in flight that its suggestion did
        not see (they started while it was made): ``rule(vals, others)`` is True when ``vals`` should be
        suggested again (it nearly duplicates one of ``others``); ``None`` when the search's algorithm
        does not care (random search)."""
        ...

    def forget(self, search_id: str) -> None:
        """Drop what is cached for a deleted search."""
        ...


InFlightRule = Callable[[dict[str, list[Any]], list[dict[str, list[Any]]]], bool]
"""``rule(vals, others)``: whether the suggestion ``vals`` clashes with the ``vals`` of trials in flight."""


class Pruner(Protocol):
    """Decides whether a running trial whose history just grew should stop."""

    def should_prune(self, feed: TrialFeed, search: Search, trial: Trial) -> bool: ...

    def forget(self, search_id: str) -> None: ...


@dataclass
class Policy:
    """A store's suggester and pruner (one per store object: each caches per-search state)."""

    suggester: Suggester
    pruner: Pruner

    def forget(self, search_id: str) -> None:
        self.suggester.forget(search_id)
        self.pruner.forget(search_id)


def default_policy() -> Policy:
    """hyperopt's algorithms (the search's ``algorithm``) and the median pruner (``training.pruning``)."""
    from hyperhive.engine import Engine
    from hyperhive.pruning import MedianPruner

    return Policy(Engine(), MedianPruner())
