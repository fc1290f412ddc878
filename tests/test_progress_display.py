"""The public progress module's displays, and what the engine tells them.

Real calls on file:// and mem:// drive the displays; their text goes to a real stream. The
widget of a kernel is tested in tests/test_progress_widget.py.
"""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from cloudfiles_dask import CloudFiles, progress
from cloudfiles_dask.progress import (
    LineDisplay,
    Progress,
    ProgressEvent,
    Tally,
    TimedDisplay,
    display_for,
    make_progress,
)


def _events(fn) -> list[ProgressEvent]:
    events: list[ProgressEvent] = []
    fn(events.append)
    return events


@pytest.fixture
def tree(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}/t")
    cf.puts([(f"d{i % 3}/f{i}", b"y" * i) for i in range(30)])
    return cf


# -- the events the engine emits ---------------------------------------------------------------------
def test_a_call_that_fails_names_the_file_and_closes_with_the_cause(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}/w")
    (tmp_path / "w" / "taken").mkdir(parents=True)  # a directory where a file is to go
    events: list[ProgressEvent] = []
    with pytest.raises(OSError):
        cf.puts([("ok", b"1"), ("taken", b"2")], progress=events.append)
    [error] = [e for e in events if e.kind == "error"]
    assert error.path == "taken" and "Error" in error.cause
    assert events[-1].kind == "close" and events[-1].cause is not None


def test_a_read_that_fails_per_file_counts_errors_and_the_call_ends_well(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}/r")
    cf.puts([("good", b"fine")])
    (tmp_path / "r" / "bad.gz").write_bytes(b"not gzip at all")  # stored as gzip, is not
    events = _events(lambda sink: cf.get(["good", "bad"], raise_errors=False, progress=sink))
    [error] = [e for e in events if e.kind == "error"]
    assert error.path == "bad"
    close = events[-1]
    assert close.kind == "close" and close.cause is None and close.files == 2


@pytest.mark.parametrize("dest", ["file", "mem"])  # a copy of files; uploads of file handles
def test_a_listed_transfer_goes_from_listing_to_transferring_with_the_total(tree, tmp_path, dest):
    target = f"file://{tmp_path}/copy" if dest == "file" else f"mem://listed-{os.getpid()}/copy"
    events = _events(lambda sink: tree.transfer_to(target, progress=sink))
    phases = [(e.phase, e.total) for e in events if e.kind == "phase"]
    assert phases == [("listing", None), ("transferring", 30)]
    close = events[-1]
    assert close.files == 30 and close.nbytes == sum(range(30))  # each file's bytes counted
    assert sum(e.files for e in events if e.kind == "advance") == 30
    assert close.record is not None and close.record.files == 30  # the call's record


def test_a_transfer_that_fails_names_the_source_key(tmp_path):
    src = CloudFiles(f"file://{tmp_path}/s")
    src.puts([("a", b"1")])
    events: list[ProgressEvent] = []
    with pytest.raises(FileNotFoundError):
        src.transfer_to(f"file://{tmp_path}/d", paths=["a", "missing"], progress=events.append)
    assert [e.path for e in events if e.kind == "error"] == ["missing"]
    assert "FileNotFoundError" in events[-1].cause


# -- what a display adds up ----------------------------------------------------------------------------
def test_a_tally_adds_up_calls_sharing_it():
    tally = Tally()
    a, b = Progress([tally.add], "up", 10), Progress([tally.add], "down", None)
    a.advance(4, 400)
    b.advance(1, 10, worker="tcp://w1")
    assert tally.state().total is None  # one open call does not know its total
    b.set_phase("transferring", 5)
    for i in range(7):
        a.fail(f"k{i}", KeyError(f"k{i}"))
    a.close()
    state = tally.state()
    assert (state.total, state.files, state.nbytes, state.errors) == (15, 5, 410, 7)
    assert state.first_errors[0] == ("k0", "KeyError: 'k0'")
    assert len(state.first_errors) == progress.FIRST_ERRORS
    assert state.workers == {"tcp://w1": (1, 10)}
    assert state.running and state.phase == "transferring"
    b.close(RuntimeError("boom"))
    state = tally.state()
    assert not state.running and state.failure == "RuntimeError: boom" and not state.ok
    assert "5/15 files" in state.line() and "7 errors" in state.line()


class _Recorder(TimedDisplay):
    interval = 0.02

    def __init__(self):
        super().__init__("rec")
        self.draws: list[tuple[int, bool, int]] = []  # (thread, final, files)
        self.ended = 0

    def draw(self, state, final):
        self.draws.append((threading.get_ident(), final, state.files))

    def on_end(self, state):
        self.ended += 1


def test_a_timed_display_never_draws_on_the_threads_that_move_files():
    display = _Recorder()
    movers: set[int] = set()
    with Progress([display], "threads", 4000) as bar:

        def move(n: int) -> None:
            movers.add(threading.get_ident())
            for _ in range(n):
                bar.advance(1, 10)
                time.sleep(0.0002)

        threads = [threading.Thread(target=move, args=(1000,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(movers) == 4
    drawn_on = {thread for thread, final, _ in display.draws if not final}
    assert drawn_on and not drawn_on & movers  # the timer draws, never a mover
    assert [d for d in display.draws if d[1]] == [(threading.get_ident(), True, 4000)]
    assert display.ended == 1


def test_a_display_shared_by_calls_ends_once_per_time_all_closed(tmp_path):
    display = _Recorder()
    cf = CloudFiles(f"mem://shared-{os.getpid()}/x")
    cf.puts([("a", b"1"), ("b", b"2")], progress=display)
    cf.get(["a", "b"], progress=display)
    assert display.ended == 2
    assert display.state().files == 4 and not display.state().running


def test_a_display_that_fails_to_draw_never_breaks_the_call(tmp_path):
    class Broken(TimedDisplay):
        def draw(self, state, final):
            raise ValueError("cannot draw")

    display = Broken()
    cf = CloudFiles(f"file://{tmp_path}/b")
    assert cf.puts([(f"f{i}", b"1") for i in range(50)], progress=display) == 50
    assert isinstance(display.draw_error, ValueError)


# -- text displays ---------------------------------------------------------------------------------------
def test_a_log_gets_one_line_per_interval_never_one_per_file(tmp_path):
    out = io.StringIO()
    display = LineDisplay("copy", stream=out, interval=0.2)
    cf = CloudFiles(f"file://{tmp_path}/l")
    started = time.monotonic()

    def slow():
        for i in range(40):
            time.sleep(0.02)
            yield f"f{i}", b"q" * 100

    cf.puts(slow(), progress=display)
    elapsed = time.monotonic() - started
    lines = out.getvalue().splitlines()
    assert 1 <= len(lines) <= elapsed / 0.2 + 2 < 40
    assert lines[-1].startswith("copy: 40 files, 4.0 kB")


def test_progress_true_outside_a_terminal_writes_one_line_at_the_end(tmp_path, capsys):
    cf = CloudFiles(f"file://{tmp_path}/t")
    cf.puts([(f"f{i}", b"abc") for i in range(500)], progress=True)
    err = capsys.readouterr().err.splitlines()
    assert err == [err[0]] and err[0].startswith("Uploading: 500/500 files, 1.5 kB")


def test_the_mode_can_be_chosen_and_a_bad_one_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLOUDFILES_PROGRESS", "tqdm")
    assert isinstance(display_for("x"), progress.TqdmDisplay)
    CloudFiles(f"file://{tmp_path}/q").puts([(f"f{i}", b"abcd") for i in range(20)],
                                             progress="tq")
    err = capsys.readouterr().err
    assert "tq" in err and "20/20" in err and "80 B" in err  # bytes beside the files
    monkeypatch.setenv("CLOUDFILES_PROGRESS", "loud")
    with pytest.raises(ValueError, match="CLOUDFILES_PROGRESS.*loud"):
        make_progress(True)
    monkeypatch.setenv("CLOUDFILES_PROGRESS", "line")
    assert isinstance(display_for("x"), LineDisplay)
