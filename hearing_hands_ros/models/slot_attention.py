"""Slot attention (Locatello et al., NeurIPS 2020).

Slots compete for input tokens (softmax over slots), then each slot is updated from the weighted
mean of the tokens it won (GRU + residual MLP). Initial slots: ``'learned'``, one learned vector
per index (deterministic, but a slot index tends to specialise to a part of the image), or
``'gaussian'``, the paper's shared Gaussian (fresh samples in training, one fixed sample at
evaluation, so inference and the ONNX graph stay a plain function of the inputs). The
iterations are unrolled at export.

Shapes: B batch, N tokens, K slots, D feature width.
"""
from __future__ import annotations

import torch
from torch import nn


class SlotAttention(nn.Module):
    def __init__(self, num_slots: int = 6, dim: int = 64, iters: int = 3, hidden: int = 128,
                 eps: float = 1e-8, init: str = 'learned'):
        super().__init__()
        if init not in ('learned', 'gaussian'):
            raise ValueError(f"slot init must be 'learned' or 'gaussian', not {init!r}")
        self.num_slots, self.dim, self.iters, self.eps, self.init = num_slots, dim, iters, eps, init
        self.scale = dim ** -0.5
        self.slots_init = nn.Parameter(torch.randn(1, num_slots, dim) * dim ** -0.5)
        if init == 'gaussian':
            # Locatello et al.: every slot starts from one shared Gaussian, so no slot index can
            # specialise to a place in the image. Training draws fresh noise; evaluation (and the
            # ONNX graph) uses one fixed draw, stored with the weights.
            self.slots_mu = nn.Parameter(torch.zeros(1, 1, dim))
            self.slots_log_sigma = nn.Parameter(torch.full((1, 1, dim), -1.0))
            g = torch.Generator().manual_seed(0)
            self.register_buffer('eval_noise', torch.randn(1, num_slots, dim, generator=g))
        self.norm_inputs = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (B, N, D) -> slots (B, K, D), attention (B, K, N) (sums to 1 over K)."""
        b, n, d = inputs.shape
        inputs = self.norm_inputs(inputs)
        k, v = self.to_k(inputs), self.to_v(inputs)                      # (B, N, D)
        if self.init == 'gaussian':
            noise = (torch.randn(b, self.num_slots, d, device=inputs.device) if self.training
                     else self.eval_noise.expand(b, -1, -1))
            slots = self.slots_mu + self.slots_log_sigma.exp() * noise       # (B, K, D)
        else:
            slots = self.slots_init.expand(b, -1, -1)                    # (B, K, D)
        attn = inputs.new_zeros(b, self.num_slots, n)
        for _ in range(self.iters):
            prev = slots
            q = self.to_q(self.norm_slots(slots))                        # (B, K, D)
            logits = torch.einsum('bkd,bnd->bkn', q, k) * self.scale     # (B, K, N)
            attn = logits.softmax(dim=1) + self.eps                      # compete over slots
            weights = attn / attn.sum(dim=2, keepdim=True)               # weighted mean over N
            updates = torch.einsum('bkn,bnd->bkd', weights, v)           # (B, K, D)
            slots = self.gru(updates.reshape(-1, d), prev.reshape(-1, d)).reshape(b, -1, d)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return slots, attn


def position_grid(h: int, w: int) -> torch.Tensor:
    """(1, h, w, 4) ramps [x, y, 1-x, 1-y] in [0, 1] (the 'soft position embedding' input)."""
    ys = torch.linspace(0.0, 1.0, h)
    xs = torch.linspace(0.0, 1.0, w)
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([gx, gy, 1 - gx, 1 - gy], dim=-1)[None]


class SoftPositionEmbed(nn.Module):
    """Adds a learned linear map of the position grid to a channels-last feature map."""

    def __init__(self, dim: int, h: int, w: int):
        super().__init__()
        self.proj = nn.Linear(4, dim)
        self.register_buffer('grid', position_grid(h, w), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, h, w, D) -> (B, h, w, D)."""
        return x + self.proj(self.grid)


class BroadcastDecoder(nn.Module):
    """Spatial-broadcast decoder: each slot -> RGB (3) + alpha logit (1) on an (out, out) grid.

    A slot is tiled on a ``start x start`` grid with a position embedding, then upsampled by
    transposed convolutions (x2 each) to ``out x out``.
    """

    def __init__(self, dim: int = 64, hidden: int = 32, start: int = 8, out: int = 32):
        super().__init__()
        self.start = start
        self.pos = SoftPositionEmbed(dim, start, start)
        layers: list[nn.Module] = []
        ch, size = dim, start
        while size < out:
            layers += [nn.ConvTranspose2d(ch, hidden, 4, stride=2, padding=1), nn.ReLU()]
            ch, size = hidden, size * 2
        layers += [nn.Conv2d(ch, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, 4, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """slots (B, K, D) -> recon (B, 3, out, out), masks (B, K, out, out) summing to 1 over K,
        per-slot rgb (B, K, 3, out, out)."""
        b, k, d = slots.shape
        x = slots.reshape(b * k, 1, 1, d).expand(-1, self.start, self.start, -1)
        x = self.pos(x).permute(0, 3, 1, 2)                              # (BK, D, s, s)
        x = self.net(x)                                                  # (BK, 4, out, out)
        x = x.reshape(b, k, 4, x.shape[-2], x.shape[-1])
        rgb, alpha = x[:, :, :3], x[:, :, 3]
        masks = alpha.softmax(dim=1)                                     # (B, K, out, out)
        recon = (rgb * masks[:, :, None]).sum(dim=1)                     # (B, 3, out, out)
        return recon, masks, rgb
