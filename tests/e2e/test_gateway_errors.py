"""The gateway's error contract: every failure is a JSON {"error": {code, message, field}} with
the HTTP status lynx_err maps its code to, and validation errors name the field path."""

import json
import time
import uuid

import pytest

from lynx_harness import assert_error, load_body, scaled

TUTORIAL_BODY = "tutorial_basic_orbit_batch.json"


def valid_body():
    """The tutorial batch without runs_override, so monte_carlo.runs is what counts."""
    body = json.loads(load_body(TUTORIAL_BODY))
    body["name"] = "gateway-errors"
    del body["runs_override"]
    return body


def with_bad_normal(body, std_dev=-1.0):
    body["config"]["dispersions"]["x"] = {
        "distribution": {"type": "normal", "mean": 0.0, "std_dev": std_dev}, "units": ""}
    return body


def set_path(body, path, value):
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return body


def del_path(body, path):
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return body


#  (case id, mutation of valid_body(), accepted error.field values)
INVALID_CONFIGS = [
    ("runs_zero", lambda b: set_path(b, "config.monte_carlo.runs", 0),
     {"config.monte_carlo.runs"}),
    ("runs_negative", lambda b: set_path(b, "config.monte_carlo.runs", -3),
     {"config.monte_carlo.runs"}),
    ("runs_not_a_number", lambda b: set_path(b, "config.monte_carlo.runs", "five"),
     {"config.monte_carlo.runs"}),
    ("normal_negative_std_dev", with_bad_normal,
     {"config.dispersions.x.distribution.std_dev"}),
    ("unknown_sampling_method",
     lambda b: set_path(b, "config.monte_carlo.sampling_method", "no_such_method"),
     {"config.monte_carlo.sampling_method"}),
    ("unknown_distribution_type",
     lambda b: set_path(b, "config.dispersions.eccentricity.distribution.type", "no_such_dist"),
     {"config.dispersions.eccentricity.distribution.type"}),
    ("uniform_min_above_max",
     lambda b: set_path(b, "config.dispersions.inclination_deg.distribution.min", 40.0),
     {"config.dispersions.inclination_deg.distribution.min",
      "config.dispersions.inclination_deg.distribution.max",
      "config.dispersions.inclination_deg.distribution"}),
    ("runs_override_zero", lambda b: set_path(b, "runs_override", 0), {"runs_override"}),
    ("missing_config", lambda b: del_path(b, "config"), {"config"}),
    ("missing_name", lambda b: del_path(b, "name"), {"name"}),
]


def test_healthz_answers_200(stack):
    stack.start_broker()
    stack.start_gateway()
    status, body = stack.http("GET", "/healthz")
    assert status == 200, body


@pytest.mark.parametrize("raw", [b'{"name": ', b"", b"not json at all", b'{"name": "x",}',
                                 b"[1, 2, 3]", b'"just a string"'],
                         ids=["truncated", "empty", "garbage", "trailing_comma", "array",
                              "string"])
def test_body_that_is_not_a_json_object_is_400(stack, raw):
    stack.start_broker()
    stack.start_gateway()
    assert_error(stack.http("POST", "/jobs", body=raw), 400, "invalid_argument")


@pytest.mark.parametrize("mutate,fields", [(m, f) for _, m, f in INVALID_CONFIGS],
                         ids=[case for case, _, _ in INVALID_CONFIGS])
def test_invalid_config_names_the_field(stack, mutate, fields):
    stack.start_broker()
    stack.start_gateway()
    response = stack.http("POST", "/jobs", body=mutate(valid_body()))
    err = assert_error(response, 400, "invalid_argument")
    assert err["field"] in fields, f"error.field {err['field']!r} not in {fields}: {response}"


def test_valid_body_of_these_cases_is_accepted(stack):
    # Guards the table above: without the mutation the same body is a valid batch.
    stack.start_broker()
    stack.start_gateway()
    assert stack.submit(valid_body())["total_jobs"] == 5


def test_every_invalid_field_is_listed_in_errors(stack):
    stack.start_broker()
    stack.start_gateway()
    body = with_bad_normal(set_path(valid_body(), "config.monte_carlo.runs", 0))
    response = stack.http("POST", "/jobs", body=body)
    expected = {"config.monte_carlo.runs", "config.dispersions.x.distribution.std_dev"}
    err = assert_error(response, 400, "invalid_argument")
    assert err["field"] in expected, response
    errors = response.body.get("errors")
    assert isinstance(errors, list), f"no 'errors' list: {response}"
    for entry in errors:
        assert isinstance(entry.get("field"), str) and entry.get("message"), entry
    assert expected <= {e["field"] for e in errors}, response


def test_unknown_routes_and_ids_are_404(stack):
    stack.start_broker()
    stack.start_gateway()
    unknown = str(uuid.uuid4())
    for path in ("/", "/nope", "/jobs/extra/segments/here", f"/batches/{unknown}",
                 f"/batches/{unknown}/results", f"/jobs/{unknown}", f"/jobs/{unknown}/results"):
        response = stack.http("GET", path)
        assert response.status == 404, (path, response)
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method,path", [("GET", "/jobs"), ("DELETE", "/jobs"),
                                         ("PUT", "/jobs"), ("POST", "/healthz")])
def test_wrong_method_is_405_with_allow(stack, method, path):
    stack.start_broker()
    stack.start_gateway()
    response = stack.http(method, path, body=b"{}" if method in ("PUT",) else None)
    assert_error(response, 405, "method_not_allowed")
    # RFC 9110 section 15.5.6: a 405 response must list the allowed methods.
    allow = response.headers.get("Allow")
    assert allow, f"{method} {path}: 405 without an Allow header: {dict(response.headers)}"
    assert method not in [m.strip() for m in allow.split(",")], allow


def test_body_over_the_limit_is_413(stack):
    stack.start_broker()
    stack.start_gateway()
    small = stack.start_gateway(max_body_bytes=1024)
    body = load_body(TUTORIAL_BODY)
    assert len(body) > 1024
    assert_error(stack.http("POST", "/jobs", body=body, gateway=small), 413, "payload_too_large")
    # The limit is on size only: a small bad body still gets its validation error...
    assert_error(stack.http("POST", "/jobs", body={"name": "tiny"}, gateway=small), 400,
                 "invalid_argument")
    # ...and the default gateway on the same broker takes the large body.
    assert stack.submit(body)["total_jobs"] == 5


def test_non_json_content_type_is_415(stack):
    stack.start_broker()
    stack.start_gateway()
    body = load_body(TUTORIAL_BODY)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = stack.http("POST", "/jobs", body=body, headers={"Content-Type": content_type})
        assert response.status == 415, (content_type, response)
        assert_error(response, 415, "unsupported_media_type")
    # A media type with parameters is still JSON.
    status, resp = stack.http("POST", "/jobs", body=body,
                              headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 201, resp


def test_broker_down_is_503_within_the_timeout(stack):
    stack.start_broker()
    stack.start_gateway(broker_timeout_ms=1000)
    unknown = str(uuid.uuid4())
    assert_error(stack.http("GET", f"/batches/{unknown}"), 404, "not_found")

    stack.kill9(stack.broker)
    bound = scaled(10.0)
    for method, path, body in (("POST", "/jobs", valid_body()),
                               ("GET", f"/batches/{unknown}", None),
                               ("GET", f"/jobs/{unknown}", None),
                               ("POST", "/jobs", valid_body())):
        started = time.monotonic()
        response = stack.http(method, path, body=body, timeout=bound + 5)
        elapsed = time.monotonic() - started
        assert_error(response, 503, "unavailable")
        assert elapsed < bound, f"{method} {path}: 503 after {elapsed:.1f} s"

    started = time.monotonic()
    status, body = stack.http("GET", "/healthz", timeout=bound + 5)
    assert status in (200, 503), body
    assert time.monotonic() - started < bound
    assert stack.gateway.alive()
