"""On-the-fly batch augmentation in torch, drawn from an explicit generator (reproducible)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def random_affine(
    x: torch.Tensor,
    gen: torch.Generator,
    degrees: float,
    scale: tuple,
    shift_px: float,
    shear: float = 0.0,
) -> torch.Tensor:
    """Rotate, scale, shear and shift each image of a (N,C,H,W) batch; pads with zeros."""
    n, _, h, _ = x.shape
    angle = _uniform(n, -degrees, degrees, gen) * math.pi / 180
    s = _uniform(n, *scale, gen)
    sh = _uniform(n, -shear, shear, gen)
    tx = _uniform(n, -shift_px, shift_px, gen) * 2 / h
    ty = _uniform(n, -shift_px, shift_px, gen) * 2 / h
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s  # grid maps output -> input
    theta = torch.stack([torch.stack([cos, -sin + sh, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def stroke_thickness(
    x: torch.Tensor, gen: torch.Generator, p_thick: float = 0.25, p_thin: float = 0.15
) -> torch.Tensor:
    """Partly dilate (thicker pen) or erode (thinner pen) light-on-dark strokes."""
    n = x.shape[0]
    u = torch.rand(n, generator=gen)
    amount = _uniform(n, 0.4, 1.0, gen).view(n, 1, 1, 1)
    thick = F.max_pool2d(x, 3, 1, 1)
    thin = -F.max_pool2d(-x, 3, 1, 1)
    target = torch.where((u < p_thick).view(n, 1, 1, 1), thick, x)
    target = torch.where(((u >= p_thick) & (u < p_thick + p_thin)).view(n, 1, 1, 1), thin, target)
    return x + amount * (target - x)


def augment_digits(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """MNIST-style augmentation of [0,1] white-on-black digits: pose, scale, shift, pen width."""
    x = random_affine(x, gen, degrees=12, scale=(0.85, 1.12), shift_px=2.5, shear=0.15)
    return stroke_thickness(x, gen).clamp(0, 1)


def augment_cells(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Orientation-free smear augmentation on [0,1] RGB: flips, 90-degree turns, exposure."""
    n = x.shape[0]
    flip_h = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1)
    x = torch.where(flip_h, x.flip(3), x)
    flip_v = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1)
    x = torch.where(flip_v, x.flip(2), x)
    turn = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1)
    x = torch.where(turn, x.transpose(2, 3), x)
    gain = _uniform(n, 0.9, 1.1, gen).view(n, 1, 1, 1)
    bias = _uniform(n, -0.04, 0.04, gen).view(n, 1, 1, 1)
    return (x * gain + bias).clamp(0, 1)
