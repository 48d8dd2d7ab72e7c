"""Large foreign captures (issue 10): the file is streamed, each connection and the run keep a
bounded number of frames, and what was not kept is counted and said (open, the session, a
finding) while the verdict stays the one the whole capture gives."""

from __future__ import annotations

import importlib.util
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli import open_cmd
from dlmsdoctor.cli.main import cli
from dlmsdoctor.codec.stream import split_stream
from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.output import capture_read
from dlmsdoctor.output.capture_read import read_capture
from dlmsdoctor.session import Session
from dlmsdoctor.tap.rules import diagnose  # a foreign capture is a poller's traffic

SMALL_CONNECTION = (20, 5)
SMALL_RUN = (300, 150, 100)


def _bench() -> ModuleType:
    path = Path(__file__).parents[2] / "bench" / "large_inputs.py"
    spec = importlib.util.spec_from_file_location("large_inputs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


def _pcap(tmp_path: Path, name: str, megabytes: float, **kwargs: Any) -> Path:
    path = tmp_path / name
    BENCH.write_pcap(str(path), megabytes, **kwargs)
    return path


def _verdict(session: Session) -> tuple[str, list[str]]:
    diagnosis = diagnose(session)
    return diagnosis.status, [c.code for c in diagnosis.causes]


@pytest.fixture(scope="module")
def poller(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 360 readings of a meter, one TCP connection each; the meter resets the
    connection at reading 180 (in the middle: neither among the first nor the last kept)."""
    return _pcap(tmp_path_factory.mktemp("large"), "poller.pcap", 1.0, reset_at=(180,))


def test_what_is_not_kept_is_counted(poller: Path) -> None:
    whole = read_capture(poller)
    capped = read_capture(poller, keep_connection=SMALL_CONNECTION, keep_run=SMALL_RUN)
    assert "capture_summary" not in whole.settings  # under the default caps: all of it kept
    doc = capped.settings["capture_summary"]
    assert doc["frames_total"] == len(whole.frames)
    assert doc["frames_kept"] == len(capped.frames) < len(whole.frames)
    assert doc["frames_kept"] + doc["frames_summarised"] == doc["frames_total"]
    assert len(capped.frames) <= sum(SMALL_RUN) + 2 * sum(SMALL_CONNECTION)
    assert sum(doc["by_direction"].values()) == doc["frames_summarised"]
    assert doc["by_kind"] == {"hdlc": doc["frames_summarised"]}
    assert doc["by_direction"]["tx"] == doc["by_direction"]["rx"]  # a poller: one answer each
    dropped = [f for f in whole.frames if f.conn_id not in {c.id for c in capped.connections}]
    assert doc["bytes_summarised"] == sum(len(f.data) for f in dropped)
    assert doc["first_at"] == pytest.approx(min(f.at for f in dropped))
    assert doc["last_at"] == pytest.approx(max(f.at for f in dropped))
    assert doc["connections_total"] == len(whole.connections)
    assert doc["connections_kept"] + doc["connections_summarised"] == doc["connections_total"]
    assert doc["closes_summarised"] == {"local": doc["connections_summarised"]}
    finding = next(pf for pf in capped.findings if pf.code == "capture.summarised")
    assert f"{doc['frames_summarised']} of {doc['frames_total']} frames" in finding.message


def test_a_failure_in_the_middle_is_kept_and_the_verdict_is_the_same(poller: Path) -> None:
    whole = read_capture(poller)
    capped = read_capture(poller, keep_connection=SMALL_CONNECTION, keep_run=SMALL_RUN)
    reset = [c for c in capped.connections if c.close_how is CloseHow.RST]
    assert len(reset) == 1 and reset[0].closed_by_peer
    assert "tap.meter.closed_on_request" in _verdict(whole)[1]
    assert _verdict(capped) == _verdict(whole)
    # without the connections that show something, the reset would be summarised away
    blind = read_capture(poller, keep_connection=SMALL_CONNECTION, keep_run=(300, 150, 0))
    assert not [c for c in blind.connections if c.close_how is CloseHow.RST]
    assert _verdict(blind) != _verdict(whole)


def test_one_long_connection_keeps_its_first_and_last_frames(tmp_path: Path) -> None:
    path = _pcap(tmp_path, "long.pcap", 0.2, one_connection=True)
    whole = read_capture(path)
    capped = read_capture(path, keep_connection=SMALL_CONNECTION, keep_run=SMALL_RUN)
    assert len(whole.connections) == len(capped.connections)  # the bench writes one or two
    for conn in capped.connections:
        mine = [f for f in capped.frames if f.conn_id == conn.id]
        all_of_it = [f for f in whole.frames if f.conn_id == conn.id]
        assert len(mine) == sum(SMALL_CONNECTION)
        assert [f.data for f in mine] == (
            [f.data for f in all_of_it[:20]] + [f.data for f in all_of_it[-5:]])
        assert mine[-2].data == BENCH.hd.build_disc(BENCH.SERVER, 16)  # the end is kept
        middle = all_of_it[20:-5]
        assert conn.bytes_dropped == sum(len(f.data) for f in middle)
        assert f"{len(middle)} frame(s) in the middle counted, not kept" in conn.note
        cut = capped.settings["capture_summary"]["connections_cut"]
        assert cut[str(conn.id)] == len(middle)
    finding = next(pf for pf in capped.findings if pf.code == "capture.summarised")
    assert "kept only their first and last frames" in finding.message
    assert _verdict(capped) == _verdict(whole)


@pytest.mark.parametrize("wrapper", [False, True])
def test_frames_are_the_splitters_cut(tmp_path: Path, wrapper: bool) -> None:
    """The cached cut of a whole frame gives what the splitter gives on the whole stream."""
    session = read_capture(_pcap(tmp_path, "cut.pcap", 0.05, wrapper=wrapper))
    assert session.frames
    for conn in session.connections:
        for direction in Direction:
            mine = [f for f in session.frames
                    if f.conn_id == conn.id and f.direction is direction]
            stream = b"".join(f.data for f in mine)
            reference = split_stream(stream, direction=direction.value)
            assert [(f.data, f.kind.value) for f in reference] == [
                (f.data, f.kind) for f in mine]


def _peak(path: Path) -> int:
    tracemalloc.start()
    try:
        read_capture(path, keep_connection=SMALL_CONNECTION, keep_run=SMALL_RUN)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_file_is_streamed(tmp_path: Path) -> None:
    small = _pcap(tmp_path, "small.pcap", 0.5)
    large = _pcap(tmp_path, "large.pcap", 2.5)
    _peak(small)  # imports and caches, once
    grew = _peak(large) - _peak(small)
    assert grew < 1_000_000, f"peak memory grew by {grew} bytes for 2 MB more capture"


def test_open_says_what_was_summarised(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = _pcap(tmp_path, "open.pcap", 0.3)
    monkeypatch.setattr(capture_read, "KEEP_FRAMES_PER_RUN", (100, 50, 50))
    monkeypatch.setattr(open_cmd, "MAX_CONNECTION_LINES", 5)
    result = CliRunner().invoke(cli, ["open", str(path)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("summary "))
    assert "frames" in line and "counted but not kept" in line
    assert "connections summarised whole (closed: " in line
    # a poller's capture: its connections (the first few), no probe rungs
    assert "  conn 1  poller " in result.output and "more connection(s)" in result.output
    assert "step " not in result.output


@pytest.mark.slow
def test_twenty_megabytes_open_quickly_in_little_memory(tmp_path: Path) -> None:
    path = _pcap(tmp_path, "twenty.pcap", 20)
    start = time.perf_counter()
    session = read_capture(path)
    diagnose(session)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert session.settings["capture_summary"]["frames_total"] > 150_000
    assert len(session.frames) <= sum(capture_read.KEEP_FRAMES_PER_RUN) + 5000
