"""Start a real, throwaway Label Studio server on loopback for the test suite.

Why a real server: frontwire talks to Label Studio through ``label-studio-sdk``,
and mocks of that API drift from what the server actually accepts. Starting
the real thing (in its own virtual environment, because it pins its own
dependencies) is slow on first start (~70 s of migrations), so the pytest
fixture that uses this module is session-scoped.

Label Studio listens on 0.0.0.0 by default, and the admin token created here
is a real credential, so the server is bound to 127.0.0.1 only
(``--internal-host 127.0.0.1``); :func:`listening_addresses` lets tests check
that.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Explicit path to the ``label-studio`` executable.
BIN_ENV = "FRONTWIRE_LABEL_STUDIO_BIN"
#: URL of an already running server to reuse instead of starting one.
URL_ENV = "FRONTWIRE_LABEL_STUDIO_URL"
#: API token (legacy 40-hex token or personal access token) for ``URL_ENV``.
TOKEN_ENV = "FRONTWIRE_LABEL_STUDIO_TOKEN"

#: Where CI installs Label Studio: a separate venv, as it pins its own deps.
DEFAULT_VENV_BIN = REPO_ROOT / ".venv-ls" / "bin" / "label-studio"

LOOPBACK = "127.0.0.1"
DEFAULT_STARTUP_TIMEOUT = 240.0
#: Seconds between SIGTERM and SIGKILL when stopping the process group.
TERMINATE_GRACE = 10.0
LOG_TAIL_CHARS = 4000
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class LabelStudioError(RuntimeError):
    """The server could not be started or did not become healthy."""


def find_executable() -> Path | None:
    """Return the ``label-studio`` executable to use, or None if there is none.

    Order: ``$FRONTWIRE_LABEL_STUDIO_BIN`` (an explicit choice, so a wrong path
    is an error rather than a silent fallback), then the repo's ``.venv-ls``
    (what CI installs), then whatever ``label-studio`` is on ``PATH``.
    """
    explicit = os.environ.get(BIN_ENV)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LabelStudioError(f"{BIN_ENV}={explicit} is not an executable file")
        return path
    if DEFAULT_VENV_BIN.is_file() and os.access(DEFAULT_VENV_BIN, os.X_OK):
        return DEFAULT_VENV_BIN
    found = shutil.which("label-studio")
    return Path(found) if found else None


def reuse_config() -> tuple[str, str] | None:
    """Return ``(url, token)`` of an already running server, if configured.

    Restarting Label Studio for every local test run costs seconds to a
    minute; setting both env vars skips that. Setting only one is a mistake,
    so it raises instead of quietly starting a fresh server.
    """
    url = os.environ.get(URL_ENV, "").strip()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if url and token:
        return url.rstrip("/"), token
    if url or token:
        raise LabelStudioError(f"set both {URL_ENV} and {TOKEN_ENV}, or neither")
    return None


def free_loopback_port() -> int:
    """Ask the kernel for a free TCP port on loopback.

    There is a small race (another process may take it before Label Studio
    binds), which the startup failure message would make obvious.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return text[-chars:]


def health_ok(url: str, timeout: float = 5.0) -> bool:
    """True when ``GET {url}/health`` answers 200 with ``{"status": "UP"}``."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            if resp.status != 200:
                return False
            body = json.loads(resp.read().decode() or "{}")
    except (OSError, ValueError):
        # URLError, connection refused/reset, timeouts and bad JSON all mean
        # "not up yet".
        return False
    return isinstance(body, dict) and body.get("status") == "UP"


def _socket_inodes(pids: Iterable[int]) -> set[str]:
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
    return inodes


def _decode_proc_addr(hex_addr: str, family: int) -> str:
    raw = bytes.fromhex(hex_addr)
    # /proc/net/tcp{,6} stores addresses as host-endian 32-bit words.
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    return socket.inet_ntop(family, b"".join(words))


def listening_addresses(*, port: int | None = None, process_group: int | None = None) -> set[tuple[str, int]]:
    """Return the ``(address, port)`` pairs of listening TCP sockets.

    Filtered by ``port`` and/or by the processes in ``process_group`` (all
    of Label Studio's processes, not just the one we spawned). Reads
    ``/proc/net/tcp{,6}`` directly, the same data ``ss -ltn`` shows, so no
    tool or extra package is needed. Linux only.
    """
    inodes = None
    if process_group is not None:
        inodes = _socket_inodes(_pids_in_group(process_group))
    found: set[tuple[str, int]] = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A":  # TCP_LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            local_port = int(hex_port, 16)
            if port is not None and local_port != port:
                continue
            if inodes is not None and inode not in inodes:
                continue
            found.add((_decode_proc_addr(hex_addr, family), local_port))
    return found


def _pids_in_group(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Field 5 is pgrp; split after the ")" that ends the command name.
            after_comm = stat.read_text().rsplit(")", 1)[1].split()
            if int(after_comm[2]) == pgid:
                pids.append(int(stat.parent.name))
    return pids


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when the test process dies.

    The server runs in its own session, so if pytest is killed (SIGKILL,
    CI timeout) ``__exit__`` never runs and nothing else would stop it.
    Runs in the child between fork and exec; a no-op where prctl is missing.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class LabelStudioServer:
    """Context manager running one Label Studio server, or reusing one.

    On enter it starts ``label-studio start`` on a free loopback port with a
    fresh data dir, admin user and legacy API token, and waits for
    ``/health``. On exit it stops the whole process group and removes the
    data dir. With ``FRONTWIRE_LABEL_STUDIO_URL`` and
    ``FRONTWIRE_LABEL_STUDIO_TOKEN`` set it starts nothing and only checks
    that server's health.
    """

    def __init__(
        self,
        executable: Path | str | None = None,
        *,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        username: str = "frontwire-tests@example.com",
        reuse: bool = True,
        keep_data_dir: bool = False,
    ) -> None:
        self.executable = Path(executable) if executable else None
        self.startup_timeout = startup_timeout
        self.username = username
        self.password = secrets.token_urlsafe(18)
        self.reuse = reuse
        self.keep_data_dir = keep_data_dir
        self.port: int | None = None
        self.data_dir: Path | None = None
        self.log_path: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        #: Seconds from spawn to a healthy ``/health`` (None when reused).
        self.startup_seconds: float | None = None
        self._url: str | None = None
        self._token: str | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:8123``."""
        if self._url is None:
            raise LabelStudioError("server not started; use it as a context manager")
        return self._url

    @property
    def token(self) -> str:
        """API token accepted by ``LabelStudio(base_url=url, api_key=token)``."""
        if self._token is None:
            raise LabelStudioError("server not started; use it as a context manager")
        return self._token

    @property
    def reused(self) -> bool:
        """True when this object points at an external server it did not start."""
        return self.process is None and self._url is not None

    def __enter__(self) -> LabelStudioServer:
        reuse = reuse_config() if self.reuse else None
        if reuse is not None:
            self._url, self._token = reuse
            if not health_ok(self._url):
                raise LabelStudioError(f"{URL_ENV}={self._url}: /health is not UP")
            return self
        try:
            self._start()
        except BaseException:
            # Keep the data dir: the error message points at its log file.
            self._stop(keep_data_dir=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _env(self, token: str) -> dict[str, str]:
        """Environment for the server: offline, no telemetry, data in data_dir.

        ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN`` is needed or the 40-hex token
        gets 401. ``LABEL_STUDIO_BASE_DATA_DIR`` keeps it out of ``$HOME``.
        PYTHONPATH/PYTHONHOME/VIRTUAL_ENV are dropped so the test venv cannot
        leak into Label Studio's own venv.
        """
        assert self.data_dir is not None
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"}
        }
        env.update(
            {
                "LABEL_STUDIO_USERNAME": self.username,
                "LABEL_STUDIO_PASSWORD": self.password,
                "LABEL_STUDIO_USER_TOKEN": token,
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
                "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
                "LATEST_VERSION_CHECK": "false",
                # Label Studio refuses ML backends on private addresses by default (SSRF guards): connecting
                # one checks its URL (ML_BLOCK_LOCAL_IP) and creates a webhook to <backend>/webhook, whose URL
                # and posts are checked too (SSRF_PROTECTION_ENABLED). The tests' backend listens on loopback.
                "ML_BLOCK_LOCAL_IP": "false",
                "SSRF_PROTECTION_ENABLED": "false",
                "SENTRY_DSN": "",
                "FRONTEND_SENTRY_DSN": "",
                "COLLECT_ANALYTICS": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _start(self) -> None:
        executable = self.executable or find_executable()
        if executable is None:
            raise LabelStudioError(
                f"no label-studio executable: set {BIN_ENV}, create {DEFAULT_VENV_BIN}, or put label-studio on PATH"
            )
        self.data_dir = Path(tempfile.mkdtemp(prefix="frontwire-ls-"))
        self.log_path = self.data_dir / "label-studio.log"
        self.port = free_loopback_port()
        token = secrets.token_hex(20)
        cmd = [
            str(executable),
            "start",
            "--no-browser",
            "--internal-host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        url = f"http://{LOOPBACK}:{self.port}"
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            # start_new_session: own process group, so _stop can kill every
            # child Label Studio spawns, and Ctrl-C in pytest doesn't reach it
            # before we clean up.
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(token),
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = started + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise LabelStudioError(
                    f"label-studio exited with {self.process.returncode} before "
                    f"becoming healthy; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if health_ok(url, timeout=2.0):
                break
            # `label-studio start` silently moves to port+1 when the port is
            # taken (a race with free_loopback_port); fail now, not at timeout.
            elsewhere = listening_addresses(process_group=self.process.pid) - {(LOOPBACK, self.port)}
            if elsewhere:
                raise LabelStudioError(
                    f"label-studio listens on {sorted(elsewhere)} instead of {url}; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise LabelStudioError(
                    f"label-studio not healthy at {url} after {self.startup_timeout:.0f} s; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.5)
        self.startup_seconds = time.monotonic() - started
        # A healthy answer could still come from someone else's server.
        ours = listening_addresses(port=self.port, process_group=self.process.pid)
        if not ours:
            raise LabelStudioError(
                f"{url} answers, but not from the label-studio we started (it may have "
                f"moved to another port); log {self.log_path}:\n{_tail(self.log_path)}"
            )
        self._url, self._token = url, token

    def _stop(self, *, keep_data_dir: bool = False) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after 10 s.

        The group, not just the leader: Label Studio may leave children
        (workers, the Django server) that would otherwise hold the port and
        the data dir.
        """
        process, self.process = self.process, None
        if process is not None:
            pgid = process.pid  # the leader's pid is the pgid (start_new_session)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            deadline = time.monotonic() + TERMINATE_GRACE
            while time.monotonic() < deadline:
                process.poll()  # reap the leader so its zombie doesn't count
                if not _group_alive(pgid):
                    break
                time.sleep(0.2)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            process.wait()
            self._url = self._token = None
        if self.data_dir is not None and not (self.keep_data_dir or keep_data_dir):
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
