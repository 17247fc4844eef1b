""":class:`PlainJSON`: a JSON answer encoded straight from plain data by pydantic's encoder.

A route returning a Response skips FastAPI's response-model pass (checking the returned models again,
then encoding them), which cost more than the store's reads on the hot read routes (benchmarks/load.py).
Those routes keep ``response_model=`` for the OpenAPI schema and send the dicts of
:mod:`hyperhive.service.schemas` (``*_dict``), which tests check against the models.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from starlette.responses import Response


class PlainJSON(Response):
    """JSON of dicts, lists, strings, numbers, booleans and None; a NaN or infinite float is ``null``, as
    the response models send it."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content, inf_nan_mode="null")
