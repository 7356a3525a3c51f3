"""Labeling stage: Label Studio config generation, export import, task push (`frontwire labeling …`)."""
