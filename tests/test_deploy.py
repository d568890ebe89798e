"""The deployment files: they parse, validate, and set only variables the code reads."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stages.settings import Settings

REPO = Path(__file__).resolve().parents[1]
K8S = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
SETTINGS = {name.upper() for name in Settings.__struct_fields__}
#: Variables read by the libraries rather than by our settings.
LIBRARY_VARIABLES = {"PYANNOTE_METRICS_ENABLED", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PATH"}


def k8s_documents() -> Iterator[dict[str, Any]]:
    for path in K8S:
        yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def env_names_in(node: Any) -> Iterator[str]:
    """Names of environment variables a manifest sets, wherever they appear."""
    if isinstance(node, dict):
        if node.get("kind") in ("ConfigMap", "Secret"):
            yield from (node.get("data") or {})
            yield from (node.get("stringData") or {})
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                yield from (item["name"] for item in value)
            elif key == "environment" and isinstance(value, dict):
                yield from value
            else:
                yield from env_names_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from env_names_in(item)


def dotenv_names(path: Path) -> set[str]:
    return {line.split("=", 1)[0] for line in path.read_text().splitlines()
            if line and not line.startswith("#")}


def test_every_variable_the_deployments_set_is_a_setting() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    names = set(env_names_in(compose)) | set(env_names_in(list(k8s_documents())))
    names |= dotenv_names(REPO / ".env.example")
    for dockerfile in (REPO / "deploy").glob("Dockerfile*"):
        names |= set(re.findall(r"^(?:ENV)?\s+([A-Z_]+)=", dockerfile.read_text(), re.M))
    unknown = names - SETTINGS - LIBRARY_VARIABLES
    assert not unknown, f"not settings: {sorted(unknown)}"
    assert {"REDIS_URL", "JOBS_DIR", "HF_TOKEN"} <= names


def test_docker_compose_config_is_valid(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/install.sh test installs it)")
    for name in ("docker-compose.yml", "deploy"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    shutil.copy(REPO / ".env.example", tmp_path / ".env")  # what the README tells users to do
    run = subprocess.run(["docker-compose", "-f", str(tmp_path / "docker-compose.yml"),
                          "config", "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert {"redis", "gateway", "decode", "diarize", "transcribe"} <= set(services)
    assert "noeviction" in services["redis"]["command"]
    assert "--appendfsync everysec" in services["redis"]["command"]


def test_docker_build_context_has_what_the_dockerfiles_copy() -> None:
    ignored = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip()]
    for dockerfile in (REPO / "deploy").glob("Dockerfile*"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                *sources, _ = line.split()[1:]
                for source in sources:
                    assert (REPO / source).exists(), f"{dockerfile.name}: {source} missing"
                    assert not any(fnmatch.fnmatch(source, p) for p in ignored), source


def test_kubernetes_manifests_validate() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for path in K8S:
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith("keda.sh/"):
                continue  # a CRD: checked below
            if doc:
                kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_each_stage_scales_on_its_own_stream_lag() -> None:
    docs = list(k8s_documents())
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    assert {d["spec"]["scaleTargetRef"]["name"] for d in scaled} == {
        "stt-decode", "stt-diarize", "stt-transcribe"} <= deployments
    for d in scaled:
        stage = d["spec"]["scaleTargetRef"]["name"].removeprefix("stt-")
        [trigger] = d["spec"]["triggers"]
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["stream"] == f"stt:stream:{stage}"
        assert trigger["metadata"]["consumerGroup"] == f"stt:{stage}"
        assert int(trigger["metadata"]["lagCount"]) >= 1
    claims = [d for d in docs if d["kind"] == "PersistentVolumeClaim"
              and d["metadata"]["name"] == "stt-jobs"]
    assert claims[0]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_notify_stage_is_deployed_like_the_others() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert compose["notify"]["command"] == ["stt-worker", "notify"]
    [deployment] = [d for d in k8s_documents()
                    if d["kind"] == "Deployment" and d["metadata"]["name"] == "stt-notify"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["stt-worker", "notify"]
    # It runs no model: the gateway's image serves.
    assert container["image"] == compose["notify"]["image"] == compose["gateway"]["image"]
