"""``cloudfiles cp --resumable / --flight-time / --io-rate / --machine-io-rate``, ``cloudfiles
watch net print | histogram`` and ``cloudfiles license``, run as the installed executable
(``tests.test_cli.run``) on real files and real local servers.

The charts are checked as real PNG files: the signature, and the size in the IHDR chunk (a Gantt
chart grows with the number of files it draws, so it shows how many flights it was given).
"""

from __future__ import annotations

import re
import signal
import struct
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers.http import HTTPObjectServer
from tests.test_cli import cloudfiles_exe, files_under, make_tree, ok, run

pytest.importorskip("matplotlib")
pytest.importorskip("psutil")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STAMP = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.\dZ"
CHART = re.compile(rf"^cloudfiles-cp-(est-io|flight-time|measured-io)-({STAMP})\.png$")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file; fails if it is not one."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def charts_in(directory: Path) -> dict[str, Path]:
    """``{"est-io" | "flight-time" | "measured-io": path}`` of the cp charts in ``directory``."""
    found = {}
    for path in directory.iterdir():
        match = CHART.match(path.name)
        if match:
            assert match[1] not in found, f"two {match[1]} charts"
            found[match[1]] = path
    return found


def tree_of(n: int, size: int = 20_000) -> dict[str, bytes]:
    return {f"d/f{i:03d}.bin": bytes([i % 251]) * size for i in range(n)}


# == cp charts ======================================================================================


def test_cp_saves_the_three_charts_under_the_original_names(tmp_path):
    files = tree_of(5)
    make_tree(tmp_path / "src", files)
    proc = ok("cp", "-r", "--flight-time", "--io-rate", "--machine-io-rate", "src", "dest", cwd=tmp_path)
    assert files_under(tmp_path / "dest") == set(files)  # the copy itself happened

    charts = charts_in(tmp_path)
    assert set(charts) == {"est-io", "flight-time", "measured-io"}
    stamps = {CHART.match(path.name)[2] for path in charts.values()}
    assert len(stamps) == 1  # one timestamp per command
    for path in charts.values():
        width, height = png_size(path)
        assert width > 100 and height > 100
    # stdout says where each went, as the original does, in its order
    assert proc.stdout.decode().splitlines() == [
        f"Saved chart: ./{charts[kind].name}" for kind in ("est-io", "flight-time", "measured-io")
    ]


def test_each_flag_makes_only_its_chart(tmp_path):
    make_tree(tmp_path / "src", tree_of(2))
    for flag, kind in (("--io-rate", "est-io"), ("--flight-time", "flight-time"),
                       ("--machine-io-rate", "measured-io")):
        run_dir = tmp_path / kind
        run_dir.mkdir()
        ok("cp", "-r", flag, str(tmp_path / "src"), "dest", cwd=run_dir)
        assert set(charts_in(run_dir)) == {kind}, flag
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = ok("cp", "-r", str(tmp_path / "src"), "dest", cwd=plain)
    assert charts_in(plain) == {} and proc.stdout == b""


def test_the_gantt_chart_draws_every_file_copied(tmp_path):
    heights = {}
    for n in (2, 24):
        run_dir = tmp_path / f"n{n}"
        make_tree(run_dir / "src", tree_of(n, size=1000))
        ok("cp", "-r", "--flight-time", "src", "dest", cwd=run_dir)
        heights[n] = png_size(charts_in(run_dir)["flight-time"])[1]
    assert heights[24] > heights[2]  # one bar per file: a taller chart


def test_charts_with_parallel_processes_merge_the_records_of_the_processes(tmp_path):
    files = tree_of(30, size=500)
    make_tree(tmp_path / "src", files)
    proc = ok("-p", "2", "cp", "-r", "--io-rate", "--flight-time", "src", "dest", cwd=tmp_path)
    assert files_under(tmp_path / "dest") == set(files)
    assert b"in this process" not in proc.stderr  # -p 2 ran as asked
    assert set(charts_in(tmp_path)) == {"est-io", "flight-time"}
    # the chart holds every file of every process: as tall as the chart of the same copy
    # without -p
    serial = tmp_path / "serial"
    serial.mkdir()
    ok("cp", "-r", "--flight-time", str(tmp_path / "src"), "dest", cwd=serial)
    assert png_size(charts_in(tmp_path)["flight-time"]) == png_size(charts_in(serial)["flight-time"])
    # the machine's chart needs no per-file record: -p 2 runs as asked, without a note
    other = tmp_path / "machine"
    other.mkdir()
    proc = ok("-p", "2", "cp", "-r", "--machine-io-rate", str(tmp_path / "src"), "dest", cwd=other)
    assert b"in this process" not in proc.stderr
    assert set(charts_in(other)) == {"measured-io"}
    assert files_under(other / "dest") == set(files)


def test_charts_of_a_copy_to_stdout(tmp_path):
    data = bytes(range(256)) * 40
    (tmp_path / "blob.bin").write_bytes(data)
    proc = ok("cp", "--io-rate", "--flight-time", "blob.bin", "-", cwd=tmp_path)
    assert proc.stdout == data  # the chart notes stay out of the data
    assert proc.stderr.decode().count("Saved chart: ./cloudfiles-cp-") == 2
    assert set(charts_in(tmp_path)) == {"est-io", "flight-time"}
    one = png_size(charts_in(tmp_path)["flight-time"])[1]
    # 20 files to stdout: 20 flights in the chart
    many = tmp_path / "many"
    make_tree(many / "src", tree_of(20, size=100))
    proc = ok("cp", "--flight-time", "src/d/*", "-", cwd=many)
    assert len(proc.stdout) == 20 * 100
    assert png_size(charts_in(many)["flight-time"])[1] > one


def test_machine_io_rate_buffer_must_be_positive(tmp_path):
    make_tree(tmp_path / "src", tree_of(1))
    proc = run("cp", "-r", "--machine-io-rate", "--machine-io-rate-buffer-sec", "0", "src", "dest", cwd=tmp_path)
    assert proc.returncode == 2 and b"machine-io-rate-buffer-sec" in proc.stderr
    assert not (tmp_path / "dest").exists()
    ok("cp", "-r", "--machine-io-rate", "--machine-io-rate-buffer-sec", "0.5", "src", "dest", cwd=tmp_path)
    assert set(charts_in(tmp_path)) == {"measured-io"}


# == cp --resumable ================================================================================


@pytest.fixture
def http_server():
    with HTTPObjectServer() as server:
        yield server


def test_cp_resumable_download_asks_only_for_the_missing_bytes(tmp_path, http_server):
    data = bytes(range(256)) * 4096  # 1 MiB
    http_server.put("files/big.bin", data)
    url = f"{http_server.url}/files/big.bin"
    half = len(data) // 2
    partial = tmp_path / ".big.bin.cfdask-partial"  # what an interrupted resumable run leaves

    partial.write_bytes(data[:half])
    ok("cp", "--resumable", url, "big.bin", cwd=tmp_path)
    assert (tmp_path / "big.bin").read_bytes() == data
    assert not partial.exists()
    gets = http_server.requests_to("files/big.bin", "GET")
    assert [g.headers.get("range") for g in gets] == [f"bytes={half}-"]

    # without --resumable a partial file is not used: the whole object is read again
    http_server.clear_requests()
    (tmp_path / "big.bin").unlink()
    partial.write_bytes(data[:half])
    ok("cp", url, "big.bin", cwd=tmp_path)
    assert (tmp_path / "big.bin").read_bytes() == data
    assert all(g.headers.get("range") in (None, "bytes=0-") for g in http_server.requests_to("files/big.bin", "GET"))


# == watch net ====================================================================================

LINE = re.compile(r"^t=(\d+\.\d)s \| RX: (\d+\.\d\d) MB/sec \((\d+\.\d\d) Gbps\) \| "
                  r"TX: (\d+\.\d\d) MB/sec \((\d+\.\d\d) Gbps\)$")


class LoopbackTraffic:
    """Downloads from a local HTTP server in a loop (traffic on the loopback interface, which the
    machine's counters include) until stopped."""

    def __init__(self):
        self.server = HTTPObjectServer().start()
        self.server.put("x", b"\0" * (4 << 20))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stop.is_set():
            with urllib.request.urlopen(f"{self.server.url}/x") as response:
                response.read()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.server.stop()


def test_watch_net_print_prints_the_rates(tmp_path):
    with LoopbackTraffic():
        proc = ok("watch", "net", "print", "--duration", "1.2", "--interval", "0.3", cwd=tmp_path)
    lines = proc.stdout.decode().splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert 3 <= len(lines) <= 6
    times = [float(m[1]) for m in matches]
    assert times == sorted(times) and times[-1] >= 1.2
    assert max(float(m[2]) for m in matches) > 1.0  # MB/s received: the loopback downloads
    for m in matches:  # the two units of one reading agree (MB/s * 8 / 1000 = Gbps)
        assert float(m[3]) == pytest.approx(float(m[2]) * 8 / 1000, abs=0.006)


def test_watch_net_print_one_line(tmp_path):
    proc = ok("watch", "net", "print", "--duration", "0.5", "--interval", "0.2", "--one-line", cwd=tmp_path)
    out = proc.stdout.decode()
    assert "\n" not in out[:-1] and out.endswith("\r\n")
    readings = out.rstrip("\r\n").split("\r")
    assert len(readings) >= 2 and all(LINE.match(r) for r in readings)


def test_watch_net_print_until_ctrl_c(tmp_path):
    proc = subprocess.Popen([cloudfiles_exe(), "watch", "net", "print", "--interval", "0.2"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline().decode()
        assert LINE.match(first.rstrip("\n")), first
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    last = out.decode().splitlines()[-1]
    assert LINE.match(last) and b"Traceback" not in err and b"Aborted" not in err


def test_watch_net_histogram(tmp_path):
    proc = ok("watch", "net", "histogram", "--duration", "1", "--interval", "0.25", "--filename", "net.png",
              cwd=tmp_path)
    assert proc.stdout.decode().strip() == "Saved chart: net.png"
    png_size(tmp_path / "net.png")
    # without --filename and without a display, the chart goes to a file of the current directory
    proc = ok("watch", "net", "histogram", "--duration", "0.3", cwd=tmp_path, env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    (name,) = [p.name for p in tmp_path.iterdir() if p.name.startswith("cloudfiles-net-histogram-")]
    assert re.fullmatch(rf"cloudfiles-net-histogram-{STAMP}\.png", name)
    assert proc.stdout.decode().strip() == f"Saved chart: ./{name}"
    png_size(tmp_path / name)


# == license ========================================================================================


def test_license_prints_the_bundled_license(tmp_path):
    text = ok("license", cwd=tmp_path).stdout.decode()
    repository_license = (Path(__file__).resolve().parents[1] / "LICENSE").read_text()
    assert text == repository_license.rstrip("\n") + "\n"
    assert text.startswith("BSD 3-Clause License") and "the cloudfiles-dask authors" in text
