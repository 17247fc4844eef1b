"""The MongoDB store's two-phase operations: how a trial change and its search's counters stay
consistent without transactions, and the repair sweep that finishes what a dead process left.

Why no transactions
-------------------
Every state change is one atomic single-document update: a trial moves with ``find_one_and_update``
whose filter holds the state it expects (and, for a lease holder, the lease token), so two workers, a
worker and a sweeper, or two sweepers can never both move the same trial. Multi-document transactions
would need a replica set (and mongomock has none); they are not needed, because the only other
document a change touches is its search's counters, and those updates are made *idempotent and
recoverable* as below (the "two-phase commit" pattern MongoDB documented before it had transactions).

Trial transitions (queued -> running -> final, requeue, release, cancel)
    1. The trial's ``find_one_and_update`` (expected state and token in the filter) also pushes an *op*
       onto the trial's ``pending`` list: an id and the counter deltas the change implies.
    2. The op is applied to the search with one update whose filter is ``ops != op.id`` and which pushes
       ``op.id`` onto the search's ``ops`` list (the last :data:`OPS_KEPT`): applying an op twice matches
       nothing, so counts are never moved twice.
    3. Follow-ups that are idempotent by construction: the best trial (a conditional ``$set`` that only
       matches while ``best_value`` is worse), completion (``status`` runnable and ``unfinished <= 0``:
       ``completed`` with ``counts.done > 0``, else ``failed``), failure after
       ``max_consecutive_failures`` or at once for an op carrying a ``search_error`` (which then cancels
       the open trials, each through step 1). The sweep completes a finished search only when none of
       its trials holds an op: the last op's follow-ups may fail the search instead.
    4. The op is pulled from the trial's ``pending`` list.
    A process that dies between 1 and 4 leaves the op on the trial; the repair sweep (run by every
    process, see :meth:`MongoProtocol.repair`) replays ops older than ``repair_grace`` seconds through
    steps 2-4. A replay is exact unless more than :data:`OPS_KEPT` other ops were applied to the same
    search between the crash and the replay (seconds, in practice); that bound is the one assumption.

Claiming a new slot (two steps, no slot taken twice, none lost)
    A. Read the fairest runnable search (fewest running trials, then least recently claimed) and take
       its slot ``k = slots_taken`` with a compare-and-set update: filter ``slots_taken == k`` and
       ``slots_left > 0``, update ``$inc slots_taken/counts.running, slots_left -1`` and ``$push`` a
       *pending slot* ``{trial_id, number: k, lease_token, worker_id, lease_expires_at, at}`` onto the
       search. Only one claimer can win the compare-and-set for ``k``: a slot is never taken twice, and
       the losers read again.
    B. Insert the trial, built deterministically from the pending slot (``running``, no config yet).
    C. Pull the pending slot from the search.
    If the claimer dies after A, the repair sweep finds the pending slot (older than ``repair_grace``),
    inserts the very same trial (a duplicate-key error means it exists already) and pulls the entry:
    the slot is not lost, and the trial is later requeued like any trial whose lease expired, so the
    next claimer makes its suggestion. A claimer slower than the sweep meets the duplicate-key error,
    and keeps the trial only if it still holds the lease.

Change feed (``seq``: what ``trials_changed_since`` and ``trial_rows`` read)
    Every trial write is stamped with a number from a per-search counter (``seq`` on the search, taken
    with ``$inc`` and read back in the same ``find_one_and_update``), so a reader asks for the trials
    numbered above what it has seen (index ``(search_id, seq)``) instead of comparing every trial's
    version. A number is taken *after* the write it stamps, while the write holds an op on the trial,
    and written onto the trial (``$max``) in the update that pulls that op:

    - transitions: step 2 above takes the number, step 4 stamps it (no extra round trip);
    - a suggestion or a heartbeat pushes a *marker* (an op that moves no counter) with its write,
      then takes a number and stamps it (a heartbeat reads the search's status in the same update);
    - a claimed slot's trial is inserted holding a marker (and the number the search had, a floor),
      step C takes its number, and the claimer's suggestion stamps it in the same write;
    - an import numbers its trials ``1..n`` and sets the search's counter to ``n``.

    Two writes can take numbers ``n < n + 1`` and stamp them in the other order, so a reader must not
    move past a number that may still land. It reads the search's counter ``S`` first, then the
    trials numbered above its cursor *or holding an op*; its new horizon is ``S``, lowered to the
    current number of each trial holding an op (a write in flight gets a number above that), never
    below the old horizon. Every write is then read after it lands: one with a number above ``S``
    lands above the horizon; one numbered ``<= S`` but not stamped still holds its op, which caps
    the horizon below its number. A trial read above the horizon is remembered with its number so
    it is not returned again unchanged. A write read while still in flight is returned again once
    stamped: exactly once when nothing is in flight, at least once under concurrent writers (readers
    apply a batch by trial id, so a repeat changes nothing). An op left by a dead process holds the
    horizon back until the repair sweep replays it (a marker replay takes a number and stamps it).
    Trials and searches written before the feed existed have no ``seq``: a first read (cursor
    ``None``) reads them all, and their next write stamps them.

Requeue with many sweepers
    Expired leases are found with the ``(state, lease_expires_at)`` index and each trial is moved with
    a filter on ``state: running``, its lease token and ``lease_expires_at < now``: exactly one sweeper
    moves it, a heartbeat that renewed the lease in between wins, and a report under the same token wins.

Tests run against mongomock, whose ``find_one_and_update`` is a find followed by an update: each call on
a mongomock client holds a lock here, which gives it the single-document atomicity of a server. A call
whose write reached the server but whose answer was lost, and which the retry then finds changed, is
recovered like a crash: the op or pending slot it recorded is finished by the repair sweep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from hyperhive.errors import NotFound
from hyperhive.models import SearchStatus, Trial, TrialState
from hyperhive.store import rules
from hyperhive.store.base import new_id, new_lease_token, trial_seed
from hyperhive.store.mongo_connection import MongoConnection
from hyperhive.store.mongo_documents import (
    AFTER,
    CANCELLED,
    FAIR,
    FINAL_SEARCH,
    OPEN,
    QUEUED,
    RUNNABLE,
    RUNNING,
    SEARCH_FIELDS,
    TRIAL_FIELDS,
    Doc,
    cleared_lease,
    doc_counters,
    trial_doc_of,
    trial_of,
)
from hyperhive.store.rules import Finished

OPS_KEPT = 1000
"""How many applied op ids a search remembers (see the module docstring)."""
CAS_ATTEMPTS = 200
HELD_KEPT = 10_000
"""At most this many held stamps (see :attr:`MongoProtocol._held`) are kept in memory."""


def finished_of(op: Doc, trial_id: str) -> Finished | None:
    """The trial turning final that an op records, or ``None`` for an op that finishes no trial (ops
    written before ``state`` was recorded are read from their failure error and best value)."""
    if "state" in op:
        state = TrialState(op["state"])
    elif op.get("fail_error") is not None:
        state = TrialState.FAILED
    elif op.get("best") is not None:
        state = TrialState.DONE
    else:
        return None
    if not state.is_final:
        return None
    return Finished(state, trial_id, op.get("best"), op.get("fail_error"), op.get("search_error"))


class MongoProtocol(MongoConnection):
    """The steps of the protocol in the module docstring, and :meth:`repair`. The collections are set
    by :class:`~hyperhive.store.mongo.MongoStore`."""

    clock: Callable[[], float]
    repair_grace: float
    _searches: Any
    _trials: Any
    _held: dict[str, tuple[str, int]]
    """Trial id -> (marker id, change number) of the trials this process inserted for a claim and has
    not stamped yet: the suggestion (or the report) that follows writes the stamp."""

    def _find_search(self, search_id: str, projection: Doc | None = None) -> Doc:
        doc = self._call(
            "read search", self._searches.find_one, {"_id": search_id}, projection or SEARCH_FIELDS
        )
        if doc is None:
            raise NotFound("search", search_id)
        return dict(doc)

    def _find_trial(self, trial_id: str) -> Doc:
        doc = self._call("read trial", self._trials.find_one, {"_id": trial_id}, TRIAL_FIELDS)
        if doc is None:
            raise NotFound("trial", trial_id)
        return dict(doc)

    # ------------------------------------------------------------------ ops: trial change + search delta
    @staticmethod
    def _op(
        now: float,
        inc: dict[str, int],
        *,
        set_: Doc | None = None,
        best: float | None = None,
        fail_error: str | None = None,
    ) -> Doc:
        """The search-side effect of one trial transition, stored on the trial until applied."""
        return {
            "id": new_id(),
            "at": now,
            "inc": [[k, v] for k, v in inc.items()],
            "set": [[k, v] for k, v in {"updated_at": now, **(set_ or {})}.items()],
            "best": best,
            "fail_error": fail_error,
        }

    @staticmethod
    def _marker(now: float) -> Doc:
        """An op that moves no counter: it only holds a trial write until the write is stamped with the
        search's next change number (see "Change feed" in the module docstring)."""
        return {"id": new_id(), "at": now}

    def _move(
        self,
        what: str,
        flt: Doc,
        set_: Doc,
        op: Doc,
        *,
        inc: dict[str, int] | None = None,
        also: str | None = None,
    ) -> Doc | None:
        """Atomically change the one trial matching ``flt`` and record ``op`` on it; then apply ``op``
        (pulling marker ``also`` with it). Returns the changed trial's document, or ``None`` if no
        trial matched (state or token moved)."""
        update = {"$set": set_, "$inc": {"version": 1, **(inc or {})}, "$push": {"pending": op}}
        doc = self._call(
            what,
            self._trials.find_one_and_update,
            flt,
            update,
            projection=TRIAL_FIELDS,
            return_document=AFTER,
        )
        if doc is None:
            return None
        self._apply_op(doc["search_id"], doc["_id"], op, also=also)
        return dict(doc)

    def _apply_op(self, search_id: str, trial_id: str, op: Doc, *, also: str | None = None) -> None:
        """Steps 2-4 of the module docstring; safe to run any number of times for one op. Step 2 also
        takes the search's next change number, which step 4 stamps on the trial as it pulls the op
        (and ``also``, a marker this change covers)."""
        ids = [op["id"]] if also is None else [op["id"], also]
        if "inc" not in op:  # a marker: a change number and nothing else
            self._stamp(trial_id, ids, self._next_seq(search_id))
            return
        update: Doc = {"$push": {"ops": {"$each": [op["id"]], "$slice": -OPS_KEPT}}, "$set": dict(op["set"])}
        update["$inc"] = {**dict(op["inc"]), "seq": 1}
        doc = self._call(
            "update search counters",
            self._searches.find_one_and_update,
            {"_id": search_id, "ops": {"$ne": op["id"]}},
            update,
            projection=SEARCH_FIELDS,
            return_document=AFTER,
        )
        if doc is None:  # applied before (a replay), or the search is gone: a new change number only
            doc = self._call(
                "read search",
                self._searches.find_one_and_update,
                {"_id": search_id},
                {"$inc": {"seq": 1}},
                projection=SEARCH_FIELDS,
                return_document=AFTER,
            )
        if doc is not None:
            self._settle(doc, trial_id, op)
        self._stamp(trial_id, ids, None if doc is None else int(doc["seq"]))

    def _next_seq(self, search_id: str) -> int | None:
        """Take the search's next change number (``None`` if the search is gone)."""
        doc = self._call(
            "take change number",
            self._searches.find_one_and_update,
            {"_id": search_id},
            {"$inc": {"seq": 1}},
            projection={"seq": 1},
            return_document=AFTER,
        )
        return None if doc is None else int(doc["seq"])

    def _stamp(self, trial_id: str, op_ids: list[str], seq: int | None) -> None:
        """Step 4: pull the ops from the trial and stamp the trial with change number ``seq`` (never
        lowering it), in one update: a reader sees the change number only once nothing holds it back."""
        pull = {"id": op_ids[0]} if len(op_ids) == 1 else {"id": {"$in": op_ids}}
        update: Doc = {"$pull": {"pending": pull}}
        if seq is not None:
            update["$max"] = {"seq": seq}
        self._call("clear op", self._trials.update_one, {"_id": trial_id}, update)

    def _settle(self, doc: Doc, trial_id: str, op: Doc) -> None:
        """Idempotent follow-ups of an op (the :mod:`~hyperhive.store.rules` applied to the search as the
        op left it): best trial, failure at once, completion. Each is a conditional update whose filter
        re-checks the rule's condition, so concurrent settles and replays agree."""
        sid, now, mode = doc["_id"], self.clock(), doc["objective_mode"]
        finished = finished_of(op, trial_id)
        if finished is not None and rules.becomes_best(finished, doc.get("best_value"), mode):
            best = finished.value
            worse = {"$gt": best} if mode == "min" else {"$lt": best}
            self._call(
                "update best trial",
                self._searches.update_one,
                {"_id": sid, "$or": [{"best_value": None}, {"best_value": worse}]},
                {"$set": {"best_value": best, "best_trial_id": trial_id}},
            )
        status, counters = SearchStatus(doc["status"]), doc_counters(doc)
        limits = {
            "max_trials": doc["max_trials"],
            "max_consecutive_failures": doc["max_consecutive_failures"],
        }
        verdict = rules.verdict(status, counters, finished=finished, **limits)
        if verdict is not None and verdict.cancel_open:
            flt: Doc = {"_id": sid, "status": {"$in": RUNNABLE}}
            if finished is None or finished.search_error is None:
                flt["consecutive_failures"] = {"$gte": limits["max_consecutive_failures"]}
            sets = {
                "status": str(verdict.status),
                "finished_at": now,
                "updated_at": now,
                "error": verdict.error,
            }
            if self._call("fail search", self._searches.update_one, flt, {"$set": sets}).modified_count:
                self._cancel_open_trials(sid)
                return
            verdict = rules.verdict(status, counters, **limits)  # the budget alone
        if verdict is not None:
            self._complete_if_done(sid, op.get("fail_error"))

    def _complete_if_done(self, search_id: str, last_error: str | None = None) -> None:
        """Mark a runnable search whose budget is spent ``completed``, or ``failed`` when none of its
        trials is done (``last_error``: the error of the trial that spent it, if it failed)."""
        now = self.clock()
        spent: Doc = {"_id": search_id, "status": {"$in": RUNNABLE}, "unfinished": {"$lte": 0}}
        res = self._call(
            "complete search",
            self._searches.update_one,
            {**spent, "counts.done": {"$gt": 0}},
            {"$set": {"status": str(SearchStatus.COMPLETED), "finished_at": now, "updated_at": now}},
        )
        if res.modified_count:
            return
        fields = {"status": 1, "counts": 1, "max_trials": 1, "max_consecutive_failures": 1}
        doc = self._call("read search", self._searches.find_one, {**spent, "counts.done": 0}, fields)
        if doc is None:
            return
        verdict = rules.verdict(
            SearchStatus(doc["status"]),
            doc_counters(doc),
            max_trials=doc["max_trials"],
            max_consecutive_failures=doc["max_consecutive_failures"],
            last_error=lambda: self._last_failed_error(search_id) if last_error is None else last_error,
        )
        if verdict is None or verdict.status != SearchStatus.FAILED:
            return
        self._call(
            "fail search",
            self._searches.update_one,
            {**spent, "counts.done": 0},
            {
                "$set": {
                    "status": str(SearchStatus.FAILED),
                    "finished_at": now,
                    "updated_at": now,
                    "error": verdict.error,
                }
            },
        )

    def _last_failed_error(self, search_id: str) -> str | None:
        """The error of the search's most recently finished failed trial."""
        failed = self._find(
            "read last failed trial",
            self._trials,
            {"search_id": search_id, "state": str(TrialState.FAILED)},
            {"error": 1},
            sort=[("finished_at", DESCENDING), ("number", DESCENDING)],
            limit=1,
        )
        return failed[0].get("error") if failed else None

    def _cancel_open_trials(self, search_id: str) -> int:
        """Cancel every queued or running trial of the search, one conditional move each."""
        changed = 0
        for _ in range(CAS_ATTEMPTS):
            found = self._find(
                "list open trials",
                self._trials,
                {"search_id": search_id, "state": {"$in": OPEN}},
                {"state": 1},
            )
            if not found:
                break
            for t in found:
                changed += self._cancel_trial(t["_id"], {}, t["state"]) is not None
        return changed

    def _cancel_trial(self, trial_id: str, flt: Doc, state: str) -> Doc | None:
        """Move the trial from ``state`` (and ``flt``) to ``cancelled``."""
        now = self.clock()
        op = self._op(now, {f"counts.{state}": -1, "counts.cancelled": 1, "unfinished": -1})
        sets = cleared_lease(now, state=CANCELLED, finished_at=now)
        return self._move("cancel trial", {**flt, "_id": trial_id, "state": state}, sets, op)

    def _claim_new_slot(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        flt: Doc = {"status": {"$in": RUNNABLE}, "slots_left": {"$gt": 0}}
        if search_id:
            flt["_id"] = search_id
        if not allow_code:
            flt["code"] = {"$ne": True}
        for attempt in range(CAS_ATTEMPTS):
            fields = {"seed": 1, "slots_taken": 1, "started_at": 1, "seq": 1}
            cand = self._call("find runnable search", self._searches.find_one, flt, fields, sort=FAIR)
            if cand is None:
                return None
            number = int(cand["slots_taken"])
            slot = {
                "trial_id": new_id(),
                "number": number,
                "worker_id": worker_id,
                "lease_token": new_lease_token(),
                "lease_expires_at": now + lease_seconds,
                "at": now,
                "floor": int(cand.get("seq") or 0),  # below the change number its trial will get
            }
            sets: Doc = {"status": str(SearchStatus.RUNNING), "last_claim_at": now, "updated_at": now}
            if cand.get("started_at") is None:
                sets["started_at"] = now
            res = self._call(
                "take slot",
                self._searches.update_one,
                {**flt, "_id": cand["_id"], "slots_taken": number},
                {
                    "$inc": {"slots_taken": 1, "slots_left": -1, "counts.running": 1},
                    "$set": sets,
                    "$push": {"pending_slots": slot},
                },
            )
            if res.modified_count:
                return self._insert_slot_trial(cand["_id"], int(cand["seed"]), slot, hold=True)
            time.sleep(random.random() * 0.002 * min(attempt + 1, 10))  # lost the race for this slot
        return None

    def _insert_slot_trial(
        self, search_id: str, search_seed: int, slot: Doc, *, hold: bool = False
    ) -> Trial | None:
        """Steps B and C: insert the trial a pending slot describes (holding a marker, see "Change
        feed"), then drop the pending slot, taking the change number the marker is stamped with. With
        ``hold`` the stamp waits for the claimer's suggestion (:meth:`_set_suggestion` writes both at
        once; :attr:`_held` keeps them until then). Returns the trial if the slot's lease is still held
        on it, else ``None``."""
        number = int(slot["number"])
        trial: Trial | None = Trial(
            id=slot["trial_id"],
            search_id=search_id,
            number=number,
            state=TrialState.RUNNING,
            config=None,
            vals=None,
            seed=trial_seed(search_seed, number),
            created_at=slot["at"],
            updated_at=slot["at"],
            worker_id=slot["worker_id"],
            lease_token=slot["lease_token"],
            lease_expires_at=slot["lease_expires_at"],
            attempts=1,
            started_at=slot["at"],
        )
        assert trial is not None
        marker: Doc | None = self._marker(self.clock())
        doc = {**trial_doc_of(trial, seq=int(slot.get("floor", 0))), "pending": [marker]}
        try:
            self._call("insert trial", self._trials.insert_one, doc)
        except DuplicateKeyError:  # the sweep (or our own retried write) inserted it already
            marker = None
            current = self._call("read trial", self._trials.find_one, {"_id": slot["trial_id"]}, TRIAL_FIELDS)
            trial = None if current is None else trial_of(current)
        dropped = self._call(
            "drop pending slot",
            self._searches.find_one_and_update,
            {"_id": search_id},
            {"$pull": {"pending_slots": {"trial_id": slot["trial_id"]}}, "$inc": {"seq": 1}},
            projection={"seq": 1},
            return_document=AFTER,
        )
        ours = (
            trial is not None
            and trial.state == TrialState.RUNNING
            and trial.lease_token == slot["lease_token"]
        )
        if marker is not None:
            seq = None if dropped is None else int(dropped["seq"])
            if hold and ours and seq is not None:
                if len(self._held) > HELD_KEPT:  # claimers that never came back: the sweep stamps them
                    self._held.clear()
                self._held[slot["trial_id"]] = (marker["id"], seq)
            else:
                self._stamp(slot["trial_id"], [marker["id"]], seq)
        return trial if ours else None

    # ------------------------------------------------------------------ finishing, releasing, requeueing
    def _finish_op(
        self,
        state: TrialState,
        value: float | None,
        error: str | None,
        now: float,
        *,
        search_error: str | None = None,
    ) -> Doc:
        """The op of a trial turning final (its counter deltas from :mod:`~hyperhive.store.rules`);
        ``search_error``: the error that fails the search at once."""
        inc = {f"counts.{s}": n for s, n in rules.count_changes(state).items()}
        inc["unfinished"] = -1
        set_: Doc = {}
        change = rules.consecutive_change(state)
        if change:
            inc["consecutive_failures"] = change
        elif change == 0:
            set_["consecutive_failures"] = 0
        best = value if state == TrialState.DONE else None
        fail_error = (error or "") if state == TrialState.FAILED else None
        op = self._op(now, inc, set_=set_, best=best, fail_error=fail_error)
        op["state"] = str(state)
        if search_error is not None and state == TrialState.FAILED:
            op["search_error"] = search_error
        return op

    def _requeue_one(self, t: Doc, search: Doc | None, now: float) -> int:
        """Requeue, fail ("worker lost") or cancel one expired trial; 1 if this call moved it."""
        flt = {
            "_id": t["_id"],
            "state": RUNNING,
            "lease_token": t["lease_token"],
            "lease_expires_at": {"$lt": now},
        }
        if search is None:
            return int(self._call("delete orphan trial", self._trials.delete_one, flt).deleted_count)
        if search["status"] in FINAL_SEARCH:
            return int(self._cancel_trial(t["_id"], flt, RUNNING) is not None)
        if t["attempts"] <= search["max_retries"]:
            op = self._op(now, {"counts.running": -1, "counts.queued": 1})
            sets = cleared_lease(now, state=QUEUED, worker_id=None)
        else:
            error = rules.worker_lost_error(t["attempts"], search["max_retries"], t.get("worker_id"))
            op = self._finish_op(TrialState.FAILED, None, error, now)
            sets = cleared_lease(now, state=str(TrialState.FAILED), error=error, finished_at=now)
        return int(self._move("requeue expired lease", flt, sets, op) is not None)

    def repair(self, grace: float | None = None) -> int:
        """Finish what processes that died mid-change left behind (see the module docstring): trials of
        pending slots, unapplied ops, open trials of final searches, finished searches not marked so.
        Safe to run concurrently from many processes. Returns how many repairs it made."""
        cutoff = self.clock() - (self.repair_grace if grace is None else grace)
        repaired = 0
        flt: Doc = {"pending_slots.at": {"$lt": cutoff}}
        for s in self._find("find pending slots", self._searches, flt, {"pending_slots": 1, "seed": 1}):
            for slot in s.get("pending_slots") or []:
                if slot["at"] < cutoff:
                    self._insert_slot_trial(s["_id"], int(s["seed"]), slot)
                    repaired += 1
        for t in self._find(
            "find pending ops", self._trials, {"pending.at": {"$lt": cutoff}}, {"search_id": 1, "pending": 1}
        ):
            for op in t.get("pending") or []:
                if op["at"] < cutoff:
                    self._apply_op(t["search_id"], t["_id"], op)
                    repaired += 1
        flt = {
            "status": {"$in": FINAL_SEARCH},
            "$or": [{"counts.queued": {"$gt": 0}}, {"counts.running": {"$gt": 0}}],
        }
        for s in self._find("find final searches with open trials", self._searches, flt, {"_id": 1}):
            repaired += self._cancel_open_trials(s["_id"])
        flt = {"status": {"$in": RUNNABLE}, "unfinished": {"$lte": 0}}
        for s in self._find("find finished searches", self._searches, flt, {"_id": 1}):
            unsettled = {"search_id": s["_id"], "pending.0": {"$exists": True}}
            if self._call("find unsettled ops", self._trials.find_one, unsettled, {"_id": 1}) is not None:
                continue  # an op still settling decides between completed and failed (see _settle)
            self._complete_if_done(s["_id"])
            repaired += 1
        return repaired
