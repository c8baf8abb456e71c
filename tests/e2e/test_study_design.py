"""Study design through the real HTTP API: every validation error is a 400 naming its field
path (in "error.field" and in the "errors" list, all of them at once), unknown fields come back
as warnings, choice values keep their JSON type on their way to GET /jobs/{id}, and a dry run
previews a study without creating anything.

See docs/study-design.md for the rules these requests exercise.
"""

import copy
import json

import pytest

from lynx_harness import Stack, assert_error, load_body

TUTORIAL_BODY = "tutorial_basic_orbit_batch.json"
DISP = "config.dispersions."


def valid_body():
    body = json.loads(load_body(TUTORIAL_BODY))
    body["name"] = "study-design"
    return body


def with_dist(name, distribution):
    """A mutation adding dispersion `name` with the given distribution."""
    def mutate(body):
        body["config"]["dispersions"][name] = {"distribution": distribution, "units": ""}
        return body
    return mutate


def with_correlations(correlations):
    def mutate(body):
        body["config"]["correlations"] = correlations
        return body
    return mutate


def with_monte_carlo(**fields):
    def mutate(body):
        body["config"]["monte_carlo"].update(fields)
        return body
    return mutate


def with_sobol_dimensions(count):
    def mutate(body):
        body["config"]["monte_carlo"]["sampling_method"] = "quasi_monte_carlo"
        body["config"]["dispersions"] = {
            f"x{i}": {"distribution": {"type": "uniform", "min": 0, "max": 1}}
            for i in range(count)}
        return body
    return mutate


def pair(a, b, r):
    return {"a": a, "b": b, "rank_correlation": r}


#  (case id, mutation of valid_body(), expected error field, expected message)
INVALID = [
    ("unknown_method", with_monte_carlo(sampling_method="sobol"),
     "config.monte_carlo.sampling_method",
     "unknown sampling method 'sobol' (supported: monte_carlo, latin_hypercube, "
     "quasi_monte_carlo)"),
    ("scramble_not_boolean", with_monte_carlo(sampling_method="quasi_monte_carlo",
                                              scramble="yes"),
     "config.monte_carlo.scramble", "must be a boolean"),
    ("runs_zero", with_monte_carlo(runs=0), "config.monte_carlo.runs",
     "must be between 1 and 10000000"),
    ("runs_too_many", with_monte_carlo(runs=10000001), "config.monte_carlo.runs",
     "must be between 1 and 10000000"),
    ("too_many_sobol_dimensions", with_sobol_dimensions(1025), "config.dispersions",
     "quasi_monte_carlo supports at most 1024 dispersions (got 1025)"),
    ("name_not_identifier", with_dist("dry-mass", {"type": "uniform", "min": 0, "max": 1}),
     DISP + "dry-mass", "must be a valid identifier ([A-Za-z_][A-Za-z0-9_]*)"),
    ("unknown_distribution", with_dist("x", {"type": "gaussian"}),
     DISP + "x.distribution.type",
     "unknown distribution type 'gaussian' (supported: uniform, normal, truncated_normal, "
     "lognormal, triangular, exponential, beta, choice, constant)"),
    ("missing_field", with_dist("x", {"type": "normal", "std_dev": 1}),
     DISP + "x.distribution.mean", "required"),
    ("mistyped_field", with_dist("x", {"type": "normal", "mean": "0", "std_dev": 1}),
     DISP + "x.distribution.mean", "must be a number"),
    ("normal_std_dev_zero", with_dist("x", {"type": "normal", "mean": 0, "std_dev": 0}),
     DISP + "x.distribution.std_dev", "must be > 0"),
    ("uniform_min_not_below_max", with_dist("x", {"type": "uniform", "min": 2, "max": 2}),
     DISP + "x.distribution.min", "must be less than max"),
    ("truncated_min_not_below_max",
     with_dist("x", {"type": "truncated_normal", "mean": 0, "std_dev": 1, "min": 3, "max": 1}),
     DISP + "x.distribution.min", "must be less than max"),
    ("truncated_mass_underflows",
     with_dist("x", {"type": "truncated_normal", "mean": 0, "std_dev": 1, "min": 39, "max": 50}),
     DISP + "x.distribution",
     "[min, max] lies wholly more than 38 standard deviations above the mean: its probability "
     "underflows"),
    ("lognormal_both_pairs",
     with_dist("x", {"type": "lognormal", "mu": 0, "sigma": 1, "mean": 1, "std_dev": 1}),
     DISP + "x.distribution", "give either mu and sigma or mean and std_dev, not both"),
    ("lognormal_sigma_zero", with_dist("x", {"type": "lognormal", "mu": 0, "sigma": 0}),
     DISP + "x.distribution.sigma", "must be > 0"),
    ("lognormal_mean_negative",
     with_dist("x", {"type": "lognormal", "mean": -1, "std_dev": 1}),
     DISP + "x.distribution.mean", "must be > 0"),
    ("triangular_mode_outside",
     with_dist("x", {"type": "triangular", "min": 0, "mode": 7, "max": 5}),
     DISP + "x.distribution.mode", "must be between min and max"),
    ("exponential_rate_zero", with_dist("x", {"type": "exponential", "rate": 0}),
     DISP + "x.distribution.rate", "must be > 0"),
    ("beta_alpha_negative", with_dist("x", {"type": "beta", "alpha": -1, "beta": 2}),
     DISP + "x.distribution.alpha", "must be > 0"),
    ("choice_empty", with_dist("x", {"type": "choice", "values": []}),
     DISP + "x.distribution.values", "must not be empty"),
    ("choice_bad_value", with_dist("x", {"type": "choice", "values": ["a", [1]]}),
     DISP + "x.distribution.values[1]", "must be a number or a string"),
    ("choice_weight_negative",
     with_dist("x", {"type": "choice", "values": ["a", "b"], "weights": [1, -1]}),
     DISP + "x.distribution.weights[1]", "must be >= 0"),
    ("choice_weights_zero",
     with_dist("x", {"type": "choice", "values": ["a", "b"], "weights": [0, 0]}),
     DISP + "x.distribution.weights", "must not all be zero"),
    ("choice_weights_length",
     with_dist("x", {"type": "choice", "values": ["a", "b"], "weights": [1]}),
     DISP + "x.distribution.weights", "must have one entry per value (2)"),
    ("constant_without_value", with_dist("x", {"type": "constant"}),
     DISP + "x.distribution.value", "required"),
    ("correlation_unknown_name", with_correlations([pair("raan_deg", "nope", 0.5)]),
     "config.correlations[0].b", "unknown dispersion 'nope'"),
    ("correlation_with_itself", with_correlations([pair("raan_deg", "raan_deg", 0.5)]),
     "config.correlations[0].b", "must name a different dispersion than a"),
    ("correlation_out_of_range", with_correlations([pair("raan_deg", "eccentricity", -1.5)]),
     "config.correlations[0].rank_correlation", "must be between -1 and 1"),
    ("correlation_duplicate", with_correlations([pair("raan_deg", "eccentricity", 0.5),
                                                 pair("eccentricity", "raan_deg", 0.5)]),
     "config.correlations[1]",
     "duplicate pair ('eccentricity', 'raan_deg'), also at config.correlations[0]"),
    ("correlation_not_positive_definite",
     with_correlations([pair("raan_deg", "eccentricity", 0.9),
                        pair("eccentricity", "inclination_deg", 0.9),
                        pair("inclination_deg", "raan_deg", -0.9)]),
     "config.correlations", "correlation matrix is not positive definite"),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One broker and gateway for the table-driven cases, which create nothing."""
    stack = Stack(tmp_path_factory.mktemp("study-design"), name="study-design")
    try:
        stack.start_broker()
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()


def post_jobs(stack, body, dry_run=False):
    return stack.http("POST", "/jobs?dry_run=true" if dry_run else "/jobs", body=body)


def batch_count(stack):
    status, health = stack.http("GET", "/healthz")
    assert status == 200, health
    return health["batches"]


def test_the_valid_body_is_accepted(api):
    # Guards the table: without a mutation the body is a valid study.
    status, body = post_jobs(api, valid_body(), dry_run=True)
    assert status == 200, body


@pytest.mark.parametrize("mutate,field,message", [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_invalid_study_is_400_naming_the_field(api, mutate, field, message):
    response = post_jobs(api, mutate(valid_body()))
    err = assert_error(response, 400, "invalid_argument", field=field)
    assert message in err["message"], err
    errors = response.body.get("errors")
    assert isinstance(errors, list), response
    assert {"field": field, "message": message} in errors, errors


def test_several_mistakes_are_all_listed(api):
    body = valid_body()
    config = body["config"]
    config["monte_carlo"]["sampling_method"] = "random"
    config["dispersions"]["a"] = {"distribution": {"type": "beta", "alpha": 0, "beta": 0}}
    config["dispersions"]["b"] = {"distribution": {"type": "triangular", "min": 0, "mode": 9,
                                                   "max": 1}}
    config["dispersions"]["c"] = {"distribution": {"type": "choice", "values": ["x"],
                                                   "weights": [-2]}}
    config["correlations"] = [pair("a", "zzz", 0.5)]
    response = post_jobs(api, body)
    err = assert_error(response, 400, "invalid_argument",
                       field="config.monte_carlo.sampling_method")
    assert "(and 5 more errors)" in err["message"], err
    fields = [e["field"] for e in response.body["errors"]]
    assert fields == ["config.monte_carlo.sampling_method",
                      DISP + "a.distribution.alpha",
                      DISP + "a.distribution.beta",
                      DISP + "b.distribution.mode",
                      DISP + "c.distribution.weights[0]",
                      "config.correlations[0].b"], response.body


def test_unknown_fields_come_back_as_warnings(stack):
    stack.start_broker()
    stack.start_gateway()
    body = valid_body()
    config = body["config"]
    config["notes"] = "first try"
    config["monte_carlo"]["antithetic"] = True
    config["dispersions"]["x"] = {"distribution": {"type": "beta", "alpha": 2, "beta": 3,
                                                   "mode": 0.3}}
    config["correlations"] = [dict(pair("x", "raan_deg", 0.3), kind="spearman")]
    reply = stack.submit(body)
    warnings = reply.get("warnings")
    assert isinstance(warnings, list), reply
    fields = {w["field"] for w in warnings}
    assert fields == {"config.notes", "config.monte_carlo.antithetic",
                      DISP + "x.distribution.mode", "config.correlations[0].kind"}, warnings
    assert all(w["message"] == "unknown field (ignored)" for w in warnings), warnings


def test_choice_values_keep_their_json_type(stack):
    stack.start_broker()
    stack.start_gateway()
    body = valid_body()
    body["runs_override"] = 12
    dispersions = body["config"]["dispersions"]
    dispersions["attitude_mode"] = {"distribution": {
        "type": "choice", "values": ["nadir", "sun", 3, 2.5], "weights": [1, 1, 1, 1]}}
    dispersions["engine_build"] = {"distribution": {"type": "constant", "value": "v2.1"}}
    dispersions["thrusters"] = {"distribution": {"type": "constant", "value": 4}}
    reply = stack.submit(body)
    batch_id = reply["batch_id"]

    status, page = stack.http("GET", f"/batches/{batch_id}/jobs")
    assert status == 200, page
    jobs = page["jobs"]
    assert len(jobs) == 12, page
    seen = set()
    for item in jobs:
        status, job = stack.http("GET", f"/jobs/{item['id']}")
        assert status == 200, job
        parameters = job["run_config"]["parameters"]
        mode = parameters["attitude_mode"]
        assert mode in ("nadir", "sun", 3, 2.5), parameters
        # JSON keeps the type: 3 is an integer, 2.5 a real, "nadir" a string.
        assert type(mode) is {"nadir": str, "sun": str, 3: int, 2.5: float}[mode], parameters
        seen.add(mode)
        assert parameters["engine_build"] == "v2.1", parameters
        assert type(parameters["thrusters"]) is int and parameters["thrusters"] == 4, parameters
        assert isinstance(parameters["raan_deg"], float), parameters
    assert {"nadir", "sun"} & seen, seen


def test_dry_run_previews_without_creating_anything(stack):
    stack.start_broker()
    stack.start_gateway()
    before = batch_count(stack)
    body = valid_body()
    body["runs_override"] = 8
    body["config"]["notes"] = "dry"
    body["config"]["dispersions"]["color"] = {"distribution": {
        "type": "choice", "values": ["red", "green"]}}
    status, reply = post_jobs(stack, body, dry_run=True)
    assert status == 200, reply
    assert reply["dry_run"] is True, reply
    assert reply["total_jobs"] == 8, reply
    assert reply["seed"] == 42, reply
    assert reply["warnings"] == [{"field": "config.notes",
                                  "message": "unknown field (ignored)"}], reply
    parameters = reply["parameters"]
    assert isinstance(parameters, list) and len(parameters) == 5, reply
    names = set(body["config"]["dispersions"])
    for run in parameters:
        assert set(run) == names, run
        assert run["color"] in ("red", "green"), run
    assert "batch_id" not in reply, reply
    assert batch_count(stack) == before

    # The same study submitted for real starts with the same parameter sets.
    real = stack.submit(copy.deepcopy(body))
    assert batch_count(stack) == before + 1
    status, page = stack.http("GET", f"/batches/{real['batch_id']}/jobs")
    assert status == 200, page
    by_run = {}
    for item in page["jobs"]:
        status, job = stack.http("GET", f"/jobs/{item['id']}")
        by_run[job["run_config"]["run_id"]] = job["run_config"]["parameters"]
    assert [by_run[i] for i in range(5)] == parameters

    # A dry run of a broken study is the same 400 as a real submission.
    body["config"]["monte_carlo"]["runs"] = 0
    del body["runs_override"]
    assert_error(post_jobs(stack, body, dry_run=True), 400, "invalid_argument",
                 field="config.monte_carlo.runs")
    assert batch_count(stack) == before + 1


def test_dry_run_of_a_small_study_shows_every_run(stack):
    stack.start_broker()
    stack.start_gateway()
    body = valid_body()
    body["runs_override"] = 3
    body["config"]["monte_carlo"]["sampling_method"] = "quasi_monte_carlo"
    body["config"]["monte_carlo"]["scramble"] = True
    status, reply = post_jobs(stack, body, dry_run=True)
    assert status == 200, reply
    assert len(reply["parameters"]) == 3, reply
    assert reply["warnings"] == [], reply
