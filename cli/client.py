"""``stt submit / status / result``: a command-line client of the HTTP API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from pipeline.errors import ErrorBody, error_for
from pipeline.types import TERMINAL

#: Seconds one long poll may wait on the server for the job to change.
POLL_WAIT = 30

err = Console(stderr=True)


def checked(response: httpx.Response) -> httpx.Response:
    """``response``, unless it is an error answer: that is raised as the error the gateway
    raised, the class its status stands for (pipeline.errors.HTTP_STATUS) with its message."""
    if response.status_code >= 400:
        try:
            message = msgspec.json.decode(response.content, type=ErrorBody).error.message
        except msgspec.DecodeError:  # not the gateway's answer (a proxy's error page)
            message = response.text
        raise error_for(response.status_code, message)
    return response


class Client:
    def __init__(self, url: str, api_key: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=url, headers=headers,
                                 timeout=httpx.Timeout(POLL_WAIT + 30, connect=10))

    def submit(self, path: Path, options: dict[str, str]) -> str:
        with path.open("rb") as f:
            response = checked(self.http.post(
                "/jobs", files={"file": (path.name, f)}, data=options))
        job_id: str = response.json()["job_id"]
        return job_id

    def status(self, job_id: str, wait: int = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else {}
        job: dict[str, Any] = checked(self.http.get(f"/jobs/{job_id}", params=params)).json()
        return job

    def result(self, job_id: str, fmt: str) -> str:
        return checked(self.http.get(f"/jobs/{job_id}/result", params={"format": fmt})).text


def follow(client: Client, job_id: str) -> dict[str, Any]:
    """Show a progress bar per stage until the job ends; returns the final job."""
    job = client.status(job_id)
    with Progress(TextColumn("{task.description:>10}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%  {task.fields[detail]}"),
                  console=err) as bars:
        tasks: dict[str, TaskID] = {
            stage: bars.add_task(stage, total=100, detail="")
            for stage, record in job["stages"].items() if record["status"] != "skipped"}
        while True:
            for stage, task in tasks.items():
                record = job["stages"][stage]
                bars.update(task, completed=record.get("progress") or 0,
                            detail=record.get("status", ""))
            if job["status"] in TERMINAL:
                return job
            job = client.status(job_id, wait=POLL_WAIT)


def submit(client: Client, path: Path, options: dict[str, str], wait: bool, fmt: str,
           output: Path | None) -> int:
    job_id = client.submit(path, options)
    err.print(f"job {job_id}")
    if not wait:
        print(job_id)
        return 0
    job = follow(client, job_id)
    if job["status"] != "completed":
        err.print(f"[red]job {job_id} {job['status']}: {job.get('error') or ''}")
        return 1
    return write_result(client, job_id, fmt, output)


def write_result(client: Client, job_id: str, fmt: str, output: Path | None) -> int:
    text = client.result(job_id, fmt)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text)
        err.print(f"saved {output}")
    return 0
