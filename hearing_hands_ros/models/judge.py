"""The judge: a material and action classifier of recorded audio (log-mel in, logits out).

Trained by ``train predictor``'s ``judge`` stage on real recorded windows only (``judge_loss``),
kept in the run's ``predictor.pt`` and the bundle; ``evaluate predictor`` lets it name the material
and action of generated audio (``material_accuracy``, ``action_accuracy``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class AudioJudge(nn.Module):
    """Log-mel (B, M, T) + mask (B, T) -> material and action logits. Conv2d stack over the
    spectrogram, masked mean+max pooling over time."""

    def __init__(self, n_mels: int = 64, materials=(), actions=(), width: int = 24):
        super().__init__()
        self.config = dict(n_mels=n_mels, materials=list(materials), actions=list(actions), width=width)
        w = width
        self.conv = nn.Sequential(nn.Conv2d(1, w, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(w, w, 3, padding=1), nn.GELU(), nn.MaxPool2d((2, 1)),
                                  nn.Conv2d(w, 2 * w, 3, padding=1), nn.GELU(), nn.MaxPool2d((2, 1)))
        self.proj = nn.Linear(2 * w * (n_mels // 8), 128)
        self.material = nn.Linear(256, max(1, len(materials)))
        self.action = nn.Linear(256, max(1, len(actions)))

    def forward(self, mel, mask):
        h = self.conv(((mel + 10.0) / 4.0)[:, None])                       # (B, C, M/8, T/2)
        mask = mask[:, ::2]
        h = F.gelu(self.proj(h.flatten(1, 2).transpose(1, 2)))              # (B, T, 128)
        m = mask[:, :, None]
        mean = (h * m).sum(1) / m.sum(1).clamp_min(1)
        mx = h.masked_fill(m == 0, -1e4).max(1).values
        z = torch.cat([mean, mx], 1)
        return self.material(z), self.action(z)

    @torch.no_grad()
    def classify(self, mels: list[np.ndarray]) -> tuple[list[str], list[str]]:
        """log-mels (M, T_i) -> (materials, actions) names."""
        out_m, out_a = [], []
        for mel in mels:
            x = torch.from_numpy(mel[None].astype(np.float32))
            lm, la = self(x, torch.ones(1, mel.shape[1]))
            out_m.append(self.config['materials'][int(lm.argmax())] if self.config['materials'] else '')
            out_a.append(self.config['actions'][int(la.argmax())] if self.config['actions'] else '')
        return out_m, out_a


def label_sets(data) -> tuple[list[str], list[str]]:
    """The judge's classes: the materials (no-material windows left out) and the actions of a
    window set, sorted."""
    from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
    mats = sorted({m['material'] for m in data.meta if m['material'] != NO_MATERIAL})
    acts = sorted({m['action'] for m in data.meta})
    return mats, acts


def judge_loss(judge: nn.Module, data, idx, rng, device) -> torch.Tensor:
    """Cross-entropy on real windows (random gain +-6 dB so loudness alone does not decide)."""
    base = getattr(judge, 'module', judge)
    mats, acts = base.config['materials'], base.config['actions']
    t_max = data.mel.shape[-1]
    mel = torch.from_numpy(data.mel[idx].astype(np.float32))
    mel = mel + torch.from_numpy(rng.uniform(-1.4, 1.4, (len(idx), 1, 1)).astype(np.float32))
    mask = torch.from_numpy((np.arange(t_max)[None] < data.valid[idx, None]).astype(np.float32))
    ym = torch.tensor([mats.index(data.meta[i]['material']) if data.meta[i]['material'] in mats
                       else -100 for i in idx])
    ya = torch.tensor([acts.index(data.meta[i]['action']) if data.meta[i]['action'] in acts
                       else -100 for i in idx])
    lm, la = judge(mel.to(device), mask.to(device))
    loss = F.cross_entropy(la, ya.to(device), ignore_index=-100)
    if (ym >= 0).any():
        loss = loss + F.cross_entropy(lm, ym.to(device), ignore_index=-100)
    return loss
