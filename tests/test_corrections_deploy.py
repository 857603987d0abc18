"""Deployment of the corrections database: compose runs PostgreSQL, Kubernetes takes DATABASE_URL from a Secret, and
the image keeps its SQLite default in a /data volume the unprivileged user owns."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT
from tests.test_deploy import env_of, manifests, stages


def test_compose_has_a_postgres_service_the_app_waits_for():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app, db = compose["services"]["digits"], compose["services"]["postgres"]
    assert (
        app["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
        and "@postgres:5432/" in app["environment"]["DATABASE_URL"]
    )
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy" and "pg_isready" in db["healthcheck"]["test"]
    assert any(v.endswith(":/data") for v in app["volumes"]) and any("postgresql/data" in v for v in db["volumes"])


def test_kubernetes_takes_database_url_from_a_secret_and_mounts_data():
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "digits-database"
    assert env["ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]


def test_image_keeps_data_in_a_volume_owned_by_the_service_user():
    final = stages()[-1]
    assert env_of(final)["DATA_DIR"] == "/data"
    runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    assert "install -d -o 10001 -g 10001" in runs and "/data" in runs
    assert any(keyword == "VOLUME" and "/data" in rest for keyword, rest in final)
