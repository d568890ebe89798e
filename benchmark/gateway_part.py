"""Part ``gateway``: requests/s and latency of GET /jobs/{id} and POST /jobs against a bare
Litestar hello-world served the same way, in the same run.

Each server process is pinned to CPU 0; this process (the load generator) and the
embedded Valkey share CPU 1, so the figures are what one core of gateway serves.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from benchmark import loadgen
from benchmark.procs import Processes, child_env, embedded_pid, wait_http
from benchmark.report import PartResult
from pipeline.embedded import free_port
from tests.support.audio import silent_wav

SECONDS = 5.0
WARMUP_SECONDS = 1.0
CONNECTIONS = 8
SERVER_CPU = 0
CLIENT_CPU = 1
BOUNDARY = "benchmarkboundary7d1f"


def multipart(audio: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"one.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode() + audio + (
        f"\r\n--{BOUNDARY}--\r\n").encode()


def run(work: Path, procs: Processes, redis_url: str, valkey_dir: Path) -> PartResult:
    part = PartResult(part="gateway")
    if len(os.sched_getaffinity(0)) < 2:
        part.notes.append("fewer than 2 CPUs available: server and client share one")
    gateway_port, hello_port = free_port(), free_port()
    env = child_env(REDIS_URL=redis_url, JOBS_DIR=str(work / "jobs-gateway"),
                    KEY_PREFIX="benchgw", MAX_QUEUED_JOBS=str(10**9), LOG_LEVEL="WARNING",
                    HOST="127.0.0.1", PORT=str(gateway_port))
    gateway = procs.spawn("gateway-pinned", ["-m", "gateway"], env, cpus={SERVER_CPU})
    hello = procs.spawn("hello", ["-m", "benchmark.hello"], child_env(PORT=str(hello_port)),
                        cpus={SERVER_CPU})
    own = os.sched_getaffinity(0)
    valkey = embedded_pid(valkey_dir)
    try:
        wait_http(f"http://127.0.0.1:{gateway_port}/health", gateway)
        wait_http(f"http://127.0.0.1:{hello_port}/hello", hello)
        body = multipart(silent_wav(1.0))
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        answer = httpx.post(f"http://127.0.0.1:{gateway_port}/jobs", content=body,
                            headers={"Content-Type": content_type})
        answer.raise_for_status()
        job_id = answer.json()["job_id"]
        if len(own) > 1:
            os.sched_setaffinity(0, {CLIENT_CPU})
            if valkey is not None:
                os.sched_setaffinity(valkey, {CLIENT_CPU})
        cases = [
            ("GET /jobs/{id}", gateway_port, loadgen.request_bytes(
                "GET", f"/jobs/{job_id}", gateway_port), 200, "GET hello-world"),
            ("GET hello-world", hello_port, loadgen.request_bytes(
                "GET", "/hello", hello_port), 200, None),
            ("POST /jobs (1 s WAV)", gateway_port, loadgen.request_bytes(
                "POST", "/jobs", gateway_port, body, content_type), 202, "POST hello-world"),
            ("POST hello-world (same body)", hello_port, loadgen.request_bytes(
                "POST", "/upload", hello_port, body, content_type), 202, None),
        ]
        loads = {}
        for name, port, request, status, _ in cases:
            asyncio.run(loadgen.run(port, request, status, WARMUP_SECONDS, CONNECTIONS))
            loads[name] = load = asyncio.run(
                loadgen.run(port, request, status, SECONDS, CONNECTIONS))
            part.add(f"{name}: requests/s", load.per_second, "req/s")
            part.add(f"{name}: p50 latency", load.p50_ms, "ms")
            part.add(f"{name}: p99 latency", load.p99_ms, "ms")
            if load.errors:
                part.notes.append(f"{name}: {load.errors} answers with an unexpected status")
        for name, _, _, _, baseline in cases:
            if baseline is not None:
                base = next(v for k, v in loads.items() if k.startswith(baseline))
                part.add(f"{name} / {baseline} requests/s",
                         loads[name].per_second / base.per_second)
    finally:
        os.sched_setaffinity(0, own)
        procs.stop(gateway)
        procs.stop(hello)
    part.notes.append(
        f"{CONNECTIONS} keep-alive connections in a closed loop, {SECONDS:.0f} s per endpoint "
        f"after {WARMUP_SECONDS:.0f} s of warm-up, over loopback; servers pinned to CPU "
        f"{SERVER_CPU}, load generator and Valkey to CPU {CLIENT_CPU}. Latency includes "
        "queueing behind the other connections' requests")
    return part
