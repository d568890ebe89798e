"""A job's audio for players: the decoded WAV (or the upload, until it is decoded), served
in byte ranges so that a browser's <audio> element can seek without downloading it all."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from litestar import get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Stream

from gateway.apidocs import errors
from gateway.jobs import find_job
from gateway.services import Services
from pipeline.errors import Gone, RangeNotSatisfiable
from stages import artifacts

#: Bytes read from the file per chunk of the body: a player asks for ranges of about a
#: megabyte, so this keeps a request's memory small without many tiny writes.
CHUNK_BYTES = 64 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) a Range header asks for, or None for the whole
    file (no header, one of another unit or several ranges, which a server may ignore).

    Raises RangeNotSatisfiable for a range outside the file.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        if header.strip().startswith("bytes=") and "," not in header:
            raise RangeNotSatisfiable(f"invalid Range header '{header}': send bytes=FIRST-LAST",
                                      size)
        return None
    first, last = match.groups()
    if not first and not last:
        raise RangeNotSatisfiable(f"invalid Range header '{header}': send bytes=FIRST-LAST",
                                  size)
    if not first:  # a suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"Range '{header}' is outside the audio's {size} bytes",
                                  size)
    return start, end


async def _chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        source.seek(start)
        while length > 0:
            chunk = await asyncio.to_thread(source.read, min(CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


@get("/jobs/{job_id:str}/audio", summary="The job's audio, for a player (HTTP Range)",
     responses=errors(400, 404, 410, 416, also={206: ResponseSpec(
         None, media_type="audio/wav", description="The part of the audio the Range asked for.")}),
     description="The decoded audio (16 kHz mono WAV) once the decode stage has run, the "
                 "upload before. Answers a `Range: bytes=FIRST-LAST` request with 206 and "
                 "that part; 416 for a range outside the file.")
async def get_audio(
    job_id: str, services: Services, owner: str | None,
    range_header: Annotated[str | None, Parameter(header="Range", required=False)] = None,
) -> Stream:
    job = await find_job(services.store, job_id, owner)
    files = services.store.files(job.id)
    path, media_type = files.artifact(artifacts.AUDIO), "audio/wav"
    if not path.exists():
        path, media_type = files.input, "application/octet-stream"
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
    except FileNotFoundError:
        raise Gone(f"the audio of job {job_id} is not stored (it came by URL and is not "
                   "downloaded yet, or it expired)") from None
    wanted = byte_range(range_header, size)
    start, end = wanted or (0, size - 1)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Stream(_chunks(path, start, end - start + 1), media_type=media_type,
                  status_code=206 if wanted is not None else 200, headers=headers)
