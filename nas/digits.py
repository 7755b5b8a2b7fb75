"""The proxy task: scikit-learn's handwritten digits, upsampled to a small training resolution.

The data set ships inside scikit-learn (1,797 8x8 images, 10 classes), so a search needs no
download. Accuracy on it is a proxy for how trainable a candidate is, nothing more; the latency
the search optimises is the device's, for the space's real input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.errors import UserInputError

CLASSES = 10
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class Digits:
    train_x: torch.Tensor  # (N, C, R, R), standardised
    train_y: torch.Tensor  # (N,) int64
    val_x: torch.Tensor
    val_y: torch.Tensor

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[-1])

    def batches(self, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Shuffled index batches over the training split (the last one may be smaller)."""
        order = torch.randperm(len(self.train_y), generator=generator)
        return list(torch.split(order, batch_size))


def load_digits(resolution: int, channels: int, seed: int) -> Digits:
    """A stratified train/validation split at ``resolution`` x ``resolution``, ``channels`` deep.

    The grey image is repeated over the channels the space's stem takes. Standardised with the
    training split's mean and deviation.
    """
    if not 8 <= resolution <= 256:
        raise UserInputError(f"training resolution {resolution} must be between 8 and 256 pixels")
    if channels < 1:
        raise UserInputError(f"input channels {channels} must be at least 1")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    data = sklearn_digits()
    images = np.asarray(data.images, dtype=np.float32)
    labels = np.asarray(data.target, dtype=np.int64)
    train_i, val_i = train_test_split(
        np.arange(len(labels)), test_size=VALIDATION_FRACTION, stratify=labels, random_state=seed
    )
    x = torch.from_numpy(images).unsqueeze(1)
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    mean, std = x[train_i].mean(), x[train_i].std()
    x = ((x - mean) / std).repeat(1, channels, 1, 1).contiguous()
    y = torch.from_numpy(labels)
    return Digits(x[train_i], y[train_i], x[val_i], y[val_i])


def check_schedule(epochs: int, warmup_epochs: int, batch_size: int, searched: str) -> None:
    """Refuse a training schedule a search cannot run: ``searched`` names what trains after
    the warm-up (the thresholds, the gates)."""
    if epochs < 1:
        raise UserInputError(f"--epochs {epochs}: the search needs at least one epoch")
    if not 0 <= warmup_epochs < epochs:
        raise UserInputError(
            f"--warmup-epochs {warmup_epochs} must be at least 0 and below --epochs {epochs}, "
            f"or the {searched} never train"
        )
    if batch_size < 2:
        raise UserInputError("--batch-size must be at least 2 (batch norm needs a batch)")
