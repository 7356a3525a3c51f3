"""Helpers shared by the training tests (test_fit_resume.py, test_training.py)."""

from __future__ import annotations

import torch


class Interrupted(Exception):
    """Stands in for a kill after an epoch's checkpoint was written."""


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
