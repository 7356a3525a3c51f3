"""The Train button's job queue: a job reads as finished only once the model reload after it has an outcome."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from frontwire.serve.training_jobs import TrainingJob, TrainingJobs


class PrintingJobs(TrainingJobs):
    """The real queue and subprocess handling; the retrain is a process that prints a summary and exits 0."""

    def command(self, job: TrainingJob) -> list[str]:
        return [sys.executable, "-c", "import sys; print('{\"classifier\": {}}'); print('done', file=sys.stderr)"]


async def _observe(jobs: TrainingJobs) -> tuple[TrainingJob, list[tuple[str, bool | None]]]:
    jobs.start()
    job, created = jobs.enqueue(1, "http://127.0.0.1:1", None, "START_TRAINING")
    assert created
    seen: list[tuple[str, bool | None]] = []
    try:
        async with asyncio.timeout(60):
            while job.state not in ("finished", "failed"):
                seen.append((job.state, job.models_reloaded))
                await asyncio.sleep(0.005)
    finally:
        await jobs.stop()
    seen.append((job.state, job.models_reloaded))
    return job, seen


def test_finished_is_published_with_the_reload_outcome(tmp_path: Path) -> None:
    async def slow_reload(job: TrainingJob) -> bool:
        await asyncio.sleep(0.3)  # a registry check and model load take a while
        return True

    job, seen = asyncio.run(_observe(PrintingJobs(tmp_path, on_finished=slow_reload)))
    assert ("started", None) in seen
    assert [pair for pair in seen if pair[0] == "finished"] == [("finished", True)]
    assert job.summary == {"classifier": {}} and job.returncode == 0 and job.error is None
    assert "done" in Path(job.log_file).read_text()


def test_a_failed_reload_keeps_the_job_finished_and_says_why(tmp_path: Path) -> None:
    async def broken_reload(job: TrainingJob) -> bool:
        raise OSError("model dir vanished")

    job, seen = asyncio.run(_observe(PrintingJobs(tmp_path, on_finished=broken_reload)))
    assert seen[-1] == ("finished", False)
    assert "reloading the models failed: model dir vanished" in job.error
