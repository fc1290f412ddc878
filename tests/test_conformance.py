"""Conformance: the original CloudFiles' own test file (cloud-files 6.4.3's ``automated_test.py``,
downloaded from PyPI at test time and cached) passes against cloudfiles_dask through an import
shim, except for the failures that a row of README's "Differences from the original CloudFiles"
table explains (tests/conformance/expected_failures.txt). How it runs: tests/conformance/runner.py.
"""

from __future__ import annotations

import pytest

from tests.conformance import runner


def test_readme_differences_table_is_parsed():
    rows = runner.readme_difference_rows()
    assert "`delete()` return" in rows
    assert "topic" not in rows  # the header is not a row


def test_expected_failures_file_is_well_formed():
    entries, problems = runner.load_expected()
    rows = set(runner.readme_difference_rows())
    problems += [
        f"{runner.EXPECTED_FILE.name}:{e.line}: {e.row!r} is not a row of README's table"
        for e in entries
        if e.row not in rows
    ]
    assert not problems, "\n".join(problems)


# Download (once) + the child run (child_timeout()) + waiting for another run on this machine.
@pytest.mark.timeout(runner.DOWNLOAD_TIMEOUT + 2 * runner.child_timeout() + 120)
def test_original_cloudfiles_suite():
    verdict = runner.judge(runner.run_suite())
    runner.save_summary(verdict)
    if not verdict.ok:
        pytest.fail(verdict.summary, pytrace=False)
    print(verdict.summary)  # shown with -rP or -s


def _judged(statuses: dict[str, str], entries: list[tuple[str, str]], rows=("CLI errors",)):
    result = runner.RunResult(
        outcomes={n: runner.Outcome(s, f"Error of {n}") for n, s in statuses.items()}, duration=1.0
    )
    listed = [runner.Entry(n, r, i) for i, (n, r) in enumerate(entries, 1)]
    return runner.judge(result, listed, list(rows), [])


def _many_passed(n: int = 40) -> dict[str, str]:
    return {f"automated_test.py::test_ok[{i}]": "passed" for i in range(n)}


def test_judge_accepts_failures_explained_by_a_row():
    verdict = _judged({**_many_passed(), "automated_test.py::test_cli_cat": "failed"},
                      [("automated_test.py::test_cli_cat", "CLI errors")])
    assert verdict.ok, verdict.summary
    assert "passed 40, failed 1" in verdict.summary


def test_judge_rejects_an_unlisted_failure_and_shows_its_error():
    verdict = _judged({**_many_passed(), "automated_test.py::test_x": "error"}, [])
    assert not verdict.ok
    assert "automated_test.py::test_x" in verdict.summary
    assert "Error of automated_test.py::test_x" in verdict.summary


def test_judge_rejects_a_stale_entry():
    verdict = _judged(_many_passed(), [("automated_test.py::test_ok[3]", "CLI errors")])
    assert not verdict.ok
    assert "stale entry" in verdict.summary


def test_judge_rejects_an_entry_naming_no_readme_row():
    failing = {**_many_passed(), "automated_test.py::test_cli_cat": "failed"}
    verdict = _judged(failing, [("automated_test.py::test_cli_cat", "not a row of the table")])
    assert not verdict.ok
    assert "not the topic cell of a row" in verdict.summary


def test_judge_rejects_a_low_pass_rate_even_if_every_failure_is_listed():
    failing = {f"automated_test.py::test_f[{i}]": "failed" for i in range(3)}
    verdict = _judged({**_many_passed(40), **failing}, [(n, "CLI errors") for n in failing])
    assert not verdict.ok  # 40 / 43 < 95 %
    assert "only 93.0% of the selected tests passed" in verdict.summary


def test_expected_failures_file_syntax(tmp_path):
    path = tmp_path / "expected.txt"
    path.write_text("# comment\n\na.py::t | CLI errors\na.py::u\n")
    entries, problems = runner.load_expected(path)
    assert [(e.nodeid, e.row) for e in entries] == [("a.py::t", "CLI errors")]
    assert len(problems) == 1 and "names no README Differences row" in problems[0]


def test_junit_node_ids(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="s">'
        '<testcase classname="automated_test" name="test_a[mem-0]" />'
        '<testcase classname="automated_test.TestTransmissionMonitor" name="test_init">'
        '<failure message="AssertionError: no">text</failure></testcase>'
        '<testcase classname="automated_test" name="test_b"><skipped message="s" /></testcase>'
        '<testcase classname="" name="automated_test"><error message="collection failure" />'
        '</testcase><testcase time="0.07" />'  # the test a stopped (SIGINT) run was in
        "</testsuite></testsuites>"
    )
    outcomes, collection = runner.parse_junit(junit)
    assert {n: o.status for n, o in outcomes.items()} == {
        "automated_test.py::test_a[mem-0]": "passed",
        "automated_test.py::TestTransmissionMonitor::test_init": "failed",
        "automated_test.py::test_b": "skipped",
    }
    assert list(collection) == ["automated_test"]
