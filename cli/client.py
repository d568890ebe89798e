"""``stt submit / status / result / list / cancel / rerun / health``: a command-line client
of the HTTP API, and how it shows jobs."""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pipeline.errors import ErrorBody, error_for
from pipeline.types import TERMINAL

#: Seconds one long poll may wait on the server for the job to change.
POLL_WAIT = 30
# A list of the API's records (Client.list, a method, hides the builtin in the class).
Records = list[dict[str, Any]]

# No markup: error messages and file names may contain [brackets].
err = Console(stderr=True, highlight=False, markup=False)
out = Console(highlight=False, markup=False)


class Interrupted(Exception):
    """Ctrl-C while following a job: the job itself keeps running on the server."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


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
        self.url = url
        self.http = httpx.Client(base_url=url, headers=headers,
                                 timeout=httpx.Timeout(POLL_WAIT + 30, connect=10))

    def submit(self, path: Path, options: dict[str, str]) -> str:
        with path.open("rb") as f:
            response = checked(self.http.post(
                "/jobs", files={"file": (path.name, f)}, data=options))
        job_id: str = response.json()["job_id"]
        return job_id

    def submit_url(self, url: str, options: dict[str, str]) -> str:
        """A job for the audio at ``url``, which the service downloads."""
        response = checked(self.http.post("/jobs", files={"url": (None, url)}, data=options))
        job_id: str = response.json()["job_id"]
        return job_id

    def status(self, job_id: str, wait: int = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else {}
        job: dict[str, Any] = checked(self.http.get(f"/jobs/{job_id}", params=params)).json()
        return job

    def result(self, job_id: str, fmt: str) -> str:
        return checked(self.http.get(f"/jobs/{job_id}/result", params={"format": fmt})).text

    def list(self, status: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        page: dict[str, Any] = checked(self.http.get("/jobs", params=params)).json()
        return page

    def cancel(self, job_id: str) -> None:
        checked(self.http.delete(f"/jobs/{job_id}"))

    def rerun(self, job_id: str, from_stage: str, options: dict[str, Any]) -> dict[str, Any]:
        accepted: dict[str, Any] = checked(self.http.post(
            f"/jobs/{job_id}/rerun", json={"from_stage": from_stage, **options})).json()
        return accepted

    def enroll(self, name: str, path: Path) -> dict[str, Any]:
        """A voiceprint of the one voice in ``path``: the service diarizes it as a job."""
        with path.open("rb") as f:
            response = checked(self.http.post(
                "/speakers", files={"file": (path.name, f)}, data={"name": name}))
        if response.status_code == 202:  # the sample's job outlasted the server's wait
            job_id = response.json()["job_id"]
            raise error_for(504, f"the sample's job {job_id} is still running; once it "
                                 f"completes, enroll its speaker with POST /speakers "
                                 f'{{"name": "{name}", "from_job": "{job_id}", '
                                 '"speaker": "SPEAKER_00"}')
        created: dict[str, Any] = response.json()
        return created

    def voiceprints(self) -> Records:
        found: Records = checked(self.http.get("/speakers")).json()
        return found

    def forget(self, voiceprint_id: str) -> None:
        checked(self.http.delete(f"/speakers/{voiceprint_id}"))

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service is healthy, and its report (503 is an answer here)."""
        response = self.http.get("/health")
        if response.status_code not in (200, 503):
            checked(response)
        report: dict[str, Any] = response.json()
        return response.status_code == 200, report


# -- showing a job ---------------------------------------------------------------------


def _when(stamp: str | None) -> float | None:
    return datetime.datetime.fromisoformat(stamp).timestamp() if stamp else None


def duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _stages(job: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The stages of the job's current run (a rerun skips the ones it does not redo)."""
    for stage, record in job["stages"].items():
        if record["status"] != "skipped":
            yield stage, record


def _detail(record: dict[str, Any]) -> str:
    status = str(record.get("status", ""))
    detail = record.get("detail")
    return f"{status}: {detail}" if detail and status == "running" else status


def _elapsed(record: dict[str, Any], now: float | None = None) -> str:
    started = _when(record.get("started_at"))
    if started is None:
        return ""
    finished = _when(record.get("finished_at"))
    return duration((finished or now or time.time()) - started)


class _StageTime(ProgressColumn):
    """How long the stage ran, or has been running (ticking between polls)."""

    def render(self, task: Task) -> Text:
        return Text(_elapsed(task.fields["record"]), style="progress.elapsed")


def follow(client: Client, job_id: str) -> dict[str, Any]:
    """Show a progress bar per stage (with what it is doing and for how long) until the
    job ends; returns the final job. Ctrl-C raises :class:`Interrupted`."""
    try:
        job = client.status(job_id)
        with Progress(TextColumn("{task.description:>10}", markup=False), BarColumn(),
                      TextColumn("{task.percentage:>5.1f}%"), _StageTime(),
                      TextColumn("{task.fields[detail]}", markup=False),
                      console=err) as bars:
            tasks: dict[str, TaskID] = {
                stage: bars.add_task(stage, total=100, detail="", record=record)
                for stage, record in _stages(job)}
            while True:
                for stage, task in tasks.items():
                    record = job["stages"][stage]
                    bars.update(task, completed=record.get("progress") or 0,
                                detail=_detail(record), record=record)
                if job["status"] in TERMINAL:
                    return job
                job = client.status(job_id, wait=POLL_WAIT)
    except KeyboardInterrupt:
        raise Interrupted(job_id) from None


def summary(job: dict[str, Any]) -> RenderableType:
    """A few lines about a job: status, a bar per stage with its time, and its error."""
    name = f"  {job['input_name']}" if job.get("input_name") else ""
    run = f"  (run {job['run']})" if job.get("run", 1) > 1 else ""
    head = Text.assemble(("job ", ""), (job["id"], "bold"), f"  {job['status']}{name}{run}")
    table = Table.grid(padding=(0, 1))
    now = time.time()
    for stage, record in _stages(job):
        table.add_row(f"  {stage:>10}", ProgressBar(total=100, completed=record["progress"] or 0,
                                                    width=24),
                      f"{record['progress'] or 0:5.1f}%", _elapsed(record, now),
                      _detail(record))
    created, updated = _when(job["created_at"]), _when(job["updated_at"])
    took = (f", took {duration(updated - created)}" if created and updated
            and job["status"] in TERMINAL else "")
    lines: list[RenderableType] = [head, table,
                                   Text(f"created {job['created_at']}, updated "
                                        f"{job['updated_at']}{took}")]
    if job.get("error"):
        lines.append(Text(f"error: {job['error']}", style="red"))
    return Group(*lines)


def job_table(jobs: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "status", "progress", "created", "file", "detail"):
        table.add_column(column, no_wrap=column == "id")
    for job in jobs:
        table.add_row(job["id"], job["status"], f"{job['progress']:.0f}%", job["created_at"],
                      job.get("input_name") or "", job.get("error") or job.get("stage_detail")
                      or "")
    return table


def voiceprint_table(voiceprints: list[dict[str, Any]]) -> Table:
    table = Table("id", "name", "samples", "model", "updated", box=None)
    for v in voiceprints:
        table.add_row(v["id"], v["name"], str(v["samples"]), v["model"], v["updated_at"])
    return table


def health_table(report: dict[str, Any]) -> RenderableType:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("stage", "workers", "pending", "lag", "dead letters"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, stats in report["stages"].items():
        table.add_row(stage, str(stats["consumers"]), str(stats["pending"]), str(stats["lag"]),
                      str(stats["dead_letters"]))
    lines: list[RenderableType] = [Text(f"{report['status']} (Redis "
                                        f"{'reachable' if report['redis'] else 'unreachable'})")]
    if report["stages"]:
        lines.append(table)
    lines.extend(Text(f"problem: {p}", style="red") for p in report["problems"])
    return Group(*lines)


# -- commands that follow a job --------------------------------------------------------


def finish(client: Client, job_id: str, wait: bool, fmt: str, output: Path | None) -> int:
    """After a submission or a rerun: print the job id, or follow it and print its result."""
    if not wait:
        print(job_id)
        return 0
    job = follow(client, job_id)
    if job["status"] != "completed":
        err.print(f"job {job_id} {job['status']}: {job.get('error') or ''}", style="red")
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
