"""Patch reshaping of frames (Shi et al., NIPS 2015, Sec. 4.1).

A frame of C x H x W is cut into non-overlapping p x p patches and the patch pixels become
channels: ``[.., C, H, W] -> [.., C p^2, H/p, W/p]`` (64x64x1 with p = 4 gives 16x16x16). It is
``torch.nn.functional.pixel_unshuffle`` and its inverse ``pixel_shuffle``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lstmforge.errors import InputError


def _check(frames: torch.Tensor, patch: int) -> None:
    if patch < 1:
        raise InputError(f"patch size must be >= 1, got {patch}")
    if frames.dim() < 3:
        raise InputError(f"frames must be [..., C, H, W], got shape {tuple(frames.shape)}")


def to_patches(frames: torch.Tensor, patch: int) -> torch.Tensor:
    """``[..., C, H, W] -> [..., C*patch*patch, H/patch, W/patch]``."""
    _check(frames, patch)
    height, width = frames.shape[-2:]
    if height % patch or width % patch:
        raise InputError(f"frame size {height}x{width} is not divisible by the patch size {patch}")
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = F.pixel_unshuffle(flat, patch)
    return out.reshape(*lead, *out.shape[1:])


def from_patches(patches: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of :func:`to_patches`: ``[..., C*p*p, h, w] -> [..., C, h*p, w*p]``."""
    _check(patches, patch)
    if patches.shape[-3] % (patch * patch):
        raise InputError(
            f"{patches.shape[-3]} channels is not a multiple of patch^2 = {patch * patch}"
        )
    lead = patches.shape[:-3]
    flat = patches.reshape(-1, *patches.shape[-3:])
    out = F.pixel_shuffle(flat, patch)
    return out.reshape(*lead, *out.shape[1:])
