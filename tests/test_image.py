"""The real default image, built from the Dockerfile with oci-build (podman) and run as production runs it: as its
unprivileged user, on a read-only root file system with a tmpfs /tmp and a /data volume. Skipped locally without
oci-build or podman (and no root to install podman); in CI (CI=true) that fails the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from bench import container

pytestmark = pytest.mark.slow

MAX_ADDED_MB = 300  # what the default image may add to its base (issue 16)
# Training and TensorFlow's dependencies: none may be importable in the default image (LiteRT serves it).
ABSENT = ("tensorflow", "keras", "h5py", "grpc", "ml_dtypes", "google.protobuf", "matplotlib", "train")


@pytest.fixture(scope="module")
def image(require, tmp_path_factory) -> str:
    """The default image, built under a tag of this test session's own (other checkouts build theirs)."""
    tool = container.oci_build()
    require(os.access(tool, os.X_OK), f"{tool} is missing: set OCI_BUILD to the oci-build script")
    can_install = os.geteuid() == 0  # oci-build installs podman with apt when it is missing
    require(shutil.which("podman") is not None or can_install, "podman is missing, and only root can install it")
    tag = f"localhost/digits-test:{os.getpid()}"
    container.build(tag, log=tmp_path_factory.mktemp("image") / "build.log")
    yield tag
    container.podman("rmi", "--force", tag, check=False)


@pytest.fixture(scope="module")
def served(image):
    """One running container of the image, ready."""
    with container.running(image) as running:
        container.wait_ready(running)
        yield running


def in_container(served, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "exec", served.name, *command], capture_output=True, text=True, timeout=60)


def test_image_adds_at_most_300_mb_to_its_base(image):
    added = container.image_bytes(image) - container.image_bytes(container.base_of())
    assert added <= MAX_ADDED_MB * 1e6, f"the image adds {added / 1e6:.0f} MB to its base"


def test_reads_a_drawn_digit(served, one_png):
    request = urllib.request.Request(f"{served.url}/predict", data=one_png, headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert body["number"] == "1" and body["digit"] == 1 and body["model"]["name"] == "cnn"
    with urllib.request.urlopen(f"{served.url}/v1/models", timeout=30) as response:
        models = {m["name"]: m for m in json.load(response)["models"]}
    assert models["cnn"]["runtime"] == "litert"


def test_serves_the_page_in_portuguese(served):
    """The compiled catalog is in the image and read there (the .po sources are not: .dockerignore)."""
    request = urllib.request.Request(f"{served.url}/", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    with urllib.request.urlopen(request, timeout=30) as response:
        page = response.read().decode()
        assert response.headers["Content-Language"] == "pt-BR"
    assert '<html lang="pt-BR">' in page and "Desenhe um dígito ou um número" in page
    listing = in_container(served, "find", "/app/service/translations", "-type", "f").stdout.split()
    assert listing == ["/app/service/translations/pt_BR/LC_MESSAGES/messages.mo"], listing


def test_serves_as_its_unprivileged_user_on_a_read_only_root(served):
    status = in_container(served, "cat", "/proc/1/status").stdout  # PID 1: gunicorn, the server itself
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == [str(container.UID)] * 4, status
    refused = in_container(served, "touch", "/app/written")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    # the two writable places: /tmp (tmpfs) and the /data volume, which the image gives to its user
    for folder in ("/tmp", "/data"):
        assert in_container(served, "touch", f"{folder}/written").returncode == 0, folder


def test_holds_no_tensorflow_nor_training_code(served):
    probe = f"import importlib.util as u; print([m for m in {list(ABSENT)!r} if u.find_spec(m.split('.')[0])])"
    found = in_container(served, "python", "-c", probe)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stdout + found.stderr


def test_its_healthcheck_passes(served):
    assert subprocess.run(["podman", "healthcheck", "run", served.name], timeout=60).returncode == 0


def test_sigterm_stops_it_cleanly(image):
    with container.running(image) as running:
        container.wait_ready(running)
        code = container.stop(running)
        log = container.logs(running)
    assert code == 0, log
    assert "Shutting down: Master" in log and "Traceback" not in log, log


def test_image_benchmark_smoke(image, wrk):
    """bench/image.py's measurements in smoke mode on the built image: one start, a few seconds of load, no errors
    (the full run is in bench/RESULTS.md; no timing is asserted)."""
    from bench.image import memory_under_load, ready_seconds

    assert ready_seconds(image, starts=1)["ready_s"] > 0
    result = memory_under_load(image, connections=4, seconds=2)
    assert result["load"]["errors"] == 0 and result["load"]["requests"] > 10
    assert 0 < result["memory_ready_mb"] <= result["memory_load_peak_mb"]
