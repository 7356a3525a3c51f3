"""Issue #18's figures for model files: a finished model dir's size with and without its checkpoints, and
pickles planted in every file of it (each of 7 flavours: protocols 0–5 and torch.save's zip) loaded through the
one inference path — how many were planted, how many refused, how many executed.

    python bench/model_files_safety.py            # tiny classifier + NER (2 steps each) on the sample data
    python bench/model_files_safety.py --out bench/results/model_files_safety_2cores.json

The checkpoint size is what the run's `checkpoints_removed` log line reports: the bytes its finished training
deleted from beside the model dir (before format 2 they stayed inside it and were 'the model dir' on disk).
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import pickle
import re
import shutil
import tempfile
import time
from pathlib import Path

import torch
from tiny_models import train_tiny_models


class Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class RemovedCheckpoints(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.bytes: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"checkpoints_removed dir=(\S+) bytes=(\d+)", record.getMessage())
        if found:
            self.bytes[Path(found.group(1)).name] = int(found.group(2))


def dir_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def plant_sweep(model_dir: Path, kind: str, marker: Path) -> dict[str, int]:
    from frontwire.model_files import UnsafeModelFileError
    from frontwire.predictor import Predictor

    planted = refused = 0
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        aside = path.with_name(path.name + ".aside")
        path.rename(aside)
        try:
            for flavour in range(7):
                if flavour < 6:
                    path.write_bytes(pickle.dumps(Planted(marker), protocol=flavour))
                else:
                    torch.save({"state": Planted(marker)}, path)
                planted += 1
                try:
                    Predictor(device="cpu", backend="torch", **{f"{kind}_dir": model_dir})
                except UnsafeModelFileError:
                    refused += 1
        finally:
            path.unlink(missing_ok=True)
            aside.rename(path)
    return {"planted": planted, "refused": refused, "executed": int(marker.exists())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Write the figures here as JSON too.")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="frontwire-bench-"))
    removed = RemovedCheckpoints()
    logging.getLogger("frontwire").addHandler(removed)
    logging.getLogger("frontwire").setLevel(logging.INFO)
    started = time.perf_counter()
    outcomes = train_tiny_models(home)
    result: dict[str, object] = {"train_seconds": round(time.perf_counter() - started, 1), "models": {}}
    for kind, outcome in outcomes.items():
        model_bytes = dir_bytes(outcome.model_dir)
        checkpoint_bytes = removed.bytes[f"{outcome.model_dir.name}.checkpoints"]
        marker = home / f"EXECUTED-{kind}"
        result["models"][kind] = {
            "model_dir_mb": round(model_bytes / 2**20, 1),
            "checkpoints_removed_mb": round(checkpoint_bytes / 2**20, 1),
            "model_dir_with_checkpoints_before_mb": round((model_bytes + checkpoint_bytes) / 2**20, 1),
            "checkpoints_left": any(outcome.model_dir.parent.glob("*.checkpoints")),
            "files": sorted(str(p.relative_to(outcome.model_dir)) for p in outcome.model_dir.rglob("*") if p.is_file()),
            "plant_sweep": plant_sweep(outcome.model_dir, kind, marker),
        }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
