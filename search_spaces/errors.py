"""Errors raised by the search-space language.

Every problem found in a user's document is a :class:`FieldError` with a readable location
(``model.layers[3].rate``, ``training.optimizer.learning_rate``, ``max_trials``; problems with the
document as a whole use ``<document>``). Validation gathers every error it can find and raises
one :class:`SpecError` holding them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DOCUMENT_LOC = "<document>"
MAX_ERRORS = 100
"""Most errors one SpecError lists; a last ``<document>`` error counts the rest."""


@dataclass(frozen=True)
class FieldError:
    """One problem: where it is (``loc``) and what is wrong (``msg``)."""

    loc: str
    msg: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}"


class SpecError(ValueError):
    """A search document is invalid; ``errors`` lists every problem found (never empty).

    ``str(err)`` is one ``loc: msg`` line per error, so it can be shown to users as is.
    """

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors) or [FieldError(DOCUMENT_LOC, "invalid document")]
        super().__init__("\n".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, loc: str, msg: str) -> SpecError:
        """A SpecError holding one error."""
        return cls([FieldError(loc, msg)])

    def as_dicts(self) -> list[dict[str, str]]:
        """The errors as ``[{"loc": ..., "msg": ...}]``, ready for a JSON response."""
        return [{"loc": e.loc, "msg": e.msg} for e in self.errors]


class ErrorList:
    """Collects FieldErrors while a document is checked; ``raise_if_any`` ends a stage.

    Keeps the first MAX_ERRORS distinct errors and counts the others.
    """

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self._seen: set[FieldError] = set()
        self.dropped = 0

    def add(self, loc: str, msg: str) -> None:
        """Record one error (duplicates of the same loc and msg are kept once)."""
        err = FieldError(loc or DOCUMENT_LOC, msg)
        if err in self._seen:
            return
        self._seen.add(err)
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(err)
        else:
            self.dropped += 1

    def __bool__(self) -> bool:
        return bool(self.errors)

    def __len__(self) -> int:
        return len(self.errors) + self.dropped

    def raise_if_any(self) -> None:
        """Raise a SpecError with everything collected so far, if anything was."""
        if self.errors:
            extra = f"{self.dropped} more errors not shown"
            raise SpecError(self.errors + ([FieldError(DOCUMENT_LOC, extra)] if self.dropped else []))
