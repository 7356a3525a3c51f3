"""The labeling stage's validated config (`configs/labeling.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from frontwire.config import StrictModel, load_config
from frontwire.splits import SplitConfig


class ReviewConfig(StrictModel):
    """`frontwire labeling review`: no defaults here, the YAML's `review:` section is the one source."""

    folds: int = Field(ge=2)
    seed: int
    topic_c: float = Field(gt=0)
    tagger_c: float = Field(gt=0)
    tagger_max_iter: int = Field(ge=1)
    surface_weight: float = Field(ge=0)
    min_entity_score: float = Field(ge=0, le=1)
    max_suspects: int = Field(ge=1)
    model_version_prefix: str = Field(min_length=1)
    view_title: str = Field(min_length=1)
    blas_threads: int = Field(ge=1)


class LabelingConfig(StrictModel):
    text_field: str = "text"
    topics_control: str = "topics"
    entities_control: str = "entities"
    annotation_policy: Literal["latest", "ground_truth", "majority"] = "ground_truth"
    on_bad_span: Literal["drop_task", "drop_span"] = "drop_task"
    on_overlap: Literal["keep_longest", "error"] = "keep_longest"
    deduplicate_text: bool = True
    relocate_window: int = Field(default=40, ge=0)
    split: SplitConfig = Field(default_factory=SplitConfig)
    review: ReviewConfig


def load_labeling_config(path: Path | str | None = None, overrides: tuple[str, ...] = ()) -> LabelingConfig:
    return load_config(LabelingConfig, path, "labeling.yaml", overrides)
