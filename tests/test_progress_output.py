"""Progress output: tqdm bars in a terminal, one `event key=value` line per unit of work anywhere else (#19).

The training test runs the real CLI as a subprocess with stderr redirected to a file, as a CI log or
`frontwire run 2> log` would: no carriage-return frames, no third-party bars, one `epoch_done` line per epoch.
The pty test checks the other side: in a (pseudo-)terminal the bar is still drawn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest

from frontwire.paths import sample_export
from frontwire.progress import LogProgress, progress

# what frontwire.progress.quiet_third_party_bars sets: the parent (pytest, or a CliRunner test run in-process)
# may already carry them, and a child that inherits them would pass without doing anything itself
_PROGRESS_ENV = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS",
                 "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_TRACKING_URI")

#: The tiny training's stderr measured 4.0 kB with the log lines (5.7 kB with bars: few batches, but each one
#: redraws two to three frames, the weights loading and artifact download bars ~1 kB more). 3x margin for
#: library warnings that come and go between versions; a per-batch line or a bar written anyway would not fit
#: a real run.
MAX_STDERR_BYTES = 12_000

KV = re.compile(r"[a-z_]+=\S+")


def _child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROGRESS_ENV}
    env.update(FRONTWIRE_HOME=str(home), FRONTWIRE_LOG_LEVEL="INFO")
    return env


def _frontwire(args: list[str], env: dict[str, str], cwd: Path, stderr_file: Path) -> subprocess.CompletedProcess:
    with stderr_file.open("wb") as err:
        return subprocess.run([sys.executable, "-m", "frontwire", *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=err, timeout=240, check=False)


def test_training_stderr_to_a_file_has_log_lines_not_bars(tmp_path: Path) -> None:
    env = _child_env(tmp_path / "home")
    data = tmp_path / "data"
    imported = _frontwire(["labeling", "import", str(sample_export()), "--out", str(data)], env, tmp_path,
                          tmp_path / "import.err")
    assert imported.returncode == 0, (tmp_path / "import.err").read_text()
    epochs = 2
    log_file = tmp_path / "train.err"
    trained = _frontwire(
        ["train", "classifier", "--data", str(data),
         *(x for kv in (f"training.epochs={epochs}", "training.max_steps=4", "training.batch_size=8",
                        "data.limit=24", "mlflow.baseline=false", f"mlflow.tracking_uri=sqlite:///{tmp_path}/ml.db",
                        f"output.dir={tmp_path / 'models/classifier'}") for x in ("--set", kv))],
        env, tmp_path, log_file)
    raw = log_file.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    assert trained.returncode == 0, text[-3000:]

    assert b"\r" not in raw, "carriage-return frames in a non-TTY log"
    assert len(raw) < MAX_STDERR_BYTES, f"{len(raw)} bytes of stderr:\n{text}"
    # third-party bars (transformers' weights loading, MLflow's artifact download) are switched off too
    for bar in ("Loading weights", "Downloading artifacts", "it/s]", "%|"):
        assert bar not in text, f"{bar!r} in the log:\n{text}"

    done = [line.split(": ", 1)[1] for line in text.splitlines() if "frontwire.train.loop: epoch_done " in line]
    assert len(done) == epochs, text
    for number, line in enumerate(done, start=1):
        event, *pairs = line.split(" ")
        assert event == "epoch_done"
        assert all(KV.fullmatch(p) for p in pairs), line
        fields = dict(p.split("=", 1) for p in pairs)
        assert fields["epoch"] == f"{number}/{epochs}"
        count, total = map(int, fields["batches"].split("/"))
        assert 1 <= count <= total
        assert float(fields["seconds"]) >= 0 and float(fields["loss"]) > 0 and "ex_s" in fields
    # max_steps=4 with 3 batches an epoch: the second epoch stops after one batch, and the line says so
    assert dict(p.split("=", 1) for p in done[1].split(" ")[1:])["batches"] == "1/3"


_SCRIPT = textwrap.dedent("""
    import logging, sys, time
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    from frontwire.progress import progress
    for _ in progress(range(5), desc="tiny", unit="it", event="tiny", fields={"part": "1/1"}, mininterval=0):
        time.sleep(0.02)
""")


def _run_in_pty(code: str) -> bytes:
    primary, secondary = os.openpty()
    # a fresh pty is 0x0: tqdm would fit its bar into no columns at all
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=secondary,
                                 stderr=secondary, env={k: v for k, v in os.environ.items() if k not in _PROGRESS_ENV})
    finally:
        os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal's other end
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        child.wait(timeout=30)
    assert child.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks)


def test_a_terminal_gets_a_tqdm_bar() -> None:
    out = _run_in_pty(_SCRIPT)
    # a redraw is a carriage return not followed by the newline the terminal turns every "\n" into
    assert re.search(rb"\r(?!\n)", out) and b"tiny: 100%" in out and b"5/5" in out, out
    assert b"tiny_done" not in out  # the bar replaces the log line, not both


def test_a_pipe_gets_one_line_and_no_bar() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, timeout=30, check=True)
    assert b"\r" not in done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and re.fullmatch(r"tiny_done part=1/1 its=5/5 seconds=\d+\.\d", lines[0]), lines


def test_log_progress_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="frontwire.progress")
    with LogProgress(total=10, unit="para", event="batch.predict", every_s=0) as bar:
        bar.update(4)  # every_s=0: each update may log a heartbeat
        bar.set_postfix(loss="0.5000")
        bar.total = 12  # the batch engine re-estimates its total on the way
        bar.update(8)
    bar.close()  # a second close logs nothing more
    lines = [r.getMessage() for r in caplog.records]
    assert [re.sub(r"seconds=\S+", "seconds=S", line) for line in lines] == [
        "batch.predict_progress paras=4/10 seconds=S",
        "batch.predict_progress paras=12/12 seconds=S loss=0.5000",
        "batch.predict_done paras=12/12 seconds=S loss=0.5000",
    ]
    caplog.clear()
    for _ in LogProgress(iter(range(3)), unit="batch", event="quiet", disable=True):
        pass
    assert not caplog.records  # disable (the batch engine's --no-progress) silences the lines too


def test_progress_returns_the_quiet_object_off_a_terminal() -> None:
    # pytest captures stderr: not a terminal
    bar = progress(range(3), desc="x", unit="step", event="x", leave=False, dynamic_ncols=True)
    assert isinstance(bar, LogProgress) and bar.total == 3
    assert list(bar) == [0, 1, 2] and bar.n == 3


def test_third_party_bars_off_when_not_a_terminal() -> None:
    code = textwrap.dedent("""
        import transformers.utils.logging as tl  # imported before: told through its API
        from frontwire.logs import configure_logging
        configure_logging()
        import datasets  # imported after: reads the environment
        from huggingface_hub.utils import are_progress_bars_disabled
        from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
        print(tl.is_progress_bar_enabled(), are_progress_bars_disabled(), datasets.utils.are_progress_bars_disabled(),
              MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get())
    """)
    env = {k: v for k, v in os.environ.items() if k not in _PROGRESS_ENV}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True", "False"], done.stdout
