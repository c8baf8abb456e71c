"""docs/openapi.yaml against the real stack.

Every route of gateway/gateway_routes.c must be in the document (and nothing else), and every
operation of the document is exercised on a real broker + gateway + runners, with each response
body (successes and 400/404/405/409/413/415/503 errors) validated against the schema the
document gives for that path, method and status.
"""

import json

import pytest

from lynx_harness import assert_error, scenario_path, source_dir, tutorial_batch
from openapi_check import OpenApi, gateway_routes, normalize


@pytest.fixture(scope="module")
def doc():
    return OpenApi()


def test_document_is_openapi_3_0_3(doc):
    assert doc.raw["openapi"] == "3.0.3"
    for path, item in doc.raw["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert "operationId" in operation, f"{method} {path}: no operationId"
            assert "200" in operation["responses"] or "201" in operation["responses"]


def test_every_gateway_route_is_documented(doc):
    routes = gateway_routes(source_dir() / "gateway" / "gateway_routes.c")
    assert len(routes) >= 15, f"route table parse found only {sorted(routes)}"
    documented = {(method, normalize(path)) for method, path in doc.operations()}
    assert routes - documented == set(), "routes missing from docs/openapi.yaml"
    assert documented - routes == set(), "documented operations the gateway lacks"


class Checker:
    """Calls the gateway and validates each answer against the document."""

    def __init__(self, stack, doc):
        self.stack, self.doc, self.covered = stack, doc, set()

    def call(self, method, template, status, path=None, body=None, headers=None,
             content_type="application/json"):
        path = path or template
        response = self.stack.http(method, path, body=body, headers=headers)
        assert response.status == status, \
            f"{method} {path}: expected {status}, got {response.status}: {response.body}"
        got_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        assert got_type == content_type, f"{method} {path}: Content-Type {got_type!r}"
        self.doc.check_response(method, template, status, response.body, content_type)
        self.covered.add((method, template))
        return response.body

    def error(self, method, path, status, code, body=None, headers=None):
        """An error outside the document's operations (unknown route, wrong method)."""
        response = self.stack.http(method, path, body=body, headers=headers)
        assert_error(response, status, code)
        self.doc.validate(response.body, self.doc.component_schema("Error"))
        return response


def _failing_batch(name, runs):
    body = tutorial_batch(name, runs, max_retries=0, required_capabilities=["failing"])
    return body


def test_every_operation_matches_the_document(make_stack, doc):
    stack = make_stack("openapi")
    stack.start_broker()
    stack.start_gateway(max_body_bytes=65536, broker_timeout_ms=1000)
    stack.start_runner("r1", scenario_path("summary_scenario.py"))
    api = Checker(stack, doc)

    health = api.call("GET", "/healthz", 200)
    assert health["runners_online"] == 1

    # -- submission: dry run, real, errors ------------------------------------------------
    preview = api.call("POST", "/jobs", 200, path="/jobs?dry_run=true",
                       body=tutorial_batch("preview", 7))
    assert preview["total_jobs"] == 7 and len(preview["parameters"]) == 5
    warned = tutorial_batch("warned", 2)
    warned["config"]["monte_carlo"]["scramble"] = True  # ignored with latin_hypercube
    warned["config"]["future_section"] = {"x": 1}  # unknown: a warning, not an error
    preview = api.call("POST", "/jobs", 200, path="/jobs?dry_run=true", body=warned)
    assert len(preview["warnings"]) == 2, preview

    good = api.call("POST", "/jobs", 201, body=tutorial_batch("good", 3))
    batch_id = good["batch_id"]
    stack.wait_batch_terminal(batch_id)

    bad = api.call("POST", "/jobs", 400,
                   body={"name": "bad", "config": {"monte_carlo": {"runs": -1}}})
    assert len(bad["errors"]) >= 2 and bad["error"]["field"] == bad["errors"][0]["field"]
    api.call("POST", "/jobs", 400, body="{not json")
    api.call("POST", "/jobs", 400, body="[1, 2]")
    api.call("POST", "/jobs", 400, path="/jobs?dry_run=maybe", body=tutorial_batch("x", 1))
    api.call("POST", "/jobs", 415, body=json.dumps(tutorial_batch("x", 1)),
             headers={"Content-Type": "text/plain"})
    big = tutorial_batch("big", 1)
    big["padding"] = "x" * 70000
    api.call("POST", "/jobs", 413, body=big)

    # -- reading batches and jobs -----------------------------------------------------------
    status = api.call("GET", "/batches/{batch_id}", 200, path=f"/batches/{batch_id}")
    assert status["batch"]["status"] == "Completed"
    assert status["jobs_by_status"]["Completed"] == 3
    api.call("GET", "/batches/{batch_id}", 404, path="/batches/no-such-batch")

    page = api.call("GET", "/batches", 200)
    assert page["count"] == 1 and page["next_cursor"] is None
    api.call("GET", "/batches", 200, path="/batches?status=Completed&limit=1")
    api.call("GET", "/batches", 400, path="/batches?limit=0")
    api.call("GET", "/batches", 400, path="/batches?status=Claimed")  # not a batch state

    jobs = api.call("GET", "/batches/{batch_id}/jobs", 200,
                    path=f"/batches/{batch_id}/jobs?limit=2")
    assert jobs["count"] == 2 and jobs["next_cursor"] is not None
    rest = api.call("GET", "/batches/{batch_id}/jobs", 200,
                    path=f"/batches/{batch_id}/jobs?limit=2&cursor={jobs['next_cursor']}")
    assert rest["count"] == 1 and rest["next_cursor"] is None
    api.call("GET", "/batches/{batch_id}/jobs", 400,
             path=f"/batches/{batch_id}/jobs?status=Done")
    api.call("GET", "/batches/{batch_id}/jobs", 400,
             path=f"/batches/{batch_id}/jobs?cursor=abc")
    api.call("GET", "/batches/{batch_id}/jobs", 404, path="/batches/nope/jobs")

    results = api.call("GET", "/batches/{batch_id}/results", 200,
                       path=f"/batches/{batch_id}/results")
    assert results["count"] == 3
    assert all(r["success"] and r["error_message"] is None for r in results["results"])
    api.call("GET", "/batches/{batch_id}/results", 404, path="/batches/nope/results")

    job_id = jobs["jobs"][0]["id"]
    job = api.call("GET", "/jobs/{job_id}", 200, path=f"/jobs/{job_id}")
    assert job["status"] == "Completed" and job["assigned_runner"] == "r1"
    assert job["claimed_at"] and job["started_at"] and job["completed_at"]
    api.call("GET", "/jobs/{job_id}", 404, path="/jobs/no-such-job")
    result = api.call("GET", "/jobs/{job_id}/results", 200, path=f"/jobs/{job_id}/results")
    assert result["job_id"] == job_id and result["success"] is True
    api.call("GET", "/jobs/{job_id}/results", 404, path="/jobs/nope/results")

    api.call("GET", "/jobs/{job_id}/telemetry", 200, path=f"/jobs/{job_id}/telemetry")
    api.call("GET", "/jobs/{job_id}/telemetry", 200,
             path=f"/jobs/{job_id}/telemetry?format=json&variables=a,b")
    csv = api.call("GET", "/jobs/{job_id}/telemetry", 200,
                   path=f"/jobs/{job_id}/telemetry?format=csv", content_type="text/csv")
    assert csv.startswith("timestamp_ns")
    api.call("GET", "/jobs/{job_id}/telemetry", 400,
             path=f"/jobs/{job_id}/telemetry?format=xml")
    api.call("GET", "/jobs/{job_id}/telemetry", 404, path="/jobs/nope/telemetry")

    listing = api.call("GET", "/jobs/{job_id}/artifacts", 200, path=f"/jobs/{job_id}/artifacts")
    assert {a["name"] for a in listing["artifacts"]} >= {"summary.json", "stdout.log"}, listing
    assert result["artifacts"] and all(a["url"].startswith(f"/jobs/{job_id}/artifacts/")
                                       for a in result["artifacts"]), result
    api.call("GET", "/jobs/{job_id}/artifacts", 404, path="/jobs/nope/artifacts")
    log = api.call("GET", "/jobs/{job_id}/artifacts/{name}", 200,
                   path=f"/jobs/{job_id}/artifacts/stdout.log", content_type="text/plain")
    assert "wrote summary.json" in log, log
    api.call("GET", "/jobs/{job_id}/artifacts/{name}", 404,
             path=f"/jobs/{job_id}/artifacts/..%2Fsummary.json")
    archive = stack.http("GET", f"/batches/{batch_id}/artifacts/summary.json")
    assert archive.status == 200 and archive.headers["Content-Type"] == "application/gzip"
    api.covered.add(("GET", "/batches/{batch_id}/artifacts/{name}"))
    api.call("GET", "/batches/{batch_id}/artifacts/{name}", 404,
             path=f"/batches/{batch_id}/artifacts/nothing.txt")
    tail = api.call("GET", "/jobs/{job_id}/logs/stdout", 200,
                    path=f"/jobs/{job_id}/logs/stdout?tail=5", content_type="text/plain")
    assert "wrote summary.json" in tail, tail
    #  The scenario wrote nothing on stderr: an empty text/plain body (no JSON to validate).
    empty = stack.http("GET", f"/jobs/{job_id}/logs/stderr")
    assert empty.status == 200 and empty.body is None, empty
    assert empty.headers["Content-Type"] == "text/plain", empty.headers
    api.covered.add(("GET", "/jobs/{job_id}/logs/stderr"))
    for stream in ("stdout", "stderr"):
        api.call("GET", f"/jobs/{{job_id}}/logs/{stream}", 400,
                 path=f"/jobs/{job_id}/logs/{stream}?tail=x")
        api.call("GET", f"/jobs/{{job_id}}/logs/{stream}", 404, path=f"/jobs/nope/logs/{stream}")

    api.call("POST", "/jobs/{job_id}/cancel", 409, path=f"/jobs/{job_id}/cancel")
    api.call("POST", "/jobs/{job_id}/cancel", 404, path="/jobs/nope/cancel")
    api.call("POST", "/batches/{batch_id}/cancel", 409, path=f"/batches/{batch_id}/cancel")
    api.call("POST", "/batches/{batch_id}/cancel", 404, path="/batches/nope/cancel")

    # -- a failing job: Failed, error_message, success false ---------------------------------
    drained = api.call("POST", "/runners/{runner_id}/drain", 200, path="/runners/r1/drain")
    assert drained["status"] == "Maintenance"
    stack.start_runner("r2", scenario_path("fail_scenario.py"),
                       capabilities=("basilisk", "failing"))
    failing = api.call("POST", "/jobs", 201, body=_failing_batch("failing", 1))
    stack.wait_batch_terminal(failing["batch_id"])
    failed_status = api.call("GET", "/batches/{batch_id}", 200,
                             path=f"/batches/{failing['batch_id']}")
    assert failed_status["batch"]["status"] == "Failed"
    failed_job = api.call("GET", "/batches/{batch_id}/jobs", 200,
                          path=f"/batches/{failing['batch_id']}/jobs?status=Failed")["jobs"][0]
    assert failed_job["error_message"], failed_job
    failed_result = api.call("GET", "/jobs/{job_id}/results", 200,
                             path=f"/jobs/{failed_job['id']}/results")
    assert failed_result["success"] is False and failed_result["error_message"], failed_result
    api.call("GET", "/batches/{batch_id}/results", 200,
             path=f"/batches/{failing['batch_id']}/results")

    # -- pending work, cancelled: nullable fields, waiting_reason, 200 cancels ---------------
    api.call("POST", "/runners/{runner_id}/drain", 200, path="/runners/r2/drain")
    waiting = api.call("POST", "/jobs", 201, body=tutorial_batch("waiting", 3))
    waiting_status = api.call("GET", "/batches/{batch_id}", 200,
                              path=f"/batches/{waiting['batch_id']}")
    assert waiting_status["batch"]["status"] == "Pending"
    assert waiting_status["jobs_by_status"]["Pending"] == 3
    pending = api.call("GET", "/batches/{batch_id}/jobs", 200,
                       path=f"/batches/{waiting['batch_id']}/jobs")["jobs"]
    pending_job = api.call("GET", "/jobs/{job_id}", 200, path=f"/jobs/{pending[0]['id']}")
    assert pending_job["status"] == "Pending"
    for key in ("claimed_at", "started_at", "completed_at", "assigned_runner", "error_message"):
        assert pending_job[key] is None, (key, pending_job)
    api.call("GET", "/jobs/{job_id}/results", 404, path=f"/jobs/{pending[0]['id']}/results")
    cancelled = api.call("POST", "/jobs/{job_id}/cancel", 200,
                         path=f"/jobs/{pending[0]['id']}/cancel")
    assert cancelled == {"job_id": pending[0]["id"], "status": "Cancelled"}
    batch_cancel = api.call("POST", "/batches/{batch_id}/cancel", 200,
                            path=f"/batches/{waiting['batch_id']}/cancel")
    assert batch_cancel["status"] == "Cancelled" and batch_cancel["cancelled_jobs"] == 3
    api.call("POST", "/batches/{batch_id}/cancel", 409,
             path=f"/batches/{waiting['batch_id']}/cancel")
    api.call("GET", "/jobs/{job_id}", 200, path=f"/jobs/{pending[1]['id']}")
    api.call("GET", "/batches", 200, path="/batches?limit=2")

    # -- runners ----------------------------------------------------------------------------
    runners = api.call("GET", "/runners", 200)
    assert [r["runner_id"] for r in runners["runners"]] == ["r1", "r2"]
    api.call("GET", "/runners/{runner_id}", 200, path="/runners/r2")
    api.call("GET", "/runners/{runner_id}", 404, path="/runners/nope")
    resumed = api.call("POST", "/runners/{runner_id}/resume", 200, path="/runners/r1/resume")
    assert resumed["status"] == "Idle"
    api.call("POST", "/runners/{runner_id}/resume", 404, path="/runners/nope/resume")
    api.call("POST", "/runners/{runner_id}/drain", 404, path="/runners/nope/drain")

    # -- enrollment and keys (security on, as by default) ---------------------------------------
    import zmq
    asked = api.call("POST", "/runners/enrollments", 201,
                     body={"runner_id": "r9", "public_key": zmq.curve_keypair()[0].decode(),
                           "host": "ws-9"})
    assert asked["status"] == "pending" and len(asked["broker_public_key"]) == 40, asked
    other = api.call("POST", "/runners/enrollments", 201,
                     body={"runner_id": "r10", "public_key": zmq.curve_keypair()[0].decode()})
    listed = api.call("GET", "/runners/enrollments", 200, path="/runners/enrollments?status=pending")
    assert {e["id"] for e in listed["enrollments"]} == {asked["id"], other["id"]}
    api.call("GET", "/runners/enrollments", 400, path="/runners/enrollments?status=maybe")
    api.call("POST", "/runners/enrollments", 400, body={"runner_id": "r11", "public_key": "short"})
    approved = api.call("POST", "/runners/enrollments/{enrollment_id}/approve", 200,
                        path=f"/runners/enrollments/{asked['id']}/approve")
    assert approved["status"] == "approved"
    api.call("POST", "/runners/enrollments/{enrollment_id}/approve", 409,
             path=f"/runners/enrollments/{asked['id']}/approve")
    rejected = api.call("POST", "/runners/enrollments/{enrollment_id}/reject", 200,
                        path=f"/runners/enrollments/{other['id']}/reject")
    assert rejected["status"] == "rejected"
    api.call("POST", "/runners/enrollments/{enrollment_id}/reject", 404,
             path="/runners/enrollments/enr-nope/reject")
    revoked = api.call("DELETE", "/runners/{runner_id}/key", 200, path="/runners/r9/key")
    assert revoked == {"runner_id": "r9", "revoked": True}
    api.call("DELETE", "/runners/{runner_id}/key", 404, path="/runners/r9/key")
    api.call("GET", "/runners", 401, headers={"Authorization": None})

    # -- errors outside the operations --------------------------------------------------------
    api.error("GET", "/no/such/route", 404, "not_found")
    response = api.error("DELETE", "/jobs", 405, "method_not_allowed")
    assert response.headers.get("Allow") == "POST"
    response = api.error("POST", f"/batches/{batch_id}", 405, "method_not_allowed",
                         body={})
    assert response.headers.get("Allow") == "GET"

    missing = doc.operations() - api.covered
    assert not missing, f"operations never exercised: {sorted(missing)}"

    # -- 503: the broker is gone ---------------------------------------------------------------
    stack.kill9(stack.broker)
    api.call("GET", "/healthz", 503)
    api.call("GET", "/batches", 503)
    api.call("POST", "/jobs", 503, body=tutorial_batch("late", 1))
