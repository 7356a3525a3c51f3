"""Validated training configs (`configs/classifier.yaml`, `configs/ner.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field

from frontwire.config import StrictModel, load_config


class DataSection(StrictModel):
    source: str | None = None
    limit: int | None = Field(default=None, ge=1)


class ModelSection(StrictModel):
    base_model: str = "default"
    max_length: int = Field(default=128, ge=16, le=4096)
    stride: int = Field(default=32, ge=0)
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)


class TrainingSection(StrictModel):
    epochs: int = Field(default=8, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0)
    head_learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1)
    pos_weight: Literal["none", "sqrt", "balanced"] = "sqrt"
    freeze_embeddings: bool = True
    freeze_layers: int = Field(default=0, ge=0)
    early_stopping_patience: int = Field(default=3, ge=1)
    seed: int = 13
    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    max_steps: int | None = Field(default=None, ge=1)


class ThresholdSection(StrictModel):
    tune: bool = True
    grid_min: float = Field(default=0.05, gt=0, lt=1)
    grid_max: float = Field(default=0.95, gt=0, lt=1)
    default: float = Field(default=0.5, gt=0, lt=1)


class EnsembleSection(StrictModel):
    lexical: bool = True
    # candidate blend weights of the TF-IDF scores; the best on dev macro-F1 wins (0 = transformer alone)
    weights: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])


class SelfTrainingSection(StrictModel):
    enabled: bool = False
    # the pseudo-labelling classifier: model dir or models:/ URI; null = the registered champion
    teacher: str | None = None
    # JSONL(.gz) articles, .txt or .html files; [] = ../shared/data/archive_articles.jsonl.gz
    archives: list[str] = Field(default_factory=list)
    margin: float = Field(default=1.0, ge=0)
    # no label gets more pseudo positives than this times its gold positives (null = no cap)
    label_ratio: float | None = Field(default=1.0, gt=0)
    max_records: int | None = Field(default=None, ge=1)
    # the teacher's runtime: auto = torch on a GPU, else ONNX fp32 (`predictor.resolve_backend`)
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"


class OutputSection(StrictModel):
    dir: str | None = None


class MlflowSection(StrictModel):
    model_config = ConfigDict(populate_by_name=True)

    tracking_uri: str | None = None
    experiment: str = "frontwire"
    registered_model: str
    # `register` in YAML; named otherwise in code because pydantic models already have a `register` attribute
    register_version: bool = Field(default=True, alias="register")
    baseline: bool = False


class ClassifierConfig(StrictModel):
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    thresholds: ThresholdSection = Field(default_factory=ThresholdSection)
    ensemble: EnsembleSection = Field(default_factory=EnsembleSection)
    self_training: SelfTrainingSection = Field(default_factory=SelfTrainingSection)
    output: OutputSection = Field(default_factory=OutputSection)
    mlflow: MlflowSection = Field(default_factory=lambda: MlflowSection(registered_model="frontwire-classifier"))


class NerConfig(StrictModel):
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=lambda: ModelSection(max_length=192, stride=48))
    training: TrainingSection = Field(default_factory=lambda: TrainingSection(freeze_embeddings=False))
    output: OutputSection = Field(default_factory=OutputSection)
    mlflow: MlflowSection = Field(default_factory=lambda: MlflowSection(registered_model="frontwire-ner"))


def load_classifier_config(path: Path | str | None = None, overrides: tuple[str, ...] = ()) -> ClassifierConfig:
    return load_config(ClassifierConfig, path, "classifier.yaml", overrides)


def load_ner_config(path: Path | str | None = None, overrides: tuple[str, ...] = ()) -> NerConfig:
    return load_config(NerConfig, path, "ner.yaml", overrides)
