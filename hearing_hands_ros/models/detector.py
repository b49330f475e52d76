"""The sounding-object detector: which object in the wrist-camera frame made that sound?

One network, three variants (``DetectorConfig.variant``), so the baselines share every line they
can with the model:

``slots`` (the model)
    image (B,3,S,S) -> CNN -> tokens (B,N,D) + position -> slot attention -> K slots (B,K,D)
    -> spatial-broadcast decoder -> per-slot alpha masks (B,K,s,s) + reconstruction (B,3,s,s).
    log-mel (B,1,M,T) -> audio CNN -> audio embedding a (B,E).
    logit of slot k = p(slot_k) + w * cos(a, g(slot_k)): a visual prior ("this object is
    where a touch happens": under the fingers) plus the audio-visual match
    ("this object looks like what I hear"), weighted by a learned w; softmax over slots =
    P(slot k made the sound).
``vision_only``
    the same without the audio term: logit of slot k = p(slot_k) (no audio input).
``global_av``
    no slots: every feature-map cell is scored against the audio embedding,
    sigmoid -> a per-pixel "sounding" map (B,1,S,S) (classic sound-source localisation).

Training signal (see ``detector_loss``): reconstruction (self-supervised, makes slots = objects)
+ cross-entropy of the slot scores toward the slot that best overlaps the *automatic* mask of the
touched object + a mask loss of the score-weighted mask vs that mask + a cross-event InfoNCE term
that pulls the audio embedding of event i toward the touched slot of event i and away from the
touched slots of the other events in the batch. The within-frame terms can be solved from
position alone (the touched object is under the fingers), the cross-event term cannot (every
touched object sits under the fingers), so it is what makes the audio branch carry material and
the slot embedding carry appearance: that is what decides between two objects that are both
next to the fingers.

Export: ``export_onnx`` writes ``name.onnx`` + ``name.json`` (runtime bundle, kind ``detector``)
and ``name.pt`` (the torch backend). Inputs ``image`` float32 RGB in [0,1] (B,3,S,S) and
``logmel`` (B,1,M,T) from ``hearing_hands_ros.audio.log_mel``; outputs ``scores`` (B,K) and
``masks`` (B,K,S,S) (slot masks sum to 1 over K).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .slot_attention import BroadcastDecoder, SlotAttention, SoftPositionEmbed

VARIANTS = ('slots', 'vision_only', 'global_av')


@dataclass
class DetectorConfig:
    variant: str = 'slots'
    image_size: int = 64        # S: input frames are resized to S x S
    num_slots: int = 6          # K
    dim: int = 64               # D: token / slot width
    embed: int = 32             # E: audio-visual embedding width
    iters: int = 3              # slot-attention iterations
    slot_init: str = 'learned'  # 'learned' (one vector per slot) or 'gaussian' (shared, sampled)
    decoder_size: int = 32      # s: decoder output (masks are upsampled to S for the outputs)
    # audio features (must match what the node computes with audio.log_mel)
    sample_rate: int = 16000
    n_mels: int = 64            # M
    n_fft: int = 512
    hop: int = 80               # 5 ms frames: the window is short, keep its time detail
    # The window is short on purpose: the node can only answer once the window's last sample has
    # arrived, and the end-to-end target is 100 ms after the onset's audio chunk.
    window_pre_s: float = 0.016  # audio window starts this long before the onset
    window_post_s: float = 0.032  # and ends this long after it (attack + first modal decay)
    mel_mean: float = 0.0       # log-mel normalisation (set from the training data)
    mel_std: float = 1.0

    @property
    def frames(self) -> int:
        """T: log-mel frames per event window."""
        n = int(round((self.window_pre_s + self.window_post_s) * self.sample_rate))
        return n // self.hop + 1

    @classmethod
    def from_dict(cls, d: dict) -> 'DetectorConfig':
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


class ImageEncoder(nn.Module):
    """(B,3,S,S) in [0,1] -> tokens (B, (S/4)^2, D) with a soft position embedding."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        d, h = cfg.dim, cfg.image_size // 4
        self.h = h
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, d, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(d, d, 3, padding=1))
        self.pos = SoftPositionEmbed(d, h, h)
        self.mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.cnn(image * 2.0 - 1.0).permute(0, 2, 3, 1)             # (B, h, h, D)
        x = self.pos(x).flatten(1, 2)                                    # (B, N, D)
        return self.mlp(x)


class AudioEncoder(nn.Module):
    """log-mel (B,1,M,T) -> (B,E). Pools over time only: where the energy sits in frequency
    (modal frequencies: material, size, shape) is kept."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU())
        m = cfg.n_mels
        for _ in range(3):
            m = (m + 1) // 2
        self.head = nn.Sequential(nn.Linear(2 * 32 * m, 128), nn.ReLU(), nn.Linear(128, cfg.embed))
        self.register_buffer('mean', torch.tensor(float(cfg.mel_mean)))
        self.register_buffer('std', torch.tensor(float(cfg.mel_std)))

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = self.cnn((logmel - self.mean) / self.std)                    # (B, 32, m, t)
        x = torch.cat([x.mean(dim=3), x.amax(dim=3)], dim=1)             # (B, 64, m)
        return self.head(x.flatten(1))


class SoundingObjectDetector(nn.Module):
    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        if cfg.variant not in VARIANTS:
            raise ValueError(f'unknown detector variant {cfg.variant!r}; one of {VARIANTS}')
        self.cfg = cfg
        d, e = cfg.dim, cfg.embed
        self.encoder = ImageEncoder(cfg)
        if cfg.variant != 'vision_only':
            self.audio = AudioEncoder(cfg)
        if cfg.variant != 'global_av':
            self.slot_attention = SlotAttention(cfg.num_slots, d, cfg.iters, init=cfg.slot_init)
            self.decoder = BroadcastDecoder(d, 32, start=8, out=cfg.decoder_size)
            self.prior_head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))
        self.visual_head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, e))
        self.log_scale = nn.Parameter(torch.tensor(np.log(5.0), dtype=torch.float32))
        self.log_match = nn.Parameter(torch.tensor(0.0))                 # w = exp(log_match)
        self.bias = nn.Parameter(torch.zeros(()))                        # global_av only

    @property
    def uses_audio(self) -> bool:
        return self.cfg.variant != 'vision_only'

    def forward(self, image: torch.Tensor, logmel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training outputs. slots variants: logits (B,K), masks (B,K,s,s), recon (B,3,s,s),
        v (B,K,E), a (B,E). global_av: logits (B,1,h,h) per cell, v (B,N,E), a (B,E)."""
        tokens = self.encoder(image)                                     # (B, N, D)
        scale = self.log_scale.clamp(max=np.log(30.0)).exp()
        slots_out = {}
        if self.cfg.variant != 'global_av':
            slots, _ = self.slot_attention(tokens)                       # (B, K, D)
            recon, masks, _ = self.decoder(slots)                        # (B,3,s,s), (B,K,s,s)
            v = F.normalize(self.visual_head(slots), dim=-1)             # (B, K, E)
            prior = self.prior_head(slots)[..., 0]                       # (B, K)
            slots_out = {'masks': masks, 'recon': recon, 'v': v, 'prior': prior}
            if not self.uses_audio:
                return {'logits': prior, **slots_out}
        a = F.normalize(self.audio(logmel), dim=-1)                      # (B, E)
        if self.cfg.variant == 'global_av':
            v = F.normalize(self.visual_head(tokens), dim=-1)            # (B, N, E)
            logits = scale * torch.einsum('bne,be->bn', v, a) + self.bias
            h = self.encoder.h
            return {'logits': logits.reshape(-1, 1, h, h), 'v': v, 'a': a}
        w = self.log_match.clamp(max=np.log(10.0)).exp()
        match = w * torch.einsum('bke,be->bk', slots_out['v'], a)        # (B, K)
        return {'logits': slots_out['prior'] + match, 'match': match, 'a': a, **slots_out}

    def infer(self, image: torch.Tensor, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deployment outputs: scores (B,K) (probabilities), masks (B,K,S,S).
        global_av: scores (B,1) = peak probability, masks (B,1,S,S) = per-pixel probability."""
        out = self.forward(image, logmel)
        size = (self.cfg.image_size, self.cfg.image_size)
        if self.cfg.variant == 'global_av':
            prob = torch.sigmoid(F.interpolate(out['logits'], size=size, mode='bilinear',
                                               align_corners=False))
            return prob.flatten(1).amax(dim=1, keepdim=True), prob
        masks = F.interpolate(out['masks'], size=size, mode='bilinear', align_corners=False)
        return out['logits'].softmax(dim=1), masks


# --- inputs (shared by the data set builder and the node, so training = deployment) ----------
def image_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB (H,W,3) -> uint8 (size,size,3) (area resampling). The model scales by 1/255."""
    import cv2
    if rgb.shape[:2] == (size, size):
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def audio_input(window: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """Mono float32 samples of [onset - pre, onset + post) at cfg.sample_rate -> log-mel (M,T)."""
    from ..audio import log_mel
    m = log_mel(window, cfg.sample_rate, n_mels=cfg.n_mels, n_fft=cfg.n_fft, hop=cfg.hop)
    t = cfg.frames
    if m.shape[1] < t:
        m = np.pad(m, ((0, 0), (0, t - m.shape[1])), constant_values=float(np.log(1e-6)))
    return m[:, :t]


class _InferWrapper(nn.Module):
    def __init__(self, net: SoundingObjectDetector):
        super().__init__()
        self.net = net

    def forward(self, image, logmel):
        return self.net.infer(image, logmel)


# --- losses ----------------------------------------------------------------------------------
def _soft_iou(masks: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """masks (B,K,s,s) in [0,1], target (B,s,s) -> (B,K)."""
    t = target[:, None]
    inter = (masks * t).flatten(2).sum(-1)
    union = (masks + t - masks * t).flatten(2).sum(-1)
    return inter / union.clamp(min=1e-6)


def segment_loss(masks: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Every automatic object segment should be one slot, and no slot should spill out of its
    segment. Each segment is matched to its own slot (Hungarian matching on soft IoU, as DETR /
    Mask2Former match queries to objects); then every pixel is classified: a segment's pixels
    into its slot, the other pixels (table, fingers) into any unmatched slot. Per-pixel
    cross-entropy, averaged per segment (a small object counts as much as a large one) and over
    the background. masks (B,K,s,s) summing to 1 over K, segments (B,J,S,S) in {0,1}, J < K."""
    from scipy.optimize import linear_sum_assignment
    s = masks.shape[-1]
    seg = F.adaptive_avg_pool2d(segments, s)                             # (B,J,s,s) soft
    present = segments.flatten(2).sum(-1) > 0                            # (B,J)
    with torch.no_grad():
        inter = torch.einsum('bkxy,bjxy->bkj', masks, seg)               # (B,K,J)
        union = masks.flatten(2).sum(-1)[:, :, None] + seg.flatten(2).sum(-1)[:, None] - inter
        cost = -(inter / union.clamp(min=1e-6))
    terms = []
    for b in range(len(masks)):
        js = present[b].nonzero()[:, 0][:masks.shape[1] - 1]             # leave one slot free
        if len(js) == 0:
            continue
        ks, cols = linear_sum_assignment(cost[b][:, js].cpu().numpy())
        free = torch.ones(masks.shape[1], dtype=torch.bool)
        free[torch.as_tensor(ks)] = False
        for k, c in zip(ks, cols):
            w = seg[b, js[c]]                                            # (s,s) pixel weights
            terms.append(-(w * masks[b, k].clamp(min=1e-6).log()).sum() / w.sum().clamp(min=1e-6))
        bg = (1 - seg[b, js].sum(0)).clamp(min=0)                        # (s,s)
        p_free = masks[b, free.to(masks.device)].sum(0).clamp(min=1e-6)
        terms.append(-(bg * p_free.log()).sum() / bg.sum().clamp(min=1e-6))
    return torch.stack(terms).mean() if terms else masks.new_zeros(())


def detector_loss(net: SoundingObjectDetector, out: dict, image: torch.Tensor,
                  automask: torch.Tensor, valid: torch.Tensor,
                  weights: dict[str, float] | None = None, match_dropout: float = 0.0,
                  prior_dropout: float = 0.0, segments: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """image (B,3,S,S), automask (B,S,S) in {0,1}, valid (B,) bool (automask usable).
    ``segments`` (B,J,S,S) in {0,1}: automatic segments of every object in the frame
    (``automask.object_segments``); with a ``'seg'`` weight they pull one slot onto each, so
    the slots split two objects that meet under the fingers (slots variants).
    ``match_dropout``: fraction of events scored by the visual prior alone (the audio-match
    term dropped), so the prior stays a complete detector. ``prior_dropout``: fraction scored by
    the audio-visual match alone, so the match can pick the object by itself (and its weight
    grows to where it outvotes the prior when the prior cannot decide between two objects).
    Returns the total loss and its parts (floats, for logging)."""
    w = {'rec': 20.0, 'ce': 1.0, 'mask': 1.0, 'nce': 0.5, **(weights or {})}
    parts: dict[str, torch.Tensor] = {}
    vf = valid.float()
    nvalid = vf.sum().clamp(min=1.0)
    if net.cfg.variant == 'global_av':
        logits = out['logits']                                           # (B,1,h,h)
        h = logits.shape[-1]
        am = F.adaptive_avg_pool2d(automask[:, None], h)                 # (B,1,h,h) soft
        bce = F.binary_cross_entropy_with_logits(logits, am, reduction='none').flatten(1).mean(1)
        parts['mask'] = (bce * vf).sum() / nvalid
        pooled = (out['v'] * am.flatten(1)[..., None]).sum(1)            # (B,E)
        target_v = F.normalize(pooled, dim=-1)
    else:
        s = out['masks'].shape[-1]
        am = F.adaptive_avg_pool2d(automask[:, None], s)[:, 0]           # (B,s,s)
        img_s = F.adaptive_avg_pool2d(image, s)
        parts['rec'] = F.mse_loss(out['recon'], img_s)
        if segments is not None and w.get('seg', 0.0) > 0:
            parts['seg'] = segment_loss(out['masks'], segments)
        iou = _soft_iou(out['masks'], am)                                # (B,K)
        target = iou.detach().argmax(dim=1)                              # (B,)
        logits = out['logits']
        if 'match' in out and (match_dropout > 0 or prior_dropout > 0):
            r = torch.rand(len(logits), 1, device=logits.device)
            keep_match = (r >= match_dropout).float()                    # (B,1)
            keep_prior = (r < 1.0 - prior_dropout).float()
            logits = keep_prior * out['prior'] + keep_match * out['match']
        ce = F.cross_entropy(logits, target, reduction='none')
        parts['ce'] = (ce * vf).sum() / nvalid
        p = logits.softmax(dim=1)
        mixed = (p[..., None, None] * out['masks']).sum(1).clamp(1e-5, 1 - 1e-5)
        bce = F.binary_cross_entropy(mixed, am, reduction='none').flatten(1).mean(1)
        best = iou.gather(1, target[:, None])[:, 0]                      # pull the slot onto it
        parts['mask'] = ((bce + (1 - best)) * vf).sum() / nvalid
        target_v = out['v'][torch.arange(len(target)), target]           # (B,E)
    if net.uses_audio and int(valid.sum()) > 1:
        idx = valid.nonzero()[:, 0]
        a, tv = out['a'][idx], target_v[idx]
        sim = net.log_scale.clamp(max=np.log(30.0)).exp() * a @ tv.t()   # (b, b)
        lbl = torch.arange(len(idx))
        parts['nce'] = 0.5 * (F.cross_entropy(sim, lbl) + F.cross_entropy(sim.t(), lbl))
    total = sum(w[k] * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}


# --- candidates (node and evaluation) --------------------------------------------------------
def extract_candidates(scores: np.ndarray, masks: np.ndarray, min_area: float = 0.004,
                       max_area: float = 0.6) -> list[dict[str, Any]]:
    """One candidate object per slot whose hard region covers [min_area, max_area] of the frame.

    scores (K,), masks (K,H,W) (slot masks summing to 1 over K) -> list of
    {slot, score, mask (H,W) bool, bbox (x0, y0, x1, y1) pixels, inclusive-exclusive}, best first.
    A one-slot (global_av) output is split into connected components of ``mask > 0.5``.
    """
    import cv2
    k, h, w = masks.shape
    out = []
    if k == 1:
        n, lab = cv2.connectedComponents((masks[0] > 0.5).astype(np.uint8))
        regions = [(lab == i, float(masks[0][lab == i].max())) for i in range(1, n)]
    else:
        hard = masks.argmax(axis=0)
        regions = [(hard == i, float(scores[i])) for i in range(k)]
    for slot, (region, score) in enumerate(regions):
        area = region.mean()
        if not (min_area <= area <= max_area):
            continue
        ys, xs = np.nonzero(region)
        out.append({'slot': slot, 'score': score, 'mask': region,
                    'bbox': (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)})
    out.sort(key=lambda c: -c['score'])
    return out


# --- checkpoints and export ------------------------------------------------------------------
def save_checkpoint(path: str | Path, net: SoundingObjectDetector, **extra: Any) -> None:
    torch.save({'config': net.cfg.to_dict(), 'state_dict': net.state_dict(), **extra}, str(path))


def load_checkpoint(path: str | Path, map_location: str = 'cpu') -> tuple[SoundingObjectDetector, dict]:
    ckpt = torch.load(str(path), map_location=map_location, weights_only=False)
    net = SoundingObjectDetector(DetectorConfig.from_dict(ckpt['config']))
    net.load_state_dict(ckpt['state_dict'])
    return net.eval(), ckpt


def bundle_metadata(cfg: DetectorConfig) -> dict[str, Any]:
    """The fields a node checks/uses (besides inputs/outputs) in ``name.json``."""
    k = 1 if cfg.variant == 'global_av' else cfg.num_slots
    return {
        'variant': cfg.variant, 'sample_rate': cfg.sample_rate, 'n_mels': cfg.n_mels,
        'n_fft': cfg.n_fft, 'hop': cfg.hop, 'frames': cfg.frames,
        'window_pre_s': cfg.window_pre_s, 'window_post_s': cfg.window_post_s,
        'image_size': cfg.image_size, 'num_slots': k,
        'image_layout': 'NCHW float32 RGB in [0,1], resized (INTER_AREA) from the camera frame',
        'audio_layout': 'log_mel(mono float32 [-1,1] at sample_rate) of [onset-pre, onset+post], '
                        'cropped/zero-padded to frames',
        'config': cfg.to_dict(),
    }


def export_onnx(net: SoundingObjectDetector, path: str | Path, **extra_meta: Any) -> Path:
    """Write ``path`` (.onnx) + .json metadata + .pt checkpoint. Returns the .onnx path."""
    from ..runtime import bundle_paths, save_metadata
    onnx_path, _ = bundle_paths(path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    cfg = net.cfg
    net = net.eval()
    s, m, t = cfg.image_size, cfg.n_mels, cfg.frames
    image = torch.rand(1, 3, s, s)
    logmel = torch.randn(1, 1, m, t)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # the legacy (TorchScript) exporter is deprecated
        torch.onnx.export(_InferWrapper(net).eval(), (image, logmel), str(onnx_path),
                          input_names=['image', 'logmel'], output_names=['scores', 'masks'],
                          dynamic_axes={'image': {0: 'batch'}, 'logmel': {0: 'batch'},
                                        'scores': {0: 'batch'}, 'masks': {0: 'batch'}},
                          opset_version=17, dynamo=False)
    inputs = {'image': ['batch', 3, s, s], 'logmel': ['batch', 1, m, t]}
    if cfg.variant == 'vision_only':
        del inputs['logmel']                         # unused: the exporter drops it
    save_metadata(onnx_path, 'detector', inputs=inputs,
                  outputs=['scores', 'masks'], **bundle_metadata(cfg), **extra_meta)
    save_checkpoint(onnx_path.with_suffix('.pt'), net)
    return onnx_path


def torch_loader(pt_path: Path, meta: dict):
    """``runtime.load_bundle(..., backend='torch', torch_loader=torch_loader)``."""
    net, _ = load_checkpoint(pt_path)

    @torch.no_grad()
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        mel = feeds.get('logmel')
        scores, masks = net.infer(torch.from_numpy(feeds['image']),
                                  None if mel is None else torch.from_numpy(mel))
        return {'scores': scores.numpy(), 'masks': masks.numpy()}

    return run
