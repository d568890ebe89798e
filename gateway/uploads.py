"""Receiving a multipart upload as a stream, straight to a temp file under JOBS_DIR.

Litestar's form parsing keeps a whole part in memory (up to a spool size) or under the
system temp dir and only limits the body as a whole; an upload of gigabytes should touch
neither memory nor another disk, so the body is parsed here, chunk by chunk, with the
``multipart`` push parser.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from litestar import Request
from multipart import MultipartError, MultipartSegment, PushMultipartParser

from pipeline.errors import BadRequest, TooLarge, UnsupportedMedia
from pipeline.files import uploads_dir
from stages.options import shown

#: Room the multipart framing and the option fields may take besides the file itself.
FORM_OVERHEAD = 64 * 1024
_MAX_FIELD_BYTES = 1024
_MAX_PARTS = 16
FILE_FIELD = "file"
#: The field that names the audio by URL instead (downloaded by the decode stage).
URL_FIELD = "url"
_MAX_URL_BYTES = 4096


@dataclass
class Upload:
    path: Path  # the temp file holding the uploaded bytes
    size: int
    filename: str | None  # sanitised, for display only
    fields: dict[str, str] = field(default_factory=dict)  # the last value of each field
    #: Every value of each field, in order: a form repeats a list's name (``name[]``).
    values: dict[str, list[str]] = field(default_factory=dict)
    sha256: str | None = None  # of the file's bytes, when asked for
    url: str | None = None  # the audio's URL, sent instead of a file (nothing at path)


def display_name(raw: str | None) -> str | None:
    """The client's file name reduced to something safe to show: never used as a path."""
    if not raw:
        return None
    name = re.split(r"[/\\]", raw)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or None


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the upload exceeds the limit of {limit} bytes "
                    "(MAX_UPLOAD_BYTES); send a smaller or compressed file")


def _boundary(request: Request[Any, Any, Any]) -> str:
    media_type, params = request.content_type
    if media_type != "multipart/form-data" or not params.get("boundary"):
        raise UnsupportedMedia("send the audio as multipart/form-data with the file in the "
                               f"field '{FILE_FIELD}' (e.g. curl -F file=@audio.wav) or its "
                               f"URL in the field '{URL_FIELD}'")
    return params["boundary"]


def _check_part(part: MultipartSegment, seen: set[str], accepted: Collection[str]) -> None:
    """Refuse a part the form cannot take, as soon as its headers are in."""
    name = part.name
    if not name:
        raise BadRequest("a part of the form has no name (Content-Disposition: form-data; "
                         "name=\"...\"): send the audio in the field 'file' and each option "
                         "in a field of its own name")
    if part.filename is not None and name != FILE_FIELD:
        raise BadRequest(f"the audio goes in the form field '{FILE_FIELD}', not "
                         f"{shown(name)} (e.g. curl -F file=@audio.wav)", field=name)
    if name not in (FILE_FIELD, URL_FIELD) and name not in accepted:
        raise BadRequest(f"unknown form field {shown(name)}; the fields are "
                         f"'{FILE_FIELD}' (the audio) or '{URL_FIELD}' (its URL), and the "
                         "options "
                         + ", ".join(accepted), field=name)
    # A list's name (``name[]``) repeats by convention, once per item.
    if name in seen and not name.endswith("[]"):
        raise BadRequest(f"form field {shown(name)} was sent more than once; send it once",
                         field=name)
    seen.add(name)


async def receive_upload(request: Request[Any, Any, Any], jobs_path: Path,
                         max_bytes: int, accepted: Collection[str], *,
                         digest: bool = False,
                         field_limits: Mapping[str, int] | None = None) -> Upload:
    """Stream the request's multipart body; the file part goes to a temp file (its
    SHA-256 in ``Upload.sha256`` with ``digest``), the fields named in ``accepted`` to
    ``Upload.fields``. Instead of the file, the form may give the audio's URL in ``url``
    (``Upload.url``; exactly one of the two). A field is at most 1 KiB long, unless
    ``field_limits`` gives it another limit (in bytes).

    Raises 413 as soon as the file passes ``max_bytes`` (or Content-Length says it will),
    400 on a malformed form: a part without a name, a field sent twice, a file in another
    field than ``file``, an unknown field. The caller owns (and must remove) ``Upload.path``.
    """
    boundary = _boundary(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise _too_large(max_bytes)

    folder = uploads_dir(jobs_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(16)}.part"
    upload = Upload(path=path, size=0, filename=None)
    sink: BinaryIO | None = None
    hasher = hashlib.sha256() if digest else None
    seen: set[str] = set()
    received = 0
    try:
        with PushMultipartParser(boundary, max_segment_count=_MAX_PARTS) as parser:
            part: MultipartSegment | None = None
            value = bytearray()
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes + FORM_OVERHEAD:
                    raise _too_large(max_bytes)
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        part, value = event, bytearray()
                        _check_part(part, seen, accepted)
                        if part.name == FILE_FIELD:
                            upload.filename = display_name(part.filename)
                            sink = path.open("wb")
                    elif event is None:
                        if part is not None and part.name != FILE_FIELD:
                            text = value.decode("utf-8", "replace")
                            upload.fields[part.name] = text
                            upload.values.setdefault(part.name, []).append(text)
                        part = None
                    elif part is not None and part.name == FILE_FIELD and sink is not None:
                        upload.size += len(event)
                        if upload.size > max_bytes:
                            raise _too_large(max_bytes)
                        # Local disk writes of one chunk are short; not worth a thread hop.
                        sink.write(event)
                        if hasher is not None:
                            hasher.update(event)
                    else:
                        value += event
                        name = part.name if part else "?"
                        limit = (field_limits or {}).get(name, _MAX_URL_BYTES if name == URL_FIELD
                                                         else _MAX_FIELD_BYTES)
                        if len(value) > limit:
                            raise BadRequest(f"form field {shown(name)} is longer than "
                                             f"{limit} bytes", field=name)
            if not parser.closed:
                raise BadRequest("the multipart body ended early; send the whole form")
    except MultipartError as exc:
        path.unlink(missing_ok=True)
        raise BadRequest(f"malformed multipart body ({exc}); send multipart/form-data "
                         f"with the file in the field '{FILE_FIELD}'") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        if sink is not None:
            sink.close()
    upload.url = upload.fields.pop(URL_FIELD, "").strip() or None
    upload.values.pop(URL_FIELD, None)
    if (FILE_FIELD in seen) == (upload.url is not None):
        path.unlink(missing_ok=True)
        both = FILE_FIELD in seen
        raise BadRequest(("both a file and a url: send" if both else "no audio: send")
                         + f" either the audio in the multipart field '{FILE_FIELD}' "
                         f"(curl -F file=@audio.wav) or its http(s) URL in the field "
                         f"'{URL_FIELD}' (curl -F url=https://example.com/audio.mp3)"
                         + (", not both" if both else ""), field=FILE_FIELD)
    if hasher is not None:
        upload.sha256 = hasher.hexdigest()
    return upload
