"""Loopback load test of `frontwire serve`: 1/8/32 clients, dynamic batching on vs off, one run.

Same as `frontwire loadtest`; the code lives in `frontwire.serve.loadtest` so the installed command has it.
Bounded by --requests and --seconds per level; binds 127.0.0.1 only.
Example: python bench/loadtest.py --clients 1,8,32 --requests 300 --seconds 15 --backend onnx
"""

from __future__ import annotations

import typer

from frontwire.logs import configure_logging
from frontwire.serve.cli import loadtest_cmd

if __name__ == "__main__":
    configure_logging()
    typer.run(loadtest_cmd)
