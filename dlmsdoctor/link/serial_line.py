"""What a serial line is set to and who else holds it: pure helpers, no port is opened here.

- Line settings as people write them (``8N1``, ``7E1``) and the time a byte takes on the wire.
- Who holds a device: on Linux every ``/proc/PID/fd/N`` link names an open file, so a poller
  service, ModemManager or a terminal program that has ``/dev/ttyUSB0`` open is found by its PID
  and command line. Two programs reading one line steal each other's bytes (DOMAIN.md section 6):
  dlmsdoctor then sends nothing.
- UUCP lock files (``/var/lock/LCK..ttyUSB0``, the FHS convention minicom, cu and ModemManager
  follow): a lock held by a live process is respected.
- Permission: the group that owns the device (``dialout`` on Debian/Ubuntu, ``uucp`` on Arch).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

# The rates a sweep tries, 9600 first (the usual rate, DOMAIN.md section 6), then by how often
# meters are configured at them in the field.
SWEEP_RATES = (9600, 19200, 2400, 4800, 38400, 115200, 57600, 1200, 600, 300)
COMMON_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
LOCK_DIRS = (Path("/var/lock"), Path("/run/lock"))
_PARITY_NAMES = {"N": "none", "E": "even", "O": "odd", "M": "mark", "S": "space"}


class LineFormatError(ValueError):
    """A ``--serial-format`` that is not DATA PARITY STOP (e.g. 8N1)."""


@dataclass(frozen=True, slots=True)
class LineFormat:
    bytesize: int  # 5..8
    parity: str  # N E O M S
    stopbits: float  # 1, 1.5, 2

    @classmethod
    def parse(cls, text: str) -> LineFormat:
        m = re.fullmatch(r"\s*([5-8])\s*([NEOMSneoms])\s*(1|1\.5|2)\s*", text or "")
        if not m:
            raise LineFormatError(
                f"serial format {text!r} is not DATA-BITS PARITY STOP-BITS, e.g. 8N1, 7E1, 8E1"
            )
        return cls(int(m.group(1)), m.group(2).upper(), float(m.group(3)))

    def __str__(self) -> str:
        stop = "1.5" if self.stopbits == 1.5 else str(int(self.stopbits))
        return f"{self.bytesize}{self.parity}{stop}"

    @property
    def bits_per_char(self) -> float:
        """Start bit + data + parity + stop: 10 for both 8N1 and 7E1."""
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def parity_name(self) -> str:
        return _PARITY_NAMES[self.parity]

    def ser2net(self, baud: int) -> str:
        """ser2net's spelling in a connector line (``serialdev,/dev/ttyUSB0,9600n81``)."""
        stop = "1" if self.stopbits == 1 else "2"
        return f"{baud}{self.parity.lower()}{self.bytesize}{stop}"


def byte_time(nbytes: int, baud: int, fmt: LineFormat) -> float:
    """Seconds ``nbytes`` take on the wire at ``baud``."""
    return nbytes * fmt.bits_per_char / max(1, baud)


def parse_baud(text: str) -> int | None:
    """``auto`` -> None; a rate -> int; raises ValueError with a plain message."""
    value = (text or "").strip().lower()
    if value == "auto":
        return None
    if not value.isdigit() or not 50 <= int(value) <= 4_000_000:
        raise ValueError(
            f"--baud {text!r}: give auto or a rate ({', '.join(map(str, COMMON_RATES))})"
        )
    return int(value)


# -- who holds the line --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    command: str
    how: str = "open"  # open (a /proc fd), lock (a UUCP lock file)

    def __str__(self) -> str:
        return f"PID {self.pid} ({self.command})" if self.command else f"PID {self.pid}"


def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except OSError:
        return path


def command_of(pid: int, proc: Path = Path("/proc")) -> str:
    """The command line of ``pid`` as ``ps`` shows it, or its name, or ''."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        raw = b""
    text = raw.replace(b"\x00", b" ").decode("utf-8", "replace").strip()
    if text:
        return text[:160]
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def holders(device: str, proc: Path = Path("/proc"), exclude: int | None = None) -> list[Holder]:
    """Processes (other than ``exclude``, default ours) with ``device`` open, by /proc fd links.
    Empty where /proc does not exist (macOS, Windows)."""
    return scan_holders(device, proc, exclude)[0]


def scan_holders(device: str, proc: Path = Path("/proc"),
                 exclude: int | None = None) -> tuple[list[Holder], int]:
    """``holders`` and how many processes could not be looked into (another user's fds need
    root): a holder among those cannot be named, so the caller says the check was partial."""
    target = _real(device)
    mine = os.getpid() if exclude is None else exclude
    found: list[Holder] = []
    unreadable = 0
    try:
        pids = [int(p) for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return [], 0
    for pid in sorted(pids):
        if pid == mine:
            continue
        fd_dir = proc / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:
            continue  # the process ended meanwhile
        except OSError:
            unreadable += 1
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(fd_dir / fd) == target:
                    found.append(Holder(pid, command_of(pid, proc)))
                    break
    return found, unreadable


def lock_file_for(device: str, lock_dir: Path) -> Path:
    return lock_dir / f"LCK..{Path(device).name}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def lock_holder(device: str, lock_dirs: tuple[Path, ...] = LOCK_DIRS) -> Holder | None:
    """A live process named by a UUCP lock file for ``device`` (stale locks are ignored)."""
    for lock_dir in lock_dirs:
        path = lock_file_for(device, lock_dir)
        try:
            raw = path.read_bytes()[:64]
        except OSError:
            continue
        text = raw.decode("ascii", "replace").strip()
        if not text.isdigit():
            # the binary form (a 4-byte int) of old UUCP
            pid = int.from_bytes(raw[:4], "little") if len(raw) >= 4 else 0
        else:
            pid = int(text)
        if pid > 0 and pid != os.getpid() and _alive(pid):
            return Holder(pid, command_of(pid), how=f"lock file {path}")
    return None


def device_group(device: str) -> str | None:
    """The group that owns the device (``dialout``): joining it grants access."""
    try:
        gid = os.stat(device).st_gid
    except OSError:
        return None
    try:
        import grp  # POSIX only

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def is_pty(device: str) -> bool:
    """A pseudo-terminal (the simulator's line): it cannot carry 7 data bits or parity."""
    real = _real(device)
    return real.startswith("/dev/pts/") or real == "/dev/ptmx" or "/pty" in real
