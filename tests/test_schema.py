"""schemathesis: the OpenAPI description holds against the app, with a bounded number of examples."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from service import create_app
from tests.conftest import FakePredictor

# The schema is built at collection time, before any fixture exists (schemathesis.pytest.from_fixture, which
# would take the `app` fixture, fails under pytest 9: "'Function' object has no attribute '_nodeid'"); so the
# conftest's fake is imported here. It keeps TensorFlow out of the schema run.
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(predictor=FakePredictor()))


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_description(case):
    # No schema can say "these bytes are a picture of a digit": a schema-valid string may still be a
    # corrupt image or a blank canvas, which the API rightly refuses (400/422). Every other check runs:
    # no 5xx, documented status codes and content types, responses matching their schemas, and
    # schema-invalid requests rejected with 4xx.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_readyz_of_the_real_app_is_what_the_description_says(real_app):
    """The real model loaded: /readyz's answer is a documented status, and its body matches that response's schema.
    (There is no 503: create_app returns only once the default model is loaded and warmed up.)"""
    real_schema = schemathesis.openapi.from_wsgi("/openapi.json", real_app)
    response = real_app.test_client().get("/readyz")
    assert str(response.status_code) in real_schema.raw_schema["paths"]["/readyz"]["get"]["responses"]
    real_schema["/readyz"]["GET"].validate_response(response)  # raises on a body that breaks the schema
    info = real_app.extensions["digits"].default.info
    assert response.json["model"] == {"name": info.name, "version": info.version}


# The admin routes exist only with ADMIN_TOKEN: their description is checked against an app that has one.
ADMIN_TOKEN = "schema-admin-token"
admin_schema = schemathesis.openapi.from_wsgi(
    "/openapi.json", create_app({"admin_token": ADMIN_TOKEN}, predictor=FakePredictor())
).include(path_regex="^/v1/corrections")


@admin_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_admin_routes_conform_to_their_openapi_description(case):
    # Every request carries the token here, so schemathesis's "request without the security header" and "unknown
    # query parameter" negatives cannot be told apart from valid ones (the admin tests check 401s themselves).
    case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
