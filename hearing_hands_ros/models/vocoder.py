"""Log-mel -> waveform: a small Vocos-style vocoder (Siuzdak 2024) with an ONNX-friendly ISTFT.

Vocos keeps every layer at the frame rate (ConvNeXt blocks over mel frames) and lets an inverse
STFT do the upsampling: the network predicts, per frame, a log-magnitude and a phase for each of
the ``n_fft // 2 + 1`` bins. Here the inverse DFT, the synthesis window and the overlap-add are one
fixed ``ConvTranspose1d`` (kernel ``n_fft``, stride ``hop``), normalised by the overlap-added
squared window, so the graph exports to plain ONNX and equals ``torch.istft(center=True)``.

Features match :func:`hearing_hands_ros.audio.log_mel`: ``ln(mel_power + 1e-6)``, HTK mel,
Slaney-normalised filters, periodic Hann window, centred frames, ``T = 1 + N // hop``; the
vocoder returns ``(T - 1) * hop`` samples. Training loss: multi-resolution STFT (spectral
convergence + log magnitude) plus L1 on the log-mel. :func:`griffin_lim` is a reference only.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hearing_hands_ros.audio import mel_filterbank

MEL_EPS = 1e-6


class MelSpectrogram(nn.Module):
    """Differentiable twin of ``audio.log_mel``: (B, N) -> (B, n_mels, 1 + N // hop)."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop: int = 160, n_mels: int = 64):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer('window', torch.hann_window(n_fft), persistent=False)
        self.register_buffer('fb', torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)),
                             persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio, self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode='reflect', return_complex=True)                 # (B, F, T)
        return torch.log(self.fb @ spec.abs().pow(2) + MEL_EPS)


class ISTFT(nn.Module):
    """(B, 2F, T) real|imag halves -> (B, (T - 1) * hop) as ``torch.istft(center=True)``."""

    def __init__(self, n_fft: int = 512, hop: int = 160):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        n_bins = n_fft // 2 + 1
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(n_bins, dtype=torch.float64)[:, None]
        scale = torch.full((n_bins, 1), 2.0, dtype=torch.float64)
        scale[0] = scale[-1] = 1.0
        win = torch.hann_window(n_fft, dtype=torch.float64)
        ang = 2 * math.pi * k * n / n_fft                                           # (F, N)
        basis = torch.cat([scale * torch.cos(ang), -scale * torch.sin(ang)]) * win / n_fft
        self.register_buffer('basis', basis[:, None, :].float(), persistent=False)  # (2F, 1, N)
        self.register_buffer('win_sq', (win ** 2).float().view(1, 1, -1), persistent=False)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        frames = spec.shape[-1]
        y = F.conv_transpose1d(spec, self.basis, stride=self.hop)                 # (B, 1, L)
        env = F.conv_transpose1d(torch.ones_like(spec[:1, :1]), self.win_sq, stride=self.hop)
        y = y / env.clamp_min(1e-8)
        start = self.n_fft // 2
        return y[:, 0, start:start + (frames - 1) * self.hop]


class ConvNeXt1d(nn.Module):
    """Depthwise conv (k=7) -> LayerNorm -> 1x1 up (x``mult``) -> GELU -> 1x1 down, residual."""

    def __init__(self, dim: int, mult: int = 3, kernel: int = 7, dilation: int = 1):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                            groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, mult * dim)
        self.down = nn.Linear(mult * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:                # (B, C, T)
        h = self.norm(self.dw(x).transpose(1, 2))                     # (B, T, C)
        h = self.down(F.gelu(self.up(h))) * self.gamma
        return x + h.transpose(1, 2)


class Vocoder(nn.Module):
    """Log-mel (B, n_mels, T) -> waveform (B, (T - 1) * hop) in [-1, 1]-ish."""

    def __init__(self, n_mels: int = 64, dim: int = 128, blocks: int = 4, n_fft: int = 512,
                 hop: int = 160, sample_rate: int = 16000, mel_mean: float = -8.0,
                 mel_std: float = 4.0):
        super().__init__()
        self.config = dict(n_mels=n_mels, dim=dim, blocks=blocks, n_fft=n_fft, hop=hop,
                           sample_rate=sample_rate, mel_mean=mel_mean, mel_std=mel_std)
        self.mel_mean, self.mel_std = mel_mean, mel_std
        self.n_bins = n_fft // 2 + 1
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXt1d(dim) for _ in range(blocks)])
        self.out_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2 * self.n_bins)
        self.istft = ISTFT(n_fft, hop)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.embed((mel - self.mel_mean) / self.mel_std)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        x = self.blocks(x)
        h = self.head(self.out_norm(x.transpose(1, 2))).transpose(1, 2)   # (B, 2F, T)
        log_mag, phase = h[:, :self.n_bins], h[:, self.n_bins:]
        mag = torch.exp(log_mag.clamp(max=6.0))
        spec = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)
        return self.istft(spec)


# --- training loss --------------------------------------------------------------------------
def _stft_mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    win = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x, n_fft, hop, window=win, center=True, return_complex=True).abs() + 1e-7


def multi_resolution_stft_loss(pred: torch.Tensor, real: torch.Tensor,
                               resolutions=((256, 64), (512, 128), (1024, 256))) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 log-magnitude (Yamamoto et al. 2020)."""
    loss = pred.new_zeros(())
    for n_fft, hop in resolutions:
        p, r = _stft_mag(pred, n_fft, hop), _stft_mag(real, n_fft, hop)
        sc = torch.linalg.norm(r - p, dim=(1, 2)) / torch.linalg.norm(r, dim=(1, 2)).clamp_min(1e-5)
        loss = loss + sc.mean() + (p.log() - r.log()).abs().mean()
    return loss / len(resolutions)


def vocoder_loss(vocoder: Vocoder, mel_fn: MelSpectrogram, audio: torch.Tensor) -> torch.Tensor:
    """Reconstruction loss of ``audio`` (B, N) with N a multiple of hop."""
    mel = mel_fn(audio)
    pred = vocoder(mel)
    real = audio[:, :pred.shape[1]]
    mel_l1 = (mel_fn(pred)[..., :-1] - mel[..., :-1]).abs().mean()
    return multi_resolution_stft_loss(pred, real) + 0.5 * mel_l1


# --- reference --------------------------------------------------------------------------------
def griffin_lim(log_mel: np.ndarray, sample_rate: int = 16000, n_fft: int = 512, hop: int = 160,
                n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Reference vocoder: mel pseudo-inverse (non-negative least squares by projected gradient
    would be slower; the pseudo-inverse clipped at 0 is the usual cheap choice) then Griffin-Lim.
    ``log_mel`` (n_mels, T) -> float32 ((T - 1) * hop,)."""
    fb = mel_filterbank(sample_rate, n_fft, log_mel.shape[0])
    power = np.linalg.pinv(fb) @ np.maximum(np.exp(log_mel) - MEL_EPS, 0.0)
    mag = torch.from_numpy(np.sqrt(np.maximum(power, 0.0))).float()               # (F, T)
    win = torch.hann_window(n_fft)
    rng = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * math.pi * torch.rand(mag.shape, generator=rng))
    length = (mag.shape[1] - 1) * hop
    for _ in range(n_iter):
        y = torch.istft(mag * angles, n_fft, hop, window=win, center=True, length=length)
        spec = torch.stft(y, n_fft, hop, window=win, center=True, return_complex=True)
        angles = torch.exp(1j * spec.angle())
    return torch.istft(mag * angles, n_fft, hop, window=win, center=True,
                       length=length).numpy().astype(np.float32)
