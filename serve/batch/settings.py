"""The validated batch-inference config (`configs/predict.yaml`); command-line flags become overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from frontwire.config import StrictModel, load_config
from frontwire.model_sources import ModelSourcesSection

TASKS = ("classifier", "ner")


class InputSection(StrictModel):
    text_field: str = "text"
    id_field: str = "id"
    max_member_bytes: int = Field(default=50 * 2**20, ge=1)
    max_record_bytes: int = Field(default=16 * 2**20, ge=1)


class OutputSection(StrictModel):
    include_text: bool = True
    shard_size: int = Field(default=10_000, ge=1)
    keep_shards: bool = False


class RuntimeSection(StrictModel):
    parallelism: Literal["threads", "processes"] = "threads"
    workers: int = Field(default=0, ge=0)
    chunk_size: int = Field(default=1024, ge=1)
    batch_size: int = Field(default=32, ge=1)
    device: str = "auto"
    # auto: torch on a GPU, else ONNX fp32 (torch's labels, faster); onnx-int8 is faster still, within 0.5 F1
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


class PredictConfig(StrictModel):
    input: InputSection = InputSection()
    output: OutputSection = OutputSection()
    models: ModelSourcesSection = Field(default_factory=ModelSourcesSection)
    runtime: RuntimeSection = RuntimeSection()


def load_predict_config(path: Path | str | None = None, overrides: tuple[str, ...] | list[str] = ()) -> PredictConfig:
    return load_config(PredictConfig, path, "predict.yaml", overrides)
