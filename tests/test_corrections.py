"""POST /v1/corrections and the admin routes, through Flask's test client, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import event

from service import create_app
from service.corrections import STORED_SIDE
from service.storage import Correction
from tests.conftest import MODELS
from tests.images import drawn_one, encode, number_image, pen_digit

TOKEN = "correct-horse-battery-staple"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PNG = encode(drawn_one())
BLANK = encode(Image.new("L", (280, 280), 255))


def data_url(blob: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(blob).decode()


@pytest.fixture
def make_app(fake_predictor, database_url):
    def make(**config):
        settings = {"models_root": str(MODELS), "database_url": database_url, "admin_token": TOKEN, **config}
        return create_app(settings, predictor=fake_predictor)

    return make


@pytest.fixture
def app(make_app):
    return make_app()


def stored(app, correction_id: int) -> Correction:
    return app.extensions["digits_store"].get(correction_id)


def test_a_correction_is_stored_with_what_the_model_saw(client, app, fake_predictor):
    response = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 7, "predicted": 1})
    assert response.status_code == 201, response.json
    row = stored(app, response.json["id"])
    (x,) = fake_predictor.calls[0]  # the model ran once, on the stored input
    assert np.frombuffer(row.input, np.uint8).reshape(28, 28).tolist() == np.clip(x, 0, 255).round().tolist()
    expected = fake_predictor.predict(x[None])[0]
    assert (row.predicted, row.confidence) == (int(expected.argmax()), pytest.approx(float(expected.max())))
    assert (row.label, row.shown, row.status) == ("7", 1, "pending")
    assert (row.model_name, row.model_version) == ("fake", 7)
    image = Image.open(io.BytesIO(row.image))
    # as decoded: the decoder may shrink a large image for speed, never below what the preprocessing reads
    assert image.format == "PNG" and image.mode == "L" and image.size[0] == image.size[1] and image.size[0] >= 100


def test_a_correction_of_the_drawing_just_read_reuses_that_reading(client, app, fake_predictor, make_app):
    """The page's flow: /predict, then a correction of the same drawing. The model is not run again, and what is
    stored is the reading the user saw, with the image a correction read afresh stores."""
    answered = client.post("/predict?include=input", json={"image": data_url(PNG)}).json
    calls = len(fake_predictor.calls)
    response = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 3})
    assert response.status_code == 201, response.json
    assert len(fake_predictor.calls) == calls
    row = stored(app, response.json["id"])
    assert (row.predicted, row.confidence) == (answered["digit"], pytest.approx(answered["confidence"]))
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answered["input"].split(",", 1)[1]))))
    assert np.frombuffer(row.input, np.uint8).reshape(28, 28).tolist() == seen.tolist()
    afresh = make_app()  # another worker: nothing kept
    again = afresh.test_client().post("/v1/corrections", json={"image": data_url(PNG), "label": 3})
    assert len(fake_predictor.calls) == calls + 1
    assert stored(afresh, again.json["id"]).image == row.image


def test_a_number_is_read_again_for_its_correction(client, fake_predictor):
    """Only one-digit readings are kept: a correction labels one digit, whose input is the whole image's."""
    number = data_url(encode(number_image([pen_digit(d, 200, 120, 14) for d in "147"], [60, 60])[0]))
    assert client.post("/predict", json={"image": number}).json["number"] is not None
    calls = len(fake_predictor.calls)
    assert client.post("/v1/corrections", json={"image": number, "label": 4}).status_code == 201
    assert len(fake_predictor.calls) == calls + 1


def test_nothing_about_the_person_is_stored(client, app):
    headers = {"X-Forwarded-For": "203.0.113.9", "User-Agent": "secret-agent", "Cookie": "id=42"}
    response = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 7}, headers=headers)
    row = stored(app, response.json["id"])
    values = [str(getattr(row, column.key)) for column in Correction.__table__.columns]
    for personal in ("127.0.0.1", "203.0.113.9", "secret-agent", "id=42"):
        assert not any(personal in value for value in values)


@pytest.mark.parametrize(
    "body",
    [
        {"image": data_url(PNG), "label": "3"},
        {"image": base64.b64encode(PNG).decode(), "label": 0},
        {"pixels": (np.eye(28) * 255).tolist(), "label": 9, "model": {"name": "fake", "version": 7}},
        {"image": data_url(BLANK), "label": "not_a_digit"},
        {"image": data_url(encode(drawn_one(), "JPEG")), "label": "not_a_digit", "model": "fake"},
    ],
    ids=["data-url", "base64", "pixels", "blank-not-a-digit", "jpeg-not-a-digit"],
)
def test_every_image_form_and_label_is_accepted(client, app, body):
    response = client.post("/v1/corrections", json=body)
    assert response.status_code == 201, response.json
    row = stored(app, response.json["id"])
    assert row.label == str(body["label"])
    assert (row.input is None) == (body["image"] == data_url(BLANK) if "image" in body else False)


def test_a_large_image_is_stored_bounded(client, app):
    big = encode(Image.new("L", (3000, 1500), 255).resize((3000, 1500)))
    response = client.post("/v1/corrections", json={"image": data_url(big), "label": "not_a_digit"})
    assert response.status_code == 201
    assert max(Image.open(io.BytesIO(stored(app, response.json["id"]).image)).size) <= STORED_SIDE


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"json": {"image": data_url(PNG), "label": 10}}, 400, "bad_request"),
        ({"json": {"image": data_url(PNG), "label": -1}}, 400, "bad_request"),
        ({"json": {"image": data_url(PNG), "label": "seven"}}, 400, "bad_request"),
        ({"json": {"image": data_url(PNG), "label": True}}, 400, "bad_request"),
        ({"json": {"image": data_url(PNG), "label": 3.0}}, 400, "bad_request"),
        ({"json": {"image": data_url(PNG)}}, 400, "bad_request"),
        ({"json": {"label": 3}}, 400, "bad_request"),
        ({"json": {"image": data_url(PNG), "label": 3, "predicted": 12}}, 400, "bad_request"),
        ({"json": {"image": data_url(PNG), "label": 3, "model": 5}}, 400, "bad_request"),
        ({"json": {"image": "data:image/png;base64,@@@", "label": 3}}, 400, "invalid_base64"),
        ({"json": {"image": data_url(PNG[: len(PNG) // 2]), "label": 3}}, 400, "invalid_image"),
        ({"json": {"image": data_url(BLANK), "label": 3}}, 422, "no_digit"),
        ({"json": {"image": data_url(PNG), "label": 3, "model": "nope"}}, 404, "unknown_model"),
        ({"json": ["not", "an", "object"]}, 400, "bad_request"),
        ({"data": b"{", "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": b"", "content_type": "application/json"}, 400, "empty_body"),
        ({"data": PNG, "content_type": "image/png"}, 415, "unsupported_media_type"),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, dict) else None,
)
def test_bad_corrections_get_the_typed_errors_of_predict(client, app, kwargs, status, code):
    response = client.post("/v1/corrections", **kwargs)
    assert response.status_code == status and response.json["error"]["code"] == code, response.json
    assert app.extensions["digits_store"].page(10, 0)[0] == 0  # nothing stored


def test_body_limit_and_rate_limit_apply(make_app):
    small = make_app(max_content_length=len(PNG) // 2).test_client()
    response = small.post("/v1/corrections", json={"image": data_url(PNG), "label": 1})
    assert response.status_code == 413 and response.json["error"]["code"] == "too_large"
    limited = make_app(rate_limit=0.01, rate_burst=1).test_client()
    assert limited.post("/v1/corrections", json={"image": data_url(PNG), "label": 1}).status_code == 201
    response = limited.post("/v1/corrections", json={"image": data_url(PNG), "label": 1})
    assert response.status_code == 429 and response.headers["Retry-After"]


def test_a_retried_correction_with_its_key_is_stored_once(client, app):
    body, key = {"image": data_url(PNG), "label": 4}, {"Idempotency-Key": "page-8c1f:1"}
    first = client.post("/v1/corrections", json=body, headers=key)
    again = client.post("/v1/corrections", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200) and first.json == again.json
    assert app.extensions["digits_store"].page(10, 0)[0] == 1
    bad = client.post("/v1/corrections", json=body, headers={"Idempotency-Key": "<script>"})
    assert bad.status_code == 400


def test_corrections_are_counted_by_label_and_model(client):
    from service.observability import CORRECTIONS

    def count(label: str) -> float:
        return CORRECTIONS.labels(label=label, model="fake")._value.get()

    before = count("5"), count("not_a_digit")
    client.post("/v1/corrections", json={"image": data_url(PNG), "label": 5})
    client.post("/v1/corrections", json={"image": data_url(BLANK), "label": "not_a_digit"})
    client.post("/v1/corrections", json={"image": data_url(PNG), "label": 55})  # refused: not counted
    assert (count("5"), count("not_a_digit")) == (before[0] + 1, before[1] + 1)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'digits_corrections_total{label="5",model="fake"}' in text


# ---- the database down or full: 503 on corrections, predictions carry on --------------------------------------


def test_a_database_that_is_down_gives_503_while_predict_answers(fake_predictor):
    from bench.server import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    client = create_app({"database_url": url, "admin_token": TOKEN}, predictor=fake_predictor).test_client()
    response = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 2})
    assert response.status_code == 503 and response.json["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] and "127.0.0.1" not in response.get_data(as_text=True)
    assert client.get("/v1/corrections", headers=ADMIN).status_code == 503
    assert client.post("/predict", data=PNG, content_type="image/png").status_code == 200


def test_a_data_dir_that_cannot_be_made_gives_503_while_predict_answers(fake_predictor):
    """/proc refuses new folders even to root: the server still starts and predicts."""
    client = create_app({"data_dir": "/proc/digits-nowhere"}, predictor=fake_predictor).test_client()
    response = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 2})
    assert response.status_code == 503 and response.json["error"]["code"] == "database_unavailable"
    assert client.post("/predict", data=PNG, content_type="image/png").status_code == 200


def test_a_full_sqlite_database_gives_503_while_predict_answers(fake_predictor, tmp_path):
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'full.db'}"}, predictor=fake_predictor)
    engine = app.extensions["digits_store"].engine
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(engine, "connect")
    def cap(dbapi_connection, _record):  # SQLite's own limit: SQLITE_FULL, as on a full disk
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    engine.dispose()
    client = app.test_client()
    noisy = {"image": data_url(encode(Image.effect_noise((400, 400), 120).convert("L"))), "label": "not_a_digit"}
    statuses = [client.post("/v1/corrections", json=noisy).status_code for _ in range(3)]
    assert statuses[-1] == 503, statuses
    assert client.post("/predict", data=PNG, content_type="image/png").status_code == 200


# ---- admin ------------------------------------------------------------------------------------------------------


def test_admin_routes_do_not_exist_without_a_token(make_app):
    client = make_app(admin_token="").test_client()
    created = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 7}).json["id"]
    assert client.get("/v1/corrections", headers=ADMIN).status_code == 405  # the URL takes POST only
    for path in (f"/v1/corrections/{created}/image", f"/v1/corrections/{created}/input", "/admin"):
        assert client.get(path, headers=ADMIN).status_code == 404
    assert client.patch(f"/v1/corrections/{created}", json={"status": "accepted"}, headers=ADMIN).status_code == 404
    assert "/v1/corrections/{id}" not in client.get("/openapi.json").json["paths"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "no-scheme", "basic"],
)
def test_admin_routes_need_the_bearer_token(client, headers):
    client.post("/v1/corrections", json={"image": data_url(PNG), "label": 7})
    routes = (("get", "/v1/corrections"), ("get", "/v1/corrections/1/image"), ("patch", "/v1/corrections/1"))
    for method, path in routes:
        response = getattr(client, method)(path, headers=headers, json={"status": "accepted"})
        assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_admin_lists_pages_and_filters(client):
    ids = [client.post("/v1/corrections", json={"image": data_url(PNG), "label": d}).json["id"] for d in range(4)]
    listing = client.get("/v1/corrections?limit=2&offset=1", headers=ADMIN).json
    assert listing["count"] == 4 and [c["id"] for c in listing["corrections"]] == ids[::-1][1:3]
    entry = listing["corrections"][0]
    assert set(entry) >= {"id", "label", "predicted", "model", "created", "status"}
    assert entry["label"] == "2" and entry["model"] == {"name": "fake", "version": 7} and entry["status"] == "pending"
    client.patch(f"/v1/corrections/{ids[1]}", json={"status": "accepted"}, headers=ADMIN)
    accepted = client.get("/v1/corrections?status=accepted", headers=ADMIN).json
    assert accepted["count"] == 1 and accepted["corrections"][0]["id"] == ids[1]
    for bad in ("limit=0", "limit=501", "limit=x", "offset=-1", "status=maybe"):
        assert client.get(f"/v1/corrections?{bad}", headers=ADMIN).status_code == 400, bad


def test_admin_gets_each_image_and_model_input(client, app):
    created = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 1}).json["id"]
    row = stored(app, created)
    image = client.get(f"/v1/corrections/{created}/image", headers=ADMIN)
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data == row.image
    assert "no-store" in image.headers["Cache-Control"]
    seen = client.get(f"/v1/corrections/{created}/input", headers=ADMIN)
    assert np.asarray(Image.open(io.BytesIO(seen.data))).tobytes() == row.input
    assert client.get("/v1/corrections/999/image", headers=ADMIN).status_code == 404
    assert client.get(f"/v1/corrections/{2**70}/input", headers=ADMIN).status_code == 404  # no overflow, no 500


def test_admin_accepts_and_rejects(client, app):
    created = client.post("/v1/corrections", json={"image": data_url(PNG), "label": 1}).json["id"]
    response = client.patch(f"/v1/corrections/{created}", json={"status": "rejected"}, headers=ADMIN)
    assert response.status_code == 200 and response.json["status"] == "rejected"
    assert stored(app, created).status == "rejected" and stored(app, created).reviewed is not None
    assert client.patch(f"/v1/corrections/{created}", json={"status": "gone"}, headers=ADMIN).status_code == 400
    assert client.patch("/v1/corrections/999", json={"status": "accepted"}, headers=ADMIN).status_code == 404
    page = client.get("/admin")
    assert page.status_code == 200 and b"admin.js" in page.data  # the page itself holds no data
