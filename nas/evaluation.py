"""Proxy accuracy of one path of a supernet, with its batch-norm statistics recalibrated.

A supernet here is any module called as ``model(x, d)``, ``d`` the path (indicators,
an architecture, or channel masks).

A supernet's running BN statistics average over every path it trained, so they fit no single
path; single-path one-shot methods recompute them for the path being scored (SPOS, Guo et al.
2020). That costs a few forward passes and changes accuracies from noise to a usable ranking.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.digits import Digits

RECALIBRATION_IMAGES = 256
EVAL_BATCH = 512


def recalibrate_batch_norm(
    model: nn.Module, digits: Digits, d: Any, images: int = RECALIBRATION_IMAGES
) -> None:
    """Recompute every BN layer's running statistics on training images under path ``d``."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the recalibration batches
    model.train()
    with torch.no_grad():
        for start in range(0, min(images, len(digits.train_y)), EVAL_BATCH):
            model(digits.train_x[start : min(start + EVAL_BATCH, images)], d)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    model.eval()


def path_accuracy(model: nn.Module, digits: Digits, d: Any) -> float:
    """Validation accuracy of the path ``d`` (``model.path(architecture)``), BN recalibrated."""
    recalibrate_batch_norm(model, digits, d)
    correct = 0
    with torch.no_grad():
        for start in range(0, len(digits.val_y), EVAL_BATCH):
            x = digits.val_x[start : start + EVAL_BATCH]
            y = digits.val_y[start : start + EVAL_BATCH]
            correct += int((model(x, d).argmax(1) == y).sum())
    return correct / len(digits.val_y)
