"""pytest wiring for the end-to-end tests.

`stack` gives a test one Stack under its tmp_path; `make_stack` gives it as many as it needs.
Every stack is stopped after the test, pass or fail, and a failing test's report carries the
stdout and stderr tails of every process it started.
"""

import pytest

from lynx_harness import Stack


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for stack in getattr(item, "_lynx_stacks", []):
            report.sections.append((f"lynx processes ({stack.name})", stack.log_tails()))


@pytest.fixture
def make_stack(request, tmp_path):
    stacks = []
    request.node._lynx_stacks = stacks

    def factory(name=None):
        name = name or f"stack{len(stacks)}"
        stack = Stack(tmp_path / name, name=name)
        stacks.append(stack)
        return stack

    yield factory
    problems = []
    for stack in stacks:
        try:
            stack.stop()
        except AssertionError as exc:
            problems.append(f"{stack.name}: {exc}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def stack(make_stack):
    return make_stack("stack")
