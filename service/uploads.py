"""Streaming a request body to a temporary file, without holding it in memory.

Two request shapes:
- ``multipart/form-data`` with one file part named ``file`` (and an optional text field ``name``);
- a raw body (``application/octet-stream`` or ``application/x-npz``), named by the ``?name=`` query.

The size limit is the middleware's (it counts the raw body as it arrives and raises 413); this module
writes the file part to ``directory`` while hashing it. The caller deletes the file.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from hyperhive.private_files import private_dir

MAX_FIELD_BYTES = 4096
RAW_TYPES = ("application/octet-stream", "application/x-npz", "application/zip")


@dataclass
class Upload:
    """A received file: where it lies, its size and SHA-256, the client's filename and text fields."""

    path: Path
    size: int = 0
    sha256: str = ""
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


class _Sink:
    """The multipart parser's callbacks: the ``file`` part to disk, small text fields to memory."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self.files = 0
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._name: str | None = None
        self._to_file = False
        self._buf = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self._headers, self._buf, self._to_file, self._name = {}, bytearray(), False, None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self._name = name
        if name == "file":
            self.files += 1
            if self.files > 1:
                raise invalid_file("send one file part named 'file', not several")
            self._to_file = True
            filename = params.get(b"filename")
            self.filename = filename.decode("utf-8", "replace") if filename else None

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._to_file:
            self.out.write(chunk)
            self.hash.update(chunk)
            self.size += len(chunk)
        else:
            self._buf += chunk
            if len(self._buf) > MAX_FIELD_BYTES:
                raise HTTPException(413, detail=f"form field {self._name!r} is over {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if not self._to_file and self._name:
            self.fields[self._name] = self._buf.decode("utf-8", "replace")


def invalid_file(msg: str) -> HTTPException:
    """A 422 shaped like every other (``ValidationErrorResponse``), naming the ``file`` part."""
    return HTTPException(
        422, detail=[{"loc": ["body", "file"], "path": "file", "msg": msg, "type": "upload_error"}]
    )


async def receive_file(request: Request, directory: Path) -> Upload:
    """Stream the request's file into a new file under ``directory`` (see the module docstring).
    415 for another content type; 422 when no file part came."""
    private_dir(directory)
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    ctype_s = ctype.decode("latin-1").lower()
    tmp = tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", suffix=".npz", delete=False)  # noqa: SIM115
    upload = Upload(path=Path(tmp.name))
    try:
        with tmp:
            if ctype_s == "multipart/form-data":
                boundary = params.get(b"boundary")
                if not boundary:
                    raise invalid_file("a multipart body needs a boundary in its Content-Type")
                sink = _Sink(tmp)
                parser = MultipartParser(boundary, sink.callbacks())  # type: ignore[arg-type]
                try:
                    async for chunk in request.stream():
                        parser.write(chunk)
                    parser.finalize()
                except MultipartParseError as exc:
                    raise invalid_file(f"malformed multipart body: {exc}") from None
                if sink.files == 0:
                    raise invalid_file("no file part named 'file' in the form")
                upload.size, upload.sha256 = sink.size, sink.hash.hexdigest()
                upload.filename, upload.fields = sink.filename, sink.fields
            elif ctype_s in RAW_TYPES:
                digest = hashlib.sha256()
                async for chunk in request.stream():
                    tmp.write(chunk)
                    digest.update(chunk)
                    upload.size += len(chunk)
                upload.sha256 = digest.hexdigest()
                name = request.query_params.get("name")
                if name:
                    upload.fields["name"] = name
            else:
                raise HTTPException(
                    415,
                    detail=f"unsupported content type {ctype_s!r}: send multipart/form-data with a 'file' "
                    "part, or the raw file as application/octet-stream",
                )
    except BaseException:
        upload.path.unlink(missing_ok=True)
        raise
    return upload
