"""How well "paragraphs the classifier does not call boilerplate" recover a page's article body, next to
trafilatura, on the same pages in one run (`../shared/data/html_pages`, ground truth from
scrapinghub's article-extraction-benchmark).

    python bench/html_body_recovery.py --classifier runs/models/classifier-XXXX [--pages 60]

Metric: token-level F1 between the extracted text and the true body (lower-cased word tokens counted as
a bag, as the benchmark does), per page, then averaged; micro-averaged totals too. Printed alongside:
`all_paragraphs`, every block paragraph of the page kept (the ceiling on recall of the paragraph split,
and what a classifier that never says boilerplate scores). Needs `pip install -e '.[bench]'` (trafilatura).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from collections import Counter
from pathlib import Path

from frontwire.paragraphs import html_to_text, split_text
from frontwire.paths import shared_dir

TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> Counter:
    return Counter(TOKEN.findall(text.lower()))


def prf(predicted: Counter, truth: Counter) -> tuple[int, int, int]:
    """(overlap, predicted tokens, true tokens): summed for micro averages, divided for per-page F1."""
    return sum((predicted & truth).values()), sum(predicted.values()), sum(truth.values())


def f1(overlap: int, predicted: int, truth: int) -> float:
    if predicted == 0 or truth == 0:
        return float(predicted == truth)
    precision, recall = overlap / predicted, overlap / truth
    return 0.0 if overlap == 0 else 2 * precision * recall / (precision + recall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", help="classifier model dir (omit: only all_paragraphs and trafilatura)")
    parser.add_argument("--pages", type=int, default=None, help="first N pages (sorted by name); default all")
    parser.add_argument("--data", type=Path, default=None, help="html_pages folder (default: ../shared/data/...)")
    args = parser.parse_args()

    import trafilatura

    from frontwire.predictor import Predictor

    root = args.data or (shared_dir() / "data" / "html_pages")
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    pages = sorted(root.glob("html/*.html.gz"))[: args.pages]
    predictor = Predictor(classifier_dir=Path(args.classifier)) if args.classifier else None
    # page chrome: the schema's exclusive topics (boilerplate), read from the model the classifier was trained with
    chrome = set(predictor.topics.meta.schema_.exclusive_topics) if predictor else set()
    systems = ("classifier_non_boilerplate", "all_paragraphs", "trafilatura")[0 if predictor else 1:]
    per_page: dict[str, list[float]] = {s: [] for s in systems}
    micro = {s: [0, 0, 0] for s in systems}
    seconds = {s: 0.0 for s in systems}
    paragraph_count = 0
    for page in pages:
        html = gzip.decompress(page.read_bytes())
        body = tokens(truth[page.name.removesuffix(".html.gz")]["articleBody"])
        start = time.perf_counter()
        paragraphs = [p.text for p in split_text(html_to_text(html))]
        split_seconds = time.perf_counter() - start
        if predictor is not None:
            predictions = predictor.predict(paragraphs, tasks=("classifier",))
            seconds["classifier_non_boilerplate"] += time.perf_counter() - start
            kept = [t for t, p in zip(paragraphs, predictions, strict=True) if not chrome & set(p["labels"])]
        seconds["all_paragraphs"] += split_seconds
        paragraph_count += len(paragraphs)
        start = time.perf_counter()
        extracted = trafilatura.extract(html.decode("utf-8", "replace"), include_comments=False) or ""
        seconds["trafilatura"] += time.perf_counter() - start
        outputs = {"all_paragraphs": "\n\n".join(paragraphs), "trafilatura": extracted}
        if predictor is not None:
            outputs["classifier_non_boilerplate"] = "\n\n".join(kept)
        for system, text in outputs.items():
            counts = prf(tokens(text), body)
            per_page[system].append(f1(*counts))
            micro[system] = [a + b for a, b in zip(micro[system], counts, strict=True)]
    report = {"pages": len(pages), "paragraphs": paragraph_count, "classifier": args.classifier}
    for system in systems:
        overlap, predicted, true = micro[system]
        report[system] = {"mean_page_f1": round(sum(per_page[system]) / len(pages), 4),
                          "micro_precision": round(overlap / max(predicted, 1), 4),
                          "micro_recall": round(overlap / max(true, 1), 4),
                          "micro_f1": round(f1(overlap, predicted, true), 4), "seconds": round(seconds[system], 1)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
