"""Throughput benchmark: the plain Hugging Face way vs frontwire torch / ONNX fp32 / ONNX int8.

Same as `frontwire bench`; the code lives in `frontwire.serve.bench` so the installed command has it.
Example: python bench/bench_predict.py --paragraphs 200 --accuracy 200 --classifier runs/models/classifier
"""

from __future__ import annotations

import typer

from frontwire.logs import configure_logging
from frontwire.serve.cli import bench_cmd

if __name__ == "__main__":
    configure_logging()
    typer.run(bench_cmd)
