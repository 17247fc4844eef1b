"""``/api/datasets``: upload ``.npz`` datasets (streamed to disk, size-limited, validated) and list them.

An upload is received into ``<home>/uploads/`` (never held in memory), checked by :mod:`hyperhive.npz`,
then copied into the store in 4 MiB chunks so that workers on any machine can read it; the temporary
file is removed in every case. Use the returned id in a search as ``dataset: {upload: <id>}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hyperhive.errors import Conflict, NotFound
from hyperhive.models import DatasetInfo
from hyperhive.npz import DatasetError, Limits, inspect_npz
from hyperhive.service.deps import CurrentUser, SettingsDep, StoreDep, may_see
from hyperhive.service.quotas import refuse_if_full, within_quota
from hyperhive.service.schemas import DatasetPublic, ValidationErrorResponse
from hyperhive.service.uploads import receive_file
from hyperhive.store.base import new_id

router = APIRouter(prefix="/api/datasets", tags=["datasets"])

CHUNK_BYTES = 4 << 20
MAX_NAME = 200
MAX_NAMED = 5
"""How many blocking searches a refused delete names."""

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string", "maxLength": MAX_NAME},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetPublic,
    openapi_extra=_UPLOAD_BODY,
    responses={
        403: {"description": "over the user's quota of stored bytes"},
        413: {"description": "over max_upload_bytes"},
        415: {"description": "neither multipart/form-data nor application/octet-stream"},
        422: {"model": ValidationErrorResponse, "description": "not a usable .npz dataset"},
    },
)
async def upload_dataset(
    request: Request, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> DatasetPublic | JSONResponse:
    """Upload an ``.npz`` (multipart part ``file``, optional field ``name``; or the raw bytes with
    ``?name=``). 201 with its id; 422 listing what is wrong with the file (a zip bomb, an array over
    the limits of ``max_upload_ratio``, ``max_dataset_bytes``, ``max_dataset_labels``,
    ``max_dataset_classes``, ...); 413 past the size limit; 403 over the user's stored-bytes quota."""
    await run_in_threadpool(refuse_if_full, store, settings, user)  # before reading a byte
    upload = await receive_file(request, settings.home / "uploads")
    try:
        try:
            meta = await run_in_threadpool(inspect_npz, upload.path, Limits.from_settings(settings))
        except DatasetError as exc:
            items = [
                {"loc": ["body", "file"] + ([] if k == "<file>" else [k]), "msg": m, "type": "dataset_error"}
                for k, m in exc.errors
            ]
            return JSONResponse({"detail": items}, status_code=422)
        name = (upload.fields.get("name") or Path(upload.filename or "dataset.npz").name).strip()[:MAX_NAME]
        info = DatasetInfo(
            id=new_id(),
            name=name or "dataset.npz",
            owner=user.name,
            size=upload.size,
            sha256=upload.sha256,
            created_at=time.time(),
            meta=meta,
        )

        def save() -> DatasetInfo:
            with within_quota(store, settings, user, stored_bytes=upload.size):
                return store.save_dataset(info, _chunks(upload.path))

        saved = await run_in_threadpool(save)
    finally:
        upload.path.unlink(missing_ok=True)
    return DatasetPublic.from_info(saved)


@router.get("", response_model=list[DatasetPublic])
def list_datasets(store: StoreDep, user: CurrentUser) -> list[DatasetPublic]:
    """The datasets you uploaded (an admin: everyone's), newest first."""
    items = store.list_datasets(owner=None if user.admin else user.name)
    return [DatasetPublic.from_info(d) for d in items]


def _owned(store: StoreDep, user: CurrentUser, dataset_id: str) -> DatasetInfo:
    info = store.get_dataset(dataset_id)
    if not may_see(user, info.owner):
        raise NotFound("dataset", dataset_id)
    return info


@router.get(
    "/{dataset_id}", response_model=DatasetPublic, responses={404: {"description": "no such dataset"}}
)
def get_dataset(dataset_id: str, store: StoreDep, user: CurrentUser) -> DatasetPublic:
    """One uploaded dataset's metadata."""
    return DatasetPublic.from_info(_owned(store, user, dataset_id))


@router.delete(
    "/{dataset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        404: {"description": "no such dataset"},
        409: {"description": "a search that is not finished yet reads this dataset"},
    },
)
def delete_dataset(dataset_id: str, store: StoreDep, user: CurrentUser) -> Response:
    """Delete an uploaded dataset. 409 naming the searches (id and name) while a search that is not
    finished (pending or running) reads it: cancel them first, or wait until they end."""
    _owned(store, user, dataset_id)
    using = store.searches_using_dataset(dataset_id)
    if using:
        names = ", ".join(f"{s.id} ({s.name!r}, {s.status})" for s in using[:MAX_NAMED])
        more = f" and {len(using) - MAX_NAMED} more" if len(using) > MAX_NAMED else ""
        raise Conflict(
            f"dataset {dataset_id} is used by {len(using)} unfinished search(es): {names}{more}; "
            "cancel them (hyperhive cancel ID) or wait until they finish, then delete it"
        )
    store.delete_dataset(dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
