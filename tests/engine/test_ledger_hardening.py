"""The login ledger file itself under damage, failure and concurrency (issue 10 item 3).

A safety net must not fail open: one damaged line is skipped and reported (``problems``), never
the whole file; unknown keys are kept; a ledger that cannot be read or written raises
``LedgerUnavailableError`` (the budget then holds passwords back); concurrent runs lose and
tear no line."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dlmsdoctor.ledger import Attempt, LedgerUnavailableError, LoginLedger, parse_line


def _line(**over: object) -> bytes:
    doc: dict[str, object] = {"v": 2, "meter": "m", "at": 1000.0, "credential": "a",
                              "client_sap": 1, "mechanism": "low", "outcome": "rejected",
                              "diagnostic": "authentication-failure"}
    doc.update(over)
    return json.dumps(doc).encode() + b"\n"


GOOD = _line(credential="first")


@pytest.mark.parametrize(("damage", "reason"), [
    (b"\xff\n", "not UTF-8"),
    (_line(client_sap="1"), "client_sap has the wrong type"),
    (_line(at="yesterday"), "at has the wrong type"),
    (_line(at=float("nan")).replace(b"NaN", b"NaN"), "at is not a time"),
    (_line(outcome=None), "outcome has the wrong type"),
    (b'{"meter": "m", "at": 1}\n', "missing credential"),
    (b"[1, 2]\n", "not a JSON object"),
    (b"{" * 100_000 + b"\n", "not valid JSON"),
    (_line()[:40] + b"\n", "not valid JSON"),
])
def test_one_damaged_line_skips_only_itself(tmp_path: Path, damage: bytes, reason: str) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(GOOD + damage + _line(credential="last"))
    ledger = LoginLedger(path, wall=lambda: 1000.0)
    assert [a.credential for a in ledger.attempts("m")] == ["first", "last"]
    assert len(ledger.problems) == 1
    assert ledger.problems[0].line == 2 and reason in ledger.problems[0].reason
    assert len(ledger.recent_failures("m", 900)) == 2


def test_invalid_utf8_inside_a_line_still_counts_the_attempt(tmp_path: Path) -> None:
    """A damaged byte in a name must not hide the failed login the line records."""
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(GOOD + _line(credential="r\u00e9ader").replace(b"\\u00e9", b"\xe9"))
    ledger = LoginLedger(path, wall=lambda: 1000.0)
    assert len(ledger.recent_failures("m", 900)) == 2
    assert [p.line for p in ledger.problems] == [2] and "not UTF-8" in ledger.problems[0].reason


def test_truncated_last_line_and_missing_newline(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(GOOD + _line(credential="whole").rstrip(b"\n"))  # whole, no newline
    ledger = LoginLedger(path)
    assert [a.credential for a in ledger.attempts()] == ["first", "whole"]
    assert ledger.problems == []
    ledger.record(Attempt("m", 1.0, "next", 1, "low", "accepted"))  # not glued to "whole"
    assert [a.credential for a in ledger.attempts()] == ["first", "whole", "next"]
    path.write_bytes(GOOD + _line()[:50])  # a line cut short (a crash while appending)
    ledger.record(Attempt("m", 1.0, "after", 1, "low", "accepted"))
    assert [a.credential for a in ledger.attempts()] == ["first", "after"]
    assert [p.line for p in ledger.problems] == [2]
    path.write_bytes(GOOD + b"\xff")  # one invalid byte appended
    assert [a.credential for a in ledger.attempts()] == ["first"]
    assert "cut short" in ledger.problems[0].reason


def test_unknown_keys_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(_line(v=3, future={"x": 1}, note="from a newer dlmsdoctor"))
    ledger = LoginLedger(path)
    (attempt,) = ledger.attempts()
    assert ledger.problems == []
    assert dict(attempt.extra) == {"future": {"x": 1}, "note": "from a newer dlmsdoctor"}
    ledger.record(attempt)
    again = LoginLedger(path).attempts()
    assert again[1].extra == attempt.extra
    assert json.loads(path.read_bytes().splitlines()[1])["future"] == {"x": 1}


def test_a_directory_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.mkdir()
    ledger = LoginLedger(path)
    for call in (ledger.attempts, ledger.check_writable,
                 lambda: ledger.record(Attempt("m", 1.0, "a", 1, "low", "rejected"))):
        with pytest.raises(LedgerUnavailableError) as info:
            call()
        assert str(path) in str(info.value)


def test_a_fifo_in_its_place_does_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    os.mkfifo(path)
    ledger = LoginLedger(path)
    with pytest.raises(LedgerUnavailableError, match="not a regular file"):
        ledger.attempts()
    with pytest.raises(LedgerUnavailableError):
        ledger.record(Attempt("m", 1.0, "a", 1, "low", "rejected"))


def test_a_device_that_swallows_writes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.symlink_to("/dev/full")
    with pytest.raises(LedgerUnavailableError):
        LoginLedger(path).record(Attempt("m", 1.0, "a", 1, "low", "rejected"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the mode")
def test_no_permission(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(GOOD)
    path.chmod(0o000)
    with pytest.raises(LedgerUnavailableError, match="cannot be read"):
        LoginLedger(path).attempts()
    with pytest.raises(LedgerUnavailableError, match="cannot be written"):
        LoginLedger(path).check_writable()


def test_a_file_too_big_to_grow(tmp_path: Path) -> None:
    """A write that fails part-way (here the file size limit, EFBIG; a full disk is ENOSPC)."""
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(GOOD)
    code = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(GOOD) + 10}, {len(GOOD) + 10}))
        from pathlib import Path
        from dlmsdoctor.ledger import Attempt, LoginLedger, LedgerUnavailableError
        try:
            LoginLedger(Path({str(path)!r})).record(Attempt("m", 1.0, "a", 1, "low", "rejected"))
        except LedgerUnavailableError as exc:
            print("unavailable:", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.startswith("unavailable:"), out.stderr
    assert "cannot be written" in out.stdout


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs unshare -m (a private mount namespace) as root")
@pytest.mark.parametrize("mount", ["ro", "size=4k"])
def test_read_only_and_full_file_systems(tmp_path: Path, mount: str) -> None:
    """A real EROFS (a read-only mount, as after a remount) and ENOSPC (a full tmpfs), in a
    private mount namespace."""
    where = tmp_path / "mnt"
    where.mkdir()
    code = textwrap.dedent(f"""
        from pathlib import Path
        from dlmsdoctor.ledger import Attempt, LoginLedger, LedgerUnavailableError
        ledger = LoginLedger(Path({str(where / "ledger.jsonl")!r}))
        assert ledger.attempts() == []
        try:
            for n in range(200):
                ledger.record(Attempt("m", 1.0, "x" * 100, 1, "low", "rejected"))
            print("written")
        except LedgerUnavailableError as exc:
            print("unavailable:", exc)
    """)
    script = (f"mount -t tmpfs -o {mount} none {where} && "
              f"{sys.executable} -c {subprocess.list2cmdline([code])}")
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                         timeout=60)
    if "mount:" in out.stderr or "unshare:" in out.stderr:
        pytest.skip(f"no private mount here: {out.stderr.strip()}")
    reason = "Read-only file system" if mount == "ro" else "No space left"
    assert out.stdout.startswith("unavailable:") and reason in out.stdout, (out.stdout,
                                                                            out.stderr)


# -- concurrency --------------------------------------------------------------------------------

def _writer(path: str, who: int, count: int) -> None:
    ledger = LoginLedger(Path(path))
    for n in range(count):
        ledger.record(Attempt("m", float(n), f"w{who}-{n}" + "x" * (n * 37 % 300), who,
                              "low", "rejected", "authentication-failure", run=f"run{who}"))


def _reader(path: str, rounds: int, out: multiprocessing.Queue[object]) -> None:
    ledger = LoginLedger(Path(path))
    seen = 0
    bad: list[str] = []
    for _ in range(rounds):
        got = ledger.attempts()
        if ledger.problems:
            bad.extend(str(p) for p in ledger.problems)
        if len(got) < seen:
            bad.append(f"went back from {seen} to {len(got)} lines")
        seen = len(got)
    out.put(bad)


def test_concurrent_appends_and_reads_lose_and_tear_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.jsonl")
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = ctx.Queue()
    writers = [ctx.Process(target=_writer, args=(path, w, 150)) for w in range(6)]
    readers = [ctx.Process(target=_reader, args=(path, 150, queue)) for _ in range(3)]
    for p in writers + readers:
        p.start()
    for p in writers + readers:
        p.join(120)
        assert p.exitcode == 0
    problems = [queue.get(timeout=10) for _ in readers]
    assert problems == [[], [], []]
    ledger = LoginLedger(Path(path))
    attempts = ledger.attempts()
    assert ledger.problems == []
    assert len(attempts) == 6 * 150
    assert {a.credential.split("-")[0] for a in attempts} == {f"w{w}" for w in range(6)}
    for line in Path(path).read_bytes().splitlines():
        assert not isinstance(parse_line(line.decode()), str)


def test_a_probe_run_names_the_damaged_lines(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The run goes on with the good lines, and says which file and line it skipped: on
    stderr and as a warning finding in the session (--json, reports)."""
    from click.testing import CliRunner

    from dlmsdoctor.cli.main import cli
    from dlmsdoctor.sim.meter import MeterThread

    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    ledger = tmp_path / "data" / "ledger.jsonl"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(GOOD + b"\xff{broken\n")
    with MeterThread("default") as meter:
        result = CliRunner().invoke(cli, [
            "probe", f"127.0.0.1:{meter.port}", "--no-icmp", "--timeout", "0.5", "--json",
            "--no-save", "--cred", "mgmt=1:low:00000000"])
    assert f"login ledger {ledger}: line 2: not UTF-8 text" in result.stderr
    doc = json.loads(result.stdout)
    (finding,) = [f for f in doc["findings"] if f["code"] == "ledger.damaged_lines"]
    assert finding["severity"] == "warning" and finding["data"]["lines"] == [2]
    assert str(ledger) in finding["message"]
    assert len(LoginLedger(ledger).attempts()) == 3  # the run's two logins were recorded
