"""The conformance run: the original CloudFiles' own test file, run against cloudfiles_dask.

README promises that code written for ``cloudfiles`` works after changing the import. This
module proves it with the original's test suite, unchanged:

1. ``pip download --no-deps --no-binary :all: cloud-files==6.4.3`` (PyPI only) into a cache
   directory (``$CLOUDFILES_DASK_CONFORMANCE_CACHE``, else
   ``${XDG_CACHE_HOME:-~/.cache}/cloudfiles-dask-conformance/``), reused when present and
   checked against a pinned sha256; ``automated_test.py`` is extracted from it.
2. The file is copied into a fresh temporary directory, which is the child pytest's rootdir
   and cwd (the original's tests write next to their file and in the cwd), and run with the
   project venv's Python (this interpreter: the editable install of this checkout) as
   ``python -m pytest automated_test.py`` with ``tests/conformance/shim`` first on PYTHONPATH
   (``cloudfiles`` -> ``cloudfiles_dask``, ``cloudfiles_cli`` -> ``cloudfiles_dask.cli``) and the
   venv's bin directory first on PATH (its CLI tests run ``cloudfiles ...``: ours). Tests that
   need the internet are deselected (``NETWORK_ONLY``); the S3 tests run on moto's in-process
   ``mock_aws``, as the file expects; a guard plugin (``plugins/cfdask_conformance_guard.py``)
   makes any attempt to leave the machine fail at once.
3. The junit XML report is compared with ``expected_failures.txt``: every failing test must be
   listed there, with the row of README's "Differences from the original CloudFiles" table that
   explains it; a listed test that passes is a stale entry; at least ``MIN_PASS_RATIO`` of the
   selected tests must pass.

``tests/test_conformance.py`` runs this in the ordinary ``pytest`` run. By hand (extra
arguments go to the child pytest, e.g. ``-k test_size``; the entry checks then cover only the
tests that ran)::

    .venv/bin/python -m tests.conformance.runner [-k EXPR]

The last run's junit XML, output and summary are kept in ``<cache>/last-run/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ORIGINAL = "cloud-files"
VERSION = "6.4.3"
SDIST = f"cloud_files-{VERSION}.tar.gz"
SDIST_SHA256 = "6c2f0e327e04af78d52e446485c0653e8a5c690e59df0e25516051106193f65c"
TEST_FILE = "automated_test.py"
PYPI_INDEX = "https://pypi.org/simple"

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIM = HERE / "shim"
PLUGINS = HERE / "plugins"
GUARD_PLUGIN = "cfdask_conformance_guard"
EXPECTED_FILE = HERE / "expected_failures.txt"
README = REPO / "README.md"
DIFFERENCES_HEADING = "## Differences from the original CloudFiles"

#: Tests of the original file that need the internet (real public buckets), never run here.
#: Keys are node-id prefixes, as pytest's --deselect takes them.
NETWORK_ONLY = {
    f"{TEST_FILE}::test_http_read[": "reads gs://seunglab-test through https://storage.googleapis.com",
    f"{TEST_FILE}::test_http_read_brotli_image": "reads https://open-neurodata.s3.amazonaws.com",
}

#: Passed tests / selected tests must reach this.
MIN_PASS_RATIO = 0.95
#: The whole child pytest run, in seconds (about 150-290 s on the 2-core machine, idle to busy);
#: ``CLOUDFILES_DASK_CONFORMANCE_TIMEOUT`` overrides it.
CHILD_TIMEOUT = 420
#: One test of the original suite (pytest-timeout, signal method: the test fails, the run goes on).
PER_TEST_TIMEOUT = 120
DOWNLOAD_TIMEOUT = 300

#: Set in the child's environment: the option that gives the CLI's errors the original's form
#: (stdout, exit status 0), as a user migrating scripts that read them there would set it (README,
#: "Command line"). The library's defaults are otherwise untouched: no retry or timeout is
#: shortened (the guard plugin refuses any network access itself).
CHILD_ENV = {"CLOUDFILES_ERRORS": "stdout"}

#: Variables of the parent's environment that must not reach the child: they would change what is
#: imported, which pytest plugins load, or which real credentials and endpoints are used.
_DROPPED_ENV = re.compile(
    r"^(PYTHONPATH|PYTHONHOME|PYTHONSTARTUP|PYTEST_.*|AWS_.*|BOTO_.*|GOOGLE_.*|CLOUDSDK_.*"
    r"|STORAGE_EMULATOR_HOST|CLOUD_FILES_.*|CLOUD_VOLUME_.*|CLOUDFILES_.*|COV_CORE_.*)$"
)


# ------------------------------------------------------------------------- the original's file


def child_timeout() -> float:
    return float(os.environ.get("CLOUDFILES_DASK_CONFORMANCE_TIMEOUT") or CHILD_TIMEOUT)


def cache_dir() -> Path:
    explicit = os.environ.get("CLOUDFILES_DASK_CONFORMANCE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cloudfiles-dask-conformance"


@contextlib.contextmanager
def _flock(path: Path, timeout: float, what: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what}: {path} stayed locked for {timeout:.0f} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip_env() -> dict[str, str]:
    """pip reaches PyPI and nothing else: no config file, find-links or extra index (they also
    apply to the build dependencies pip installs to read the sdist's metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=PYPI_INDEX,
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def fetch_test_file() -> Path:
    """The original's ``automated_test.py``, from the pinned sdist in the cache (downloaded once)."""
    cache = cache_dir()
    sdist = cache / SDIST
    extracted = cache / f"cloud_files-{VERSION}-{TEST_FILE}"
    with _flock(cache / "download.lock", DOWNLOAD_TIMEOUT + 60, "downloading the sdist"):
        if sdist.exists() and _sha256(sdist) != SDIST_SHA256:
            sdist.unlink()  # a damaged or different file: fetch it again
            extracted.unlink(missing_ok=True)
        if not sdist.exists():
            with tempfile.TemporaryDirectory(dir=cache, prefix="download-") as tmp:
                cmd = [
                    sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    f"{ORIGINAL}=={VERSION}", "-d", tmp,
                ]
                proc = subprocess.run(
                    cmd, env=_pip_env(), capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT
                )
                got = Path(tmp) / SDIST
                if proc.returncode != 0 or not got.exists():
                    raise RuntimeError(
                        f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n"
                        + (proc.stdout + proc.stderr)[-3000:]
                    )
                if _sha256(got) != SDIST_SHA256:
                    raise RuntimeError(
                        f"{SDIST} from PyPI has sha256 {_sha256(got)}, expected {SDIST_SHA256}"
                    )
                os.replace(got, sdist)
        if not extracted.exists():
            with tarfile.open(sdist) as tar:
                member = tar.getmember(f"cloud_files-{VERSION}/{TEST_FILE}")
                data = tar.extractfile(member).read()
            tmp_file = extracted.with_suffix(".tmp")
            tmp_file.write_bytes(data)
            os.replace(tmp_file, extracted)
    return extracted


# ------------------------------------------------------------------------ README and the entries


def readme_difference_rows(readme: Path = README) -> list[str]:
    """The "topic" cells (verbatim) of README's "Differences from the original CloudFiles" table."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index(DIFFERENCES_HEADING)
    except ValueError:
        raise RuntimeError(f"{readme} has no heading {DIFFERENCES_HEADING!r}") from None
    rows: list[str] = []
    in_table = False
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            in_table = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if cells and not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells[0])
        elif in_table:
            break
    if len(rows) < 2:
        raise RuntimeError(f"no table under {DIFFERENCES_HEADING!r} in {readme}")
    return rows[1:]  # rows[0] is the header


@dataclass
class Entry:
    nodeid: str
    row: str
    line: int


def load_expected(path: Path = EXPECTED_FILE) -> tuple[list[Entry], list[str]]:
    """Entries ``<node id> | <README Differences row>``, one a line; ``#`` starts a comment line.
    Returns the entries and the problems of the file's syntax."""
    entries: list[Entry] = []
    problems: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, sep, row = (part.strip() for part in line.partition(" | "))
        if not sep or not row:
            problems.append(
                f"{path.name}:{number}: names no README Differences row "
                f"(expected `<node id> | <topic cell of the row>`): {line}"
            )
            continue
        entries.append(Entry(nodeid, row, number))
    return entries, problems


# ------------------------------------------------------------------------------- the child run


@dataclass
class Outcome:
    status: str  # passed, failed, error, skipped
    message: str = ""
    text: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "error")

    def error_lines(self, limit: int = 3) -> list[str]:
        """The first lines of the error, and where in the original's file it was raised."""
        lines = [line for line in self.message.splitlines() if line.strip()][:limit]
        lines = [line if len(line) <= 240 else line[:237] + "..." for line in lines]
        where = re.findall(r"^(\S+\.py):(\d+): (\w+)", self.text, flags=re.M)
        if where:
            lines.append("at " + ", ".join(f"{f}:{n}" for f, n, _ in where[-2:]))
        return lines or ["(no message)"]


@dataclass
class RunResult:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    collection_errors: dict[str, Outcome] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the run itself went wrong
    network_attempts: list[str] = field(default_factory=list)
    returncode: int | None = None
    deselected: int | None = None
    duration: float = 0.0
    output_tail: str = ""
    extra_args: list[str] = field(default_factory=list)


def child_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _DROPPED_ENV.match(k)}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", os.defpath)])
    env["PYTHONPATH"] = os.pathsep.join([str(SHIM), str(PLUGINS)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the shim's directory
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugins named on the command line
    env["PYTHONIOENCODING"] = "utf-8"
    env["TMPDIR"] = str(workdir / "tmp")
    home = workdir / "home"  # aliases.json, secrets and locks: never the user's
    env["CLOUD_FILES_DIR"] = str(home / ".cloudfiles")
    env["CLOUD_VOLUME_DIR"] = str(home / ".cloudvolume")
    env["AWS_CONFIG_FILE"] = str(home / "aws-config-none")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(home / "aws-credentials-none")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["CFDASK_CONFORMANCE_NET_LOG"] = str(workdir / "network-attempts.log")
    env.update(CHILD_ENV)
    return env


_PREFLIGHT = r"""
import importlib.util, importlib.metadata, json, shutil
def origin(name):
    spec = importlib.util.find_spec(name)
    return spec.origin if spec else None
try:
    original = importlib.metadata.version("cloud-files")
except importlib.metadata.PackageNotFoundError:
    original = None
print(json.dumps({
    "cloudfiles": origin("cloudfiles"), "cloudfiles_cli": origin("cloudfiles_cli"),
    "cloudfiles_dask": origin("cloudfiles_dask"), "script": shutil.which("cloudfiles"),
    "original_installed": original, "moto": origin("moto"), "numpy": origin("numpy"),
    "pytest_timeout": origin("pytest_timeout"),
}))
"""


def preflight(env: dict[str, str], workdir: Path) -> list[str]:
    """The child imports our shim and this checkout's package, and runs our ``cloudfiles``."""
    proc = subprocess.run(
        [sys.executable, "-c", _PREFLIGHT], env=env, cwd=workdir, capture_output=True, text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        return [f"preflight of the child's environment failed:\n{proc.stderr[-2000:]}"]
    found = json.loads(proc.stdout)
    problems = []
    for name in ("cloudfiles", "cloudfiles_cli"):
        if not found[name] or not Path(found[name]).is_relative_to(SHIM):
            problems.append(f"`import {name}` in the child finds {found[name]}, not the shim in {SHIM}")
    if not found["cloudfiles_dask"] or not Path(found["cloudfiles_dask"]).is_relative_to(REPO):
        problems.append(
            f"`import cloudfiles_dask` with {sys.executable} finds {found['cloudfiles_dask']}, "
            f"not this checkout ({REPO}): run the tests with the venv that has the editable "
            "install (`pip install -e '.[test]'`)"
        )
    script = found["script"]
    bindir = Path(sys.executable).parent
    if not script or Path(script).parent != bindir:
        problems.append(f"`cloudfiles` on the child's PATH is {script}, not the one in {bindir}")
    elif "cloudfiles_dask" not in Path(script).read_text(encoding="utf-8", errors="replace"):
        problems.append(f"{script} is not cloudfiles_dask's console script (the original's?)")
    if found["original_installed"]:
        problems.append(
            f"the original {ORIGINAL} {found['original_installed']} is installed in this venv: "
            "its `cloudfiles` script and modules could stand in for ours"
        )
    for name in ("moto", "numpy", "pytest_timeout"):
        if not found[name]:
            problems.append(f"{name} is not installed in {sys.prefix} (the test extras need it)")
    return problems


def _nodeid(classname: str, name: str) -> str:
    parts = classname.split(".")
    return "::".join([parts[0] + ".py", *parts[1:], name])


def parse_junit(path: Path) -> tuple[dict[str, Outcome], dict[str, Outcome]]:
    outcomes: dict[str, Outcome] = {}
    collection: dict[str, Outcome] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        outcome = Outcome("passed")
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                status = "failed" if tag == "failure" else tag
                outcome = Outcome(status, node.get("message") or "", node.text or "")
                break
        if not classname:
            if name and outcome.failed:  # a file that could not be collected
                collection[name] = outcome
            continue  # else the test a stopped run was in (pytest records it without a name)
        nodeid = _nodeid(classname, name)
        previous = outcomes.get(nodeid)
        if previous is None or (outcome.failed and not previous.failed):
            outcomes[nodeid] = outcome
    return outcomes, collection


def run_suite(extra_args: list[str] | None = None) -> RunResult:
    result = RunResult(extra_args=list(extra_args or []))
    try:
        test_file = fetch_test_file()
    except Exception as e:  # noqa: BLE001 - reported, not raised
        result.problems.append(f"could not get {ORIGINAL} {VERSION}'s {TEST_FILE}: {e}")
        return result
    workdir = Path(tempfile.mkdtemp(prefix="cfdask-conformance-"))
    try:
        (workdir / "tmp").mkdir()
        (workdir / "home").mkdir()
        shutil.copyfile(test_file, workdir / TEST_FILE)
        (workdir / "pytest.ini").write_text(
            "[pytest]\n"
            f"timeout = {PER_TEST_TIMEOUT}\n"
            "timeout_method = signal\n"
            "junit_family = xunit2\n"
            "junit_suite_name = cloud-files-conformance\n"
        )
        env = child_env(workdir)
        result.problems += preflight(env, workdir)
        if result.problems:
            return result
        junit = workdir / "junit.xml"
        cmd = [
            sys.executable, "-m", "pytest", TEST_FILE,
            "-c", str(workdir / "pytest.ini"), "--rootdir", str(workdir),
            "-p", "no:cacheprovider", "-p", "pytest_timeout", "-p", GUARD_PLUGIN,
            f"--junitxml={junit}", "--tb=short", "-v", "-rN",
        ]
        for prefix in NETWORK_ONLY:
            cmd += ["--deselect", prefix]
        cmd += result.extra_args
        # The original writes to fixed paths (/tmp/cloudfiles...): one run at a time per machine.
        try:
            with _flock(cache_dir() / "run.lock", child_timeout() + 60, "another conformance run"):
                _run_child(cmd, env, workdir, result)
        except RuntimeError as e:  # the lock was not had in time
            result.problems.append(str(e))
            return result
        if junit.exists():
            result.outcomes, result.collection_errors = parse_junit(junit)
        elif not result.problems:
            result.problems.append(
                f"the child pytest (exit {result.returncode}) wrote no junit report:\n{result.output_tail}"
            )
        log = workdir / "network-attempts.log"
        if log.exists():
            result.network_attempts = log.read_text(encoding="utf-8").splitlines()
        _keep_last_run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _run_child(cmd: list[str], env: dict[str, str], workdir: Path, result: RunResult) -> None:
    output = workdir / "pytest-output.txt"
    start = time.monotonic()
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        timed_out = False
        try:
            result.returncode = proc.wait(timeout=child_timeout())
        except subprocess.TimeoutExpired:
            timed_out = True
            result.problems.append(
                f"the child pytest ran over {child_timeout():.0f} s and was stopped: the tests "
                "of the original suite that ran are judged; the output's tail shows the last one "
                "started (a hang, or a machine too busy: CLOUDFILES_DASK_CONFORMANCE_TIMEOUT)"
            )
            proc.send_signal(signal.SIGINT)  # pytest then writes the junit report of what ran
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        finally:
            # The child's session: the child itself, and any `cloudfiles` it left running.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            result.returncode = proc.wait()
    result.duration = time.monotonic() - start
    text = output.read_text(encoding="utf-8", errors="replace")
    found = re.search(r"collected \d+ items? / (\d+) deselected", text)
    result.deselected = int(found.group(1)) if found else None
    result.output_tail = "\n".join(text.splitlines()[-40:])
    if timed_out:
        started = re.findall(rf"^({re.escape(TEST_FILE)}::\S+) *$", text, flags=re.M)
        if started:
            result.problems.append(f"the test running when the run was stopped: {started[-1]}")


def _keep_last_run(workdir: Path) -> None:
    last = cache_dir() / "last-run"
    with contextlib.suppress(OSError):
        last.mkdir(parents=True, exist_ok=True)
        for name in ("junit.xml", "pytest-output.txt", "network-attempts.log"):
            if (workdir / name).exists():
                shutil.copyfile(workdir / name, last / name)


# ------------------------------------------------------------------------------- the comparison


@dataclass
class Verdict:
    ok: bool
    summary: str


def judge(result: RunResult, entries: list[Entry] | None = None,
          rows: list[str] | None = None, entry_problems: list[str] | None = None) -> Verdict:
    if entries is None:
        entries, entry_problems = load_expected()
    if rows is None:
        rows = readme_difference_rows()
    entry_problems = list(entry_problems or [])
    filtered = bool(result.extra_args)
    problems = list(result.problems)
    out: list[str] = []
    head = f"{ORIGINAL} {VERSION} {TEST_FILE} against cloudfiles_dask"
    if result.duration:
        head += f" (child pytest: {result.duration:.0f} s, exit {result.returncode})"
    out.append(head)
    if filtered:
        out.append(f"filtered run ({' '.join(result.extra_args)}): entries of tests not run are not checked")

    for name, outcome in result.collection_errors.items():
        problems.append(f"{name} could not be collected")
        out.append(f"COLLECTION ERROR in {name}:")
        out += ["    " + line for line in (outcome.text or outcome.message).splitlines()[-15:]]

    outcomes = result.outcomes
    selected = len(outcomes)
    passed = sorted(n for n, o in outcomes.items() if o.status == "passed")
    failed = sorted(n for n, o in outcomes.items() if o.failed)
    skipped = sorted(n for n, o in outcomes.items() if o.status == "skipped")
    ratio = len(passed) / selected if selected else 0.0
    out.append(
        f"selected {selected}, passed {len(passed)}, failed {len(failed)}, skipped {len(skipped)}: "
        f"{ratio:.1%} passed (needs >= {MIN_PASS_RATIO:.0%})"
    )
    deselected = "?" if result.deselected is None else result.deselected
    out.append(
        f"deselected {deselected} tests{', with the filter' if filtered else ''}; network-only: "
        + "; ".join(f"{prefix.split('::')[-1].rstrip('[')} ({why})" for prefix, why in NETWORK_ONLY.items())
    )
    if selected and ratio < MIN_PASS_RATIO and not filtered:
        problems.append(f"only {ratio:.1%} of the selected tests passed (needs {MIN_PASS_RATIO:.0%})")
    if not selected and not problems:
        problems.append("no test of the original suite ran")

    known_rows = set(rows)
    by_id: dict[str, Entry] = {}
    for entry in entries:
        where = f"{EXPECTED_FILE.name}:{entry.line}"
        if entry.nodeid in by_id:
            entry_problems.append(f"{where}: {entry.nodeid} is listed twice")
        by_id[entry.nodeid] = entry
        if entry.row not in known_rows:
            entry_problems.append(
                f"{where}: {entry.nodeid} names {entry.row!r}, which is not the topic cell of a row "
                f"of README's {DIFFERENCES_HEADING[3:]!r} table"
            )
        outcome = outcomes.get(entry.nodeid)
        if outcome is None:
            if not filtered and not result.problems and not result.collection_errors:
                entry_problems.append(f"{where}: {entry.nodeid} is not a selected test of the run")
        elif outcome.status == "passed":
            entry_problems.append(f"{where}: {entry.nodeid} passed: stale entry, remove it")
    problems += entry_problems

    expected_failed = [n for n in failed if n in by_id]
    unexpected = [n for n in failed if n not in by_id]
    out.append(
        f"expected failures (README Differences rows): {len(entries)} listed, "
        f"{len(expected_failed)} failed as expected"
    )
    if unexpected:
        problems.append(f"{len(unexpected)} tests failed that {EXPECTED_FILE.name} does not list")
        out.append(f"UNEXPECTED FAILURES ({len(unexpected)}):")
        for nodeid in unexpected:
            out.append(f"  {nodeid}")
            out += ["      " + line for line in outcomes[nodeid].error_lines()]
    if entry_problems:
        out.append(f"PROBLEMS WITH {EXPECTED_FILE.name} ({len(entry_problems)}):")
        out += ["  " + p for p in entry_problems]
    if result.network_attempts:
        problems.append(f"{len(result.network_attempts)} attempts to reach the network")
        out.append(f"NETWORK ATTEMPTS BLOCKED ({len(result.network_attempts)}, test and address):")
        out += ["  " + line for line in result.network_attempts[:30]]
    for problem in result.problems:
        out.append("RUN PROBLEM: " + problem)
    if result.problems and result.output_tail:
        out.append("tail of the child's output:")
        out += ["    " + line for line in result.output_tail.splitlines()]
    ok = not problems
    out.append("RESULT: " + ("OK" if ok else "FAIL: " + "; ".join(p.splitlines()[0] for p in problems)))
    return Verdict(ok, "\n".join(out))


def save_summary(verdict: Verdict) -> None:
    """Keep the summary beside the last run's junit report and output."""
    with contextlib.suppress(OSError):
        last = cache_dir() / "last-run"
        last.mkdir(parents=True, exist_ok=True)
        (last / "summary.txt").write_text(verdict.summary + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    verdict = judge(run_suite(sys.argv[1:] if argv is None else argv))
    save_summary(verdict)
    print(verdict.summary)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
