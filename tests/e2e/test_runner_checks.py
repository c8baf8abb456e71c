"""Misconfiguration is loud (issue 9.3): a runner with no broker answering says so on stderr
and prints READY only once registered; a runner whose setup cannot work refuses to start with
the field and the reason; `lynx-runner --check` runs every check plus a broker round trip."""

import os
import re

import pytest

from lynx_harness import free_port, scaled, scenario_path

PROBE = scenario_path("probe_scenario.py")


def dead_endpoint():
    """A loopback endpoint nothing listens on (yet)."""
    return f"tcp://127.0.0.1:{free_port()}"


def test_runner_without_a_broker_says_so_and_is_ready_only_once_registered(stack):
    endpoint = dead_endpoint()
    runner = stack.start_runner("lonely-01", PROBE, broker_endpoint=endpoint, wait_ready=False)
    runner.may_exit = False  # it must keep waiting, not give up

    def warned():
        text = runner.stderr_text()
        return text if f"no answer from a broker at {endpoint}" in text else None

    text = stack.wait_for(warned, scaled(20), what="the runner to warn that no broker answers")
    assert "--broker" in text and "LYNX_RUNNER_BROKER_ENDPOINT" in text, text
    assert re.search(r"after \d+ s", text), text
    assert not any(line.startswith("READY") for line in runner.stdout_lines()), \
        runner.stdout_lines()
    assert runner.alive(), runner.describe()

    #  The broker turns up on that endpoint: the runner registers, and only now says READY.
    stack.start_broker(runner_endpoint=endpoint)
    stack.start_gateway()
    fields = runner.wait_ready(timeout=scaled(30))
    assert fields["runner_id"] == "lonely-01", fields
    stack.runners.append(runner)
    stack.wait_for(lambda: "broker answered after" in runner.stderr_text(), scaled(10),
                   what="the runner to note that the broker answered")
    view = stack.get_ok("/runners/lonely-01")
    assert view["status"] == "Idle", view


def _not_executable(tmp):
    path = tmp / "python-not-executable"
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(path, 0o644)
    return {"python_executable": str(path)}, "python_executable", "not executable"


def _plain_file(tmp):
    blocker = tmp / "a-file"
    blocker.write_text("not a directory\n")
    return {"output_root": str(blocker / "runs")}, "output_root", str(blocker)


BROKEN_SETUPS = {
    "missing entrypoint": lambda tmp: (
        {"basilisk_entrypoint": str(tmp / "no_such_scenario.py")}, "basilisk_entrypoint",
        "No such file or directory"),
    "interpreter not on PATH": lambda tmp: (
        {"python_executable": "python3-that-does-not-exist"}, "python_executable",
        "not found in PATH"),
    "interpreter not executable": _not_executable,
    "output root not writable": _plain_file,
    "working directory missing": lambda tmp: (
        {"working_directory": str(tmp / "gone")}, "working_directory",
        "No such file or directory"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SETUPS))
def test_runner_refuses_to_start_with_a_broken_setup(stack, case):
    stack.start_broker()
    config, field, reason = BROKEN_SETUPS[case](stack.root)
    runner = stack.start_runner("broken-01", PROBE, extra_config=config, wait_ready=False)
    assert runner.wait_exit(timeout=scaled(15)) == 2, runner.describe()
    text = runner.stderr_text()
    assert f"lynx-runner: {field}: " in text and reason in text, text
    assert "not starting" in text, text
    assert not runner.stdout_lines(), runner.stdout_lines()


def check_output(runner):
    return "\n".join(runner.stdout_lines())


def test_check_passes_with_a_broker_and_registers_nothing(stack):
    stack.start_broker()
    stack.start_gateway()
    runner = stack.start_runner("checked-01", PROBE, extra_args=["--check"], wait_ready=False)
    assert runner.wait_exit(timeout=scaled(20)) == 0, runner.describe()
    out = check_output(runner)
    for field in ("working_directory", "python_executable", "basilisk_entrypoint",
                  "output_root", "broker_endpoint"):
        assert re.search(rf"^ok\s+{field}\s", out, re.M), out
    assert "answered PING" in out and "all checks passed" in out, out
    assert stack.get_ok("/runners")["runners"] == [], "--check must not register"


def test_check_fails_without_a_broker_or_with_a_broken_setup(stack):
    endpoint = dead_endpoint()
    runner = stack.start_runner("checked-02", PROBE, broker_endpoint=endpoint,
                                extra_args=["--check"], wait_ready=False)
    assert runner.wait_exit(timeout=scaled(20)) == 1, runner.describe()
    out = check_output(runner)
    assert re.search(rf"^FAIL\s+broker_endpoint\s+no answer from a broker at {endpoint}", out,
                     re.M), out
    assert re.search(r"^ok\s+basilisk_entrypoint\s", out, re.M), out
    assert "check failed" in out, out

    stack.start_broker()
    broken = stack.start_runner(
        "checked-03", PROBE, extra_args=["--check"], wait_ready=False,
        extra_config={"basilisk_entrypoint": str(stack.root / "missing.py")})
    assert broken.wait_exit(timeout=scaled(20)) == 1, broken.describe()
    out = check_output(broken)
    assert re.search(r"^FAIL\s+basilisk_entrypoint\s+.*missing\.py", out, re.M), out
    assert re.search(r"^ok\s+broker_endpoint\s", out, re.M), out
