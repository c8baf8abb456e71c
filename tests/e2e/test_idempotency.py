"""Idempotency-Key: a client that retries a mutating call gets the first answer, never a second
batch or cancel (issue 11, item 8a). The key's answer is durable with what it created, and a
request the broker sees after its gateway deadline is dropped, not run late."""

import os
import signal
import time

from lynx_harness import assert_error, tutorial_batch


def post(stack, path, body, key=None):
    headers = {"Idempotency-Key": key} if key else None
    return stack.http("POST", path, body=body, headers=headers)


def batch_names(stack):
    return [b["name"] for b in stack.get_ok("/batches?limit=1000")["batches"]]


def test_a_repeated_submit_gets_the_first_answer_even_after_a_restart(stack):
    stack.start_broker()
    stack.start_gateway()
    body = tutorial_batch("once", 3)
    first = post(stack, "/jobs", body, key="study-42")
    assert first.status == 201, first
    again = post(stack, "/jobs", body, key="study-42")
    assert again.status == 201 and again.body == first.body, (first.body, again.body)
    assert batch_names(stack).count("once") == 1

    #  The same key for another request is refused, not silently answered.
    other = post(stack, "/jobs", tutorial_batch("other", 3), key="study-42")
    assert_error(other, 409, "conflict", "Idempotency-Key")
    assert_error(post(stack, "/jobs", body, key="x" * 129), 400, "invalid_argument",
                 "Idempotency-Key")
    assert_error(post(stack, "/jobs", body, key="has space"), 400, "invalid_argument",
                 "Idempotency-Key")

    #  Durable: a broker killed and restarted still knows the answer.
    stack.kill9(stack.broker)
    stack.restart_broker()
    stack.wait_healthy()
    after = post(stack, "/jobs", body, key="study-42")
    assert after.status == 201 and after.body["batch_id"] == first.body["batch_id"], after
    assert batch_names(stack).count("once") == 1
    assert "repeated request answered as the first" in stack.broker.stderr_text()


def _stalled_post(stack, body, key, hold_secs):
    """POST while the broker is stopped (SIGSTOP): the gateway answers 503. The broker is
    continued hold_secs after the POST began."""
    stack.get_ok("/batches")  # the gateway now knows the token: the POST goes to the broker
    started = time.monotonic()
    os.kill(stack.broker.pid, signal.SIGSTOP)
    try:
        stalled = post(stack, "/jobs", body, key=key)
        assert stalled.status == 503, stalled
        time.sleep(max(0.0, hold_secs - (time.monotonic() - started)))  # the outage itself
    finally:
        os.kill(stack.broker.pid, signal.SIGCONT)
    stack.wait_healthy()


def test_a_retry_after_a_503_runs_the_study_once(stack):
    stack.start_broker()
    #  503 after 1 s of broker silence; the request's deadline is the 1.5 s submit timeout.
    stack.start_gateway(broker_timeout_ms=1000, extra_args=["--submit-timeout-ms", "1500"])

    #  Continued at once: the broker still had time, and ran the submit the client was told
    #  failed (the fault measured on 2026-12-03). The retry gets that batch, not a second one.
    body = tutorial_batch("ran-late", 2)
    _stalled_post(stack, body, "retry-1", 0)
    stack.wait_for(lambda: "ran-late" in batch_names(stack), 10, what="the late submit to run")
    retry = post(stack, "/jobs", body, key="retry-1")
    assert retry.status == 201, retry
    assert batch_names(stack).count("ran-late") == 1

    #  Continued after the deadline: the broker drops the request instead of running it late,
    #  and the retry creates the batch, once.
    body = tutorial_batch("dropped", 2)
    _stalled_post(stack, body, "retry-2", 2.5)
    stack.wait_for(lambda: "expired request dropped op=batch.submit" in
                   stack.broker.stderr_text(), 10, what="the late request to be dropped")
    assert "dropped" not in batch_names(stack)
    retry = post(stack, "/jobs", body, key="retry-2")
    assert retry.status == 201, retry
    again = post(stack, "/jobs", body, key="retry-2")
    assert again.body["batch_id"] == retry.body["batch_id"]
    assert batch_names(stack).count("dropped") == 1


def test_a_repeated_cancel_gets_the_first_answer(stack):
    stack.start_broker()
    stack.start_gateway()
    batch_id = post(stack, "/jobs", tutorial_batch("to-cancel", 2)).body["batch_id"]
    first = post(stack, f"/batches/{batch_id}/cancel", {}, key="cancel-1")
    assert first.status == 200 and first.body["status"] == "Cancelled", first
    again = post(stack, f"/batches/{batch_id}/cancel", {}, key="cancel-1")
    assert again.status == 200 and again.body == first.body, again
    #  Without the key the second cancel is what it is: the batch already ended.
    assert post(stack, f"/batches/{batch_id}/cancel", {}).status == 409
    drained = post(stack, "/runners/ws-9/drain", {}, key="drain-1")
    assert post(stack, "/runners/ws-9/drain", {}, key="drain-1").body == drained.body


def test_the_cli_sends_a_key_per_invocation_or_the_one_it_is_given(stack, tmp_path):
    import json
    import re
    from test_cli import lynx, ok

    stack.start_broker()
    stack.start_gateway()
    study = tmp_path / "study.json"
    study.write_text(json.dumps(tutorial_batch("cli-key", 2)))
    url = stack.gateway.url
    pattern = re.compile(r"submitted batch (\S+):")
    env = {"LYNX_IDEMPOTENCY_KEY": "nightly-2026-12-04"}
    first = pattern.search(ok(lynx("submit", study, url=url, env=env)).stdout).group(1)
    second = pattern.search(ok(lynx("submit", study, url=url, env=env)).stdout).group(1)
    assert first == second
    #  Without the variable every invocation is a new request.
    third = pattern.search(ok(lynx("submit", study, url=url)).stdout).group(1)
    assert third != first
    assert batch_names(stack).count("cli-key") == 2
