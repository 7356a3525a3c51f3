"""Training data: records + stable splits from an import folder, or a Label Studio export imported on the fly."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from frontwire.labeling.importer import RECORDS_FILE, SPLITS_FILE, import_tasks, read_export_file
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import default_data_dir, default_export
from frontwire.records import Record, fingerprint, read_records
from frontwire.schema import LabelSchema
from frontwire.splits import load_assignment, split_records

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    train: list[Record]
    dev: list[Record]
    test: list[Record]
    source: str

    @property
    def fingerprint(self) -> str:
        return fingerprint([*self.train, *self.dev, *self.test])

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            **{f"{name}_size": len(part) for name, part in self.parts().items()},
            **{f"{name}_fingerprint": fingerprint(part) for name, part in self.parts().items()},
        }

    def parts(self) -> dict[str, list[Record]]:
        return {"train": self.train, "dev": self.dev, "test": self.test}

    def limited(self, limit: int | None) -> SplitData:
        if limit is None:
            return self
        return SplitData(self.train[:limit], self.dev[:limit], self.test[:limit], self.source)


def load_split_data(source: str | Path | None, schema: LabelSchema, limit: int | None = None) -> SplitData:
    """`source`: an import folder (records.jsonl + splits.json), a Label Studio export file, or None (default)."""
    path = Path(source) if source is not None else default_export()
    if path.is_file():
        # An export is imported into a folder of its own under the working dir; its splits.json persists, so a
        # paragraph keeps its split across runs on a growing export.
        out_dir = default_data_dir() / path.name.removesuffix(".json")
        log.info("importing export=%s into=%s", path, out_dir)
        import_tasks(read_export_file(path), out_dir, schema, load_labeling_config(), str(path))
        path = out_dir
    if not (path / RECORDS_FILE).is_file() or not (path / SPLITS_FILE).is_file():
        raise FileNotFoundError(f"{path}: expected {RECORDS_FILE} and {SPLITS_FILE} (run `frontwire labeling import`)")
    records = read_records(path / RECORDS_FILE, schema)
    group_by = load_labeling_config().split.group_by
    parts = split_records(records, load_assignment(path / SPLITS_FILE), group_by)
    data = SplitData(parts["train"], parts["dev"], parts["test"], str(path))
    return data.limited(limit)
