"""Progress of long work: a tqdm bar in a terminal, structured log lines anywhere else.

A tqdm bar redraws itself with carriage returns several times a second; written to a file or a CI
log (stderr not a terminal) every frame stays, and one `frontwire run` left ~270 kB of them. So when
stderr is not a TTY, `progress()` returns a `LogProgress` instead: the same calls (iteration,
`update`, `set_postfix`, `close`, `with`), no drawing, and one `event key=value` line (frontwire.logs)
when the unit of work the caller named is done, e.g.

    epoch_done epoch=1/5 batches=13/13 seconds=41.2 loss=0.6120 ex_s=5.0

plus an `<event>_progress` line at most every LOG_EVERY_S seconds while it runs, so a long single
loop (a batch prediction, domain pretraining) still shows it is alive.

`quiet_third_party_bars()` does the same for the libraries' own bars (weights loading, dataset maps,
hub downloads, MLflow artifact transfers): called once from `configure_logging`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Seconds between two `<event>_progress` lines of one loop when stderr is not a terminal. A minute keeps
#: an hour-long loop to ~60 short lines (a few kB) yet is far inside CI "no output for N minutes" kill
#: timeouts (10 min and up), and whoever tails the log sees within a minute that the job is moving.
LOG_EVERY_S = 60.0

log = logging.getLogger(__name__)


def stderr_is_tty() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


class LogProgress(Generic[T]):
    """The subset of tqdm's API the project uses, logging key=value lines instead of drawing."""

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        *,
        total: int | None = None,
        unit: str = "it",
        event: str = "progress",
        fields: Mapping[str, Any] | None = None,
        logger: logging.Logger | None = None,
        disable: bool = False,
        every_s: float | None = None,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total = total
        self.n = 0
        self.unit = unit
        self.event = event
        self.fields = dict(fields or {})
        self.postfix: dict[str, Any] = {}
        self.disable = disable
        self.every_s = LOG_EVERY_S if every_s is None else every_s
        self._log = logger or log
        self._started = self._last = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("progress() was given no iterable to iterate")
        try:
            for item in self.iterable:
                # counted when handed out: a loop that breaks after its last item (max_steps) still counts it
                self.update(1)
                yield item
        finally:
            # exhausted, or the loop broke out / raised: a for-loop's break closes this generator
            self.close()

    def update(self, n: int | float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._emit("progress", now)

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Accepted for tqdm compatibility; the log line names its work by `event` and `fields`."""

    def refresh(self) -> None:
        """Nothing to redraw."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._emit("done", time.monotonic())

    def __enter__(self) -> LogProgress[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit(self, phase: str, now: float) -> None:
        if self.disable:
            return
        count = _number(self.n) if self.total is None else f"{_number(self.n)}/{_number(self.total)}"
        parts = {**self.fields, _plural(self.unit): count, "seconds": f"{now - self._started:.1f}", **self.postfix}
        self._log.info("%s_%s %s", self.event, phase, " ".join(f"{k}={_value(v)}" for k, v in parts.items()))


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str = "it",
    event: str,
    fields: Mapping[str, Any] | None = None,
    logger: logging.Logger | None = None,
    disable: bool = False,
    **tqdm_kwargs: Any,
) -> Any:
    """A tqdm bar (`desc`, `unit`, `tqdm_kwargs`) when stderr is a terminal, else a `LogProgress` that logs
    `<event>_done <fields…> <unit>s=n/total seconds=… <postfix…>` on close (or when the iterable runs out)
    and `<event>_progress …` at most every LOG_EVERY_S seconds. `disable` silences both."""
    if stderr_is_tty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, **tqdm_kwargs)
    return LogProgress(iterable, total=total, unit=unit, event=event, fields=fields, logger=logger, disable=disable)


#: Environment switches the libraries read when imported (or, for MLflow, each time a transfer starts).
#: Set only where unset, so a user's explicit choice wins.
_QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub; transformers' own bars follow it at import
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets (map, filter, load)
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # mlflow.environment_variables: artifact up/downloads
}


def quiet_third_party_bars() -> None:
    """When stderr is not a terminal, switch off the progress bars of transformers, datasets,
    huggingface_hub and MLflow.

    The environment covers the libraries not imported yet (importing them here would add ~1.5 s to every
    command); those already imported read it only once, so they are told through their API as well.
    """
    if stderr_is_tty():
        return
    for name, value in _QUIET_ENV.items():
        os.environ.setdefault(name, value)
    # a user's HF_*_DISABLE_PROGRESS_BARS=0 has priority in the libraries too: no call (and no warning) then
    if _env_true("HF_HUB_DISABLE_PROGRESS_BARS"):
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # also calls huggingface_hub.utils.disable_progress_bars()
        elif "huggingface_hub" in sys.modules:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
    if "datasets" in sys.modules and _env_true("HF_DATASETS_DISABLE_PROGRESS_BARS"):
        import datasets

        datasets.disable_progress_bars()


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _plural(unit: str) -> str:
    if unit.endswith("s"):
        return unit
    return f"{unit}es" if unit.endswith(("ch", "sh", "x")) else f"{unit}s"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _value(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text
