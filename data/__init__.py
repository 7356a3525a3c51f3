"""The project's own sample dataset (see data/README.md), packaged so the main job runs anywhere."""
