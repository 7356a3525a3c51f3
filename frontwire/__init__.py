"""frontwire: topic classification and NER for war-news paragraphs.

The `frontwire` package is the small shared core (config, label schema, records, splits, paths);
each pipeline stage is a subpackage mapped from its own top-level folder:
`frontwire.labeling` (labeling/), `frontwire.train` (train/), `frontwire.evaluate` (evaluate/),
`frontwire.serve` (serve/).
"""

__version__ = "0.1.0"
