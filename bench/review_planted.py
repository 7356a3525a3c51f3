"""Issue #19's review figures: errors planted in a copy of the shared export, then how many of them the
review's top-k suspects (k = number planted) recover, with precision and recall at k and the time it took.

    python bench/review_planted.py --out bench/results/review_planted_2cores.json
    python bench/review_planted.py --export data/labelstudio_sample.json --seeds 0 --rate 0.10

Planting (frontwire.labeling.review_plant): `--rate` of the records each get one topic toggled, and `--rate`
of all annotated spans are dropped or retyped, half and half; one seeded generator per seed. The review runs
with configs/labeling.yaml's settings (`--set review.key=value` to change them), exactly as the CLI does.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from frontwire.labeling.importer import convert_export, read_export_file
from frontwire.labeling.review import review_records
from frontwire.labeling.review_plant import plant_errors, recovery
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import sample_export, shared_dir
from frontwire.schema import load_schema


def default_export() -> Path:
    shared = shared_dir()
    path = shared / "data" / "labelstudio_export.json" if shared else None
    return path if path is not None and path.is_file() else sample_export()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, default=None, help="Label Studio export (default: the shared one).")
    parser.add_argument("--rate", type=float, default=0.05, help="Share of records / spans planted.")
    parser.add_argument("--seeds", default="0,1,2", help="Comma-separated planting seeds.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="labeling config override")
    parser.add_argument("--out", type=Path, default=None, help="Write the figures here as JSON too.")
    args = parser.parse_args()

    export = args.export or default_export()
    schema = load_schema()
    config = load_labeling_config(None, tuple(args.overrides))
    clean = convert_export(read_export_file(export), schema, config).records
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        records, planted = plant_errors(clean, schema, args.rate, args.rate, seed)
        started = time.perf_counter()
        outcome = review_records(records, schema, config.review)
        seconds = time.perf_counter() - started
        got = recovery(outcome.suspects, planted)
        runs.append({"seed": seed, "seconds": round(seconds, 1), **got})
        print(f"seed {seed}: topics {got['topic']['recall_at_k']:.2f} of {got['topic']['planted']} at k, "
              f"entities {got['entity']['recall_at_k']:.2f} of {got['entity']['planted']} at k, {seconds:.1f} s")
    result = {
        "export": str(export), "records": len(clean), "spans": sum(len(r.entities) for r in clean),
        "rate": args.rate, "folds": config.review.folds, "cores": len(os.sched_getaffinity(0)),
        "runs": runs,
        "mean_recall_at_k": {kind: round(sum(r[kind]["recall_at_k"] for r in runs) / len(runs), 3)
                             for kind in ("topic", "entity")},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
