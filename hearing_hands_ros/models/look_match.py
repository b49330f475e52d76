"""Which object *looks like* the sound: the detector's match between a region's look and the event.

The slots find where objects are and which one a touch is likely to be at; between two objects
that are both at the fingertips only the sound can decide. This module scores a candidate
region by how well its look goes with the sound:

    region of the frame (L,L,3) + mask -> ``look_features``: 31 hand-written look statistics
        (colour mean/spread, saturation/value/hue, brightness percentiles, texture: Laplacian
        at two scales, fine speckle, gradient magnitude and orientation coherence, log area)
    event audio window -> ``sound_features``: a fine log-mel (24 bands, 128-point FFT, 2 ms hop),
        flattened
    LookMatch: look MLP -> e_v (E,), sound MLP -> e_a (E,); logit = scale * cos(e_a, e_v)

Trained with a cross-event InfoNCE (``train_look_match``) on the *automatic* masks of the touched
objects of the training events: the sound of event i is pulled toward the look of its own touched
object and away from those of the other events of the batch. No labels, no ambiguous episode:
what a robot records while touching things. Hand-written statistics rather than a CNN, because
they learn the pairing within minutes on a CPU where the learned appearance branches stayed at
chance (README, *Detector quality*); the statistics are computed at the camera's own 128 px, where
the texture of grain, stripes and speckle is still visible (at the slots' 64 px it mostly is not).

Export: ``export_onnx`` writes a ``look_match`` bundle (``name.onnx`` + ``.json`` + ``.pt``):
inputs ``sound`` (1,A) and ``looks`` (N,F) (raw features; the normalisation is inside), output
``logits`` (N,).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_LOOK = 31
SLOT_MAX_AREA = 0.3     # the slots' own regions, when a frame has no segment


@dataclass
class LookConfig:
    look_size: int = 128          # L: frames are resized to L x L for the look statistics
    sample_rate: int = 16000
    n_mels: int = 24              # a finer time grid than the slots' audio: the ring-out's
    n_fft: int = 128              # first milliseconds carry the material
    hop: int = 32
    window_pre_s: float = 0.016   # the detector's event window
    window_post_s: float = 0.032
    hidden_sound: int = 256
    hidden_look: int = 128
    embed: int = 32
    scale: float = 10.0           # InfoNCE temperature 0.1

    @property
    def frames(self) -> int:
        n = int(round((self.window_pre_s + self.window_post_s) * self.sample_rate))
        return n // self.hop + 1

    @property
    def n_sound(self) -> int:
        return self.n_mels * self.frames

    @classmethod
    def from_dict(cls, d: dict) -> 'LookConfig':
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


# --- features (numpy; shared by the data set builder, the evaluation and the node) -------------
def look_maps(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel maps of a frame (uint8 RGB (L,L,3)) that ``look_features`` pools under a mask;
    computed once per frame, whatever the number of candidates."""
    f = rgb.astype(np.float32) / 255.0
    g = f.mean(axis=2)
    blur = cv2.GaussianBlur(f, (0, 0), 1.5)
    return {'rgb': f,
            'gx': cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), 'gy': cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3),
            'lap': np.abs(cv2.Laplacian(f, cv2.CV_32F, ksize=3)),        # local contrast (texture)
            'lap2': np.abs(cv2.Laplacian(blur, cv2.CV_32F, ksize=3)),    # coarser texture
            'speckle': np.abs(f - blur),                                 # finest texture
            'hsv': cv2.cvtColor(f, cv2.COLOR_RGB2HSV)}


def look_features(rgb: np.ndarray | dict, mask: np.ndarray) -> np.ndarray | None:
    """uint8 RGB (L,L,3) (or its ``look_maps``) + bool mask (L,L) -> float32 (N_LOOK,) look
    statistics of the masked pixels (their interior, eroded by a pixel, so the outline's edges do
    not count as texture); None when the region has fewer than 3 pixels."""
    mask = np.asarray(mask, bool)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if inner.sum() < 6:
        inner = mask
    if inner.sum() < 3:
        return None
    m = rgb if isinstance(rgb, dict) else look_maps(rgb)
    px, hv = m['rgb'][inner], m['hsv'][inner]
    lap, lap2, speckle = m['lap'][inner], m['lap2'][inner], m['speckle'][inner]
    gx, gy = m['gx'][inner], m['gy'][inner]
    hue = hv[:, 0] / 360.0 * 2.0 * np.pi
    grey = px.mean(axis=1)
    mag = np.hypot(gx, gy) + 1e-6
    ang = 2.0 * np.arctan2(gy, gx)                                   # orientation, doubled angle
    coherence = np.hypot((mag * np.cos(ang)).sum(), (mag * np.sin(ang)).sum()) / mag.sum()
    return np.concatenate([
        px.mean(0), px.std(0), lap.mean(0), lap.std(0), lap2.mean(0), speckle.mean(0),
        [hv[:, 1].mean(), hv[:, 2].mean(), (hv[:, 1] * np.cos(hue)).mean(),
         (hv[:, 1] * np.sin(hue)).mean(), hv[:, 1].std(), *np.percentile(grey, (10, 50, 90)),
         mag.mean(), mag.std(), coherence, (mag > 0.3).mean(), np.log(mask.sum())]],
    ).astype(np.float32)


def sound_features(window: np.ndarray, cfg: LookConfig) -> np.ndarray:
    """Mono float32 samples of [onset - pre, onset + post) at cfg.sample_rate -> log-mel
    (n_mels, frames) float32: the detector's ``audio_input`` on the look match's finer grid."""
    from .detector import audio_input
    return audio_input(window, cfg)


# --- the match -----------------------------------------------------------------------------------
class LookMatch(nn.Module):
    """sound (B,A), looks (B,N,F) -> logits (B,N) = scale * cos(sound embedding, look embedding).
    Inputs are raw features; the training set's mean/std are buffers (so ONNX carries them)."""

    def __init__(self, cfg: LookConfig):
        super().__init__()
        self.cfg = cfg
        a, e = cfg.n_sound, cfg.embed
        self.sound = nn.Sequential(nn.Linear(a, cfg.hidden_sound), nn.ReLU(), nn.Dropout(0.2),
                                   nn.Linear(cfg.hidden_sound, e))
        self.look = nn.Sequential(nn.Linear(N_LOOK, cfg.hidden_look), nn.ReLU(),
                                  nn.Linear(cfg.hidden_look, e))
        for name, n in (('sound', a), ('look', N_LOOK)):
            self.register_buffer(f'{name}_mean', torch.zeros(n))
            self.register_buffer(f'{name}_std', torch.ones(n))

    def set_stats(self, sounds: np.ndarray, looks: np.ndarray) -> None:
        for name, x in (('sound', sounds), ('look', looks)):
            getattr(self, f'{name}_mean').copy_(torch.from_numpy(x.mean(0)))
            getattr(self, f'{name}_std').copy_(torch.from_numpy(x.std(0) + 1e-3))

    def embed_sound(self, sound: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.sound((sound - self.sound_mean) / self.sound_std), dim=-1)

    def embed_look(self, looks: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.look((looks - self.look_mean) / self.look_std), dim=-1)

    def forward(self, sound: torch.Tensor, looks: torch.Tensor) -> torch.Tensor:
        a = self.embed_sound(sound)                                      # (B, E)
        v = self.embed_look(looks)                                       # (B, N, E)
        return self.cfg.scale * torch.einsum('be,bne->bn', a, v)


def info_nce(net: LookMatch, sound: torch.Tensor, look: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-event InfoNCE over a batch of (sound (B,A), own touched look (B,F))."""
    a, v = net.embed_sound(sound), net.embed_look(look)
    sim = net.cfg.scale * a @ v.t()
    target = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target))


def pair_accuracy(net: LookMatch, sounds: np.ndarray, looks: np.ndarray) -> float:
    """Validation: looks (P,2,F) = [struck object, other object]; how often the struck wins."""
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(sounds), torch.from_numpy(looks))
    return float((logits.argmax(1) == 0).float().mean())


# --- bundle ----------------------------------------------------------------------------------------
class _Wrapper(nn.Module):
    def __init__(self, net: LookMatch):
        super().__init__()
        self.net = net

    def forward(self, sound, looks):                  # (1,A), (N,F) -> (N,)
        return self.net(sound, looks[None])[0]


def save_checkpoint(path: str | Path, net: LookMatch, **extra: Any) -> None:
    torch.save({'config': net.cfg.to_dict(), 'state_dict': net.state_dict(), **extra}, str(path))


def load_checkpoint(path: str | Path) -> tuple[LookMatch, dict]:
    ckpt = torch.load(str(path), map_location='cpu', weights_only=False)
    net = LookMatch(LookConfig.from_dict(ckpt['config']))
    net.load_state_dict(ckpt['state_dict'])
    return net.eval(), ckpt


def export_onnx(net: LookMatch, path: str | Path, **extra_meta: Any) -> Path:
    """Write a ``look_match`` bundle: ``path`` (.onnx) + .json + .pt. Returns the .onnx path."""
    from ..runtime import bundle_paths, save_metadata
    onnx_path, _ = bundle_paths(path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    cfg = net.cfg
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(_Wrapper(net).eval(), (torch.randn(1, cfg.n_sound), torch.randn(3, N_LOOK)),
                          str(onnx_path), input_names=['sound', 'looks'], output_names=['logits'],
                          dynamic_axes={'looks': {0: 'candidates'}, 'logits': {0: 'candidates'}},
                          opset_version=17, dynamo=False)
    save_metadata(onnx_path, 'look_match', inputs={'sound': [1, cfg.n_sound], 'looks': ['candidates', N_LOOK]},
                  outputs=['logits'], config=cfg.to_dict(),
                  sound_layout='log_mel(mono float32 [-1,1] at sample_rate, n_mels, n_fft, hop) of '
                               '[onset-pre, onset+post], flattened (n_mels x frames)',
                  looks_layout='look_features(frame resized to look_size, region mask) per candidate',
                  **extra_meta)
    save_checkpoint(onnx_path.with_suffix('.pt'), net)
    return onnx_path


def runner(net: LookMatch):
    """A LookMatch in memory as a bundle's ``run``: {sound (1,A), looks (N,F)} -> {logits (N,)}."""
    net = net.eval()

    @torch.no_grad()
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {'logits': net(torch.from_numpy(feeds['sound']),
                              torch.from_numpy(feeds['looks'])[None])[0].numpy()}

    return run


def torch_loader(pt_path: Path, meta: dict):
    """``runtime.load_bundle(..., backend='torch', torch_loader=torch_loader)``."""
    return runner(load_checkpoint(pt_path)[0])


# --- candidates: automatic segments scored by the slots and the look match ---------------------
def upsample(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Slot masks (K,S,S) -> (K,H,W) float32, bilinear."""
    return np.stack([cv2.resize(m.astype(np.float32), shape[::-1], interpolation=cv2.INTER_LINEAR)
                     for m in masks])


def segment_regions(segments: np.ndarray, rgb: np.ndarray | None = None, min_area: float = 0.004,
                    max_area: float = 0.8) -> list[dict[str, Any]]:
    """The frame-only half of the answer: the automatic object segments (uint8 (L,L), 0 = none,
    1..n = ``automask.object_segments``) of ``min_area``..``max_area`` of the frame, as
    [{slot: segment id, mask (L,L) bool, bbox}], each with its ``look`` statistics when ``rgb``
    (uint8 (L,L,3)) is given (segments without a look are dropped then). Needs no audio, so the
    node computes it while the event's audio window is still arriving."""
    maps = look_maps(rgb) if rgb is not None else None
    out = []
    for j in range(1, int(segments.max()) + 1):
        region = segments == j
        if not region.any() or not min_area <= region.mean() <= max_area:
            continue
        ys, xs = np.nonzero(region)
        r = {'slot': j, 'mask': region,
             'bbox': (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)}
        if maps is not None:
            r['look'] = look_features(maps, region)
            if r['look'] is None:
                continue
        out.append(r)
    return out


def segment_candidates(scores: np.ndarray, masks: np.ndarray, segments: np.ndarray | list,
                       max_area: float = 0.8) -> list[dict[str, Any]]:
    """The automatic object segments of a frame as candidate objects, scored by the detector.

    scores (K,), masks (K,S,S): a detector bundle's outputs (slot probabilities and slot masks
    summing to 1 over K; one channel = global_av's per-pixel map); segments: uint8 (L,L) (see
    ``segment_regions``) or the regions themselves. Segment j's score is the probability mass the
    slots put on its pixels: sum_k scores_k * mean over the segment of masks_k (masks resized to
    L); for a per-pixel map, the map's peak over the segment. Returns the regions with a
    ``score``, best first.
    """
    regions = segment_regions(segments, max_area=max_area, min_area=0.0) \
        if isinstance(segments, np.ndarray) else segments
    if not regions:
        return []
    up = upsample(masks, regions[0]['mask'].shape)                             # (K, L, L)
    out = []
    for r in regions:
        region = r['mask']
        score = float(up[0][region].max()) if len(scores) == 1 else \
            float(np.dot(scores, up[:, region].mean(axis=1)))
        out.append({**r, 'score': score})
    out.sort(key=lambda c: -c['score'])
    return out


def candidate_looks(rgb: np.ndarray, cands: list[dict]) -> tuple[list[dict], np.ndarray]:
    """The candidates that have a look (>= 3 pixels) and their looks (N, N_LOOK) float32 (taken
    from a candidate's ``look`` when ``segment_regions`` computed it already)."""
    kept, looks = [], []
    maps = None
    for c in cands:
        f = c.get('look')
        if f is None:
            maps = maps if maps is not None else look_maps(rgb)
            f = look_features(maps, c['mask'])
        if f is not None:
            kept.append(c)
            looks.append(f)
    return kept, np.stack(looks) if looks else np.zeros((0, N_LOOK), np.float32)


@dataclass
class ContactRule:
    """Let the sound decide between the objects at the fingertips.

    The slots say *where* a touch is likely; between two objects that both touch the fingertips
    their mass carries no information about which one sounded. The contact set is the candidates
    whose nearest pixel lies within ``radius_px`` (look-size pixels) of the projected contact
    point. With two or more in it, the probability the slots and the look match give the set as a
    whole stays, and is shared within it by the look match alone: softmax_C(``weight`` * l_j).
    When the set is not empty, the candidates outside it keep ``outside`` times their
    probability (a touch sounds where the fingers are), then all are renormalised. The numbers
    are chosen on validation and stored in the detector bundle's metadata (``look_match``:
    ``contact_radius_px``, ``contact_weight``, ``contact_outside``; no radius: no rule).
    """

    radius_px: float = 0.0
    weight: float = 1.0
    outside: float = 1.0      # factor on the probability of candidates outside a non-empty set

    @classmethod
    def from_meta(cls, ref: dict | None) -> 'ContactRule | None':
        """The rule a detector bundle's ``look_match`` metadata names; None when it names none."""
        r = float((ref or {}).get('contact_radius_px', 0.0))
        return cls(r, float(ref.get('contact_weight', 1.0)),
                   float(ref.get('contact_outside', 1.0))) if r > 0 else None

    def contact_set(self, cands: list[dict], uv: np.ndarray) -> np.ndarray:
        """Indices of the candidates within ``radius_px`` of ``uv`` (u, v) by their nearest pixel."""
        return np.array([i for i, c in enumerate(cands)
                         if nearest_pixel_distance(c['mask'], uv) <= self.radius_px], int)

    def apply(self, cands: list[dict], logits: np.ndarray, weight: float, uv: np.ndarray,
              looks: np.ndarray | None = None, memory=None, sound: np.ndarray | None = None,
              locate=None) -> list[dict]:
        """``rescore`` (slots + look match with ``weight``), then the sound shares the contact
        set's probability: by the object sound ``memory`` (``sound_memory.SoundMemory``, with the
        candidates' ``looks`` (N,F), the event's ``sound`` and, where ``locate`` (mask -> world
        point (3,)) places them, their places) when it remembers every object in the set, else
        by the look match. Each candidate gets ``contact`` (in the set), ``look``, ``decided_by``
        ('memory', 'look' or 'slots') and, in the set, ``where`` and ``at`` (the contact point,
        ``locate.contact``). Best first."""
        if not cands:
            return []
        p = _combined(cands, logits, weight)
        uv = np.asarray(uv, float)
        near = self.contact_set(cands, uv) if np.isfinite(uv).all() else np.zeros(0, int)
        how = 'slots'
        where = {int(i): locate(cands[i]['mask']) for i in near} if locate is not None else {}
        contact = getattr(locate, 'contact', None)
        if len(near) >= 2:
            places = np.stack([where[int(i)] for i in near]) if where else None
            q = memory.probabilities(looks[near], sound, places, contact) \
                if memory is not None and looks is not None and len(memory) else None
            how = 'look' if q is None else 'memory'
            if q is None:
                z = self.weight * np.asarray(logits, np.float64)[near]
                q = np.exp(z - z.max())
                q /= q.sum()
            p[near] = p[near].sum() * q
        inside = np.zeros(len(cands), bool)
        inside[near] = True
        if len(near) and self.outside != 1.0:        # a touch sounds at the fingertips
            p[~inside] *= self.outside
            p /= p.sum()
        cands = [{**c, 'contact': bool(k), 'decided_by': how,
                  **({'look': looks[i]} if looks is not None else {}),
                  **({'where': where[i], 'at': contact} if i in where else {})}
                 for i, (c, k) in enumerate(zip(cands, inside))]
        return _ranked(cands, p)


def nearest_pixel_distance(mask: np.ndarray, uv: np.ndarray) -> float:
    """Distance [px] from ``uv`` (u, v) to the centre of the nearest pixel of ``mask``; inf for an
    empty mask."""
    ys, xs = np.nonzero(mask)
    return float(np.sqrt(((xs + 0.5 - uv[0]) ** 2 + (ys + 0.5 - uv[1]) ** 2).min())) if len(xs) else np.inf


def _combined(cands: list[dict], logits: np.ndarray, weight: float) -> np.ndarray:
    """softmax_j(log p_j + weight * l_j) (E,) float64."""
    z = np.log(np.array([c['score'] for c in cands], np.float64) + 1e-6) + weight * np.asarray(logits, np.float64)
    p = np.exp(z - z.max())
    return p / p.sum()


def _ranked(cands: list[dict], p: np.ndarray) -> list[dict]:
    return sorted(({**c, 'score': float(q)} for c, q in zip(cands, p)), key=lambda c: -c['score'])


def rescore(cands: list[dict], logits: np.ndarray, weight: float) -> list[dict]:
    """Combine the detector's score p_j of each candidate with the look match's logit l_j:
    P(j made the sound) = softmax_j(log p_j + weight * l_j). Best first."""
    if not cands:
        return []
    return _ranked(cands, _combined(cands, logits, weight))


def sounding_candidates(scores: np.ndarray, masks: np.ndarray, segments: np.ndarray, rgb: np.ndarray,
                        sound: np.ndarray | None = None, look=None, weight: float = 0.0,
                        min_area: float = 0.004, max_area: float = 0.8,
                        regions: list | None = None, contact: ContactRule | None = None,
                        contact_uv: np.ndarray | None = None, memory=None,
                        locate=None) -> list[dict[str, Any]]:
    """The detector's answer for one event, as the node publishes it and the evaluation scores it.

    scores (K,), masks (K,S,S): the detector bundle's outputs; segments uint8 (L,L): the frame's
    automatic object segments; rgb uint8 (L,L,3): the frame at the look size; sound (A,): the
    event's ``sound_features`` flattened; look: the ``look_match`` bundle (None: slots alone);
    regions: ``segment_regions(segments, rgb, min_area, max_area)`` when already computed.
    Candidates = segments scored by the slots (``segment_candidates``), then, with a look match,
    ``rescore``d by how well each segment's look goes with the sound. Segments hold no table or
    finger pixels, so a large one is an object close to the camera (``max_area`` only drops a
    failed table model's "everything"); a frame without any segment falls back to the slots' own
    regions, bounded as ``evaluate detector`` bounds region candidates (at most 30 % of the frame,
    where a region can hold the table and both objects of a pair). Best first; masks and boxes at L.
    With a ``contact`` rule and the projected contact point ``contact_uv`` (L pixels), the sound
    decides among the candidates at the fingertips (``ContactRule.apply``), through the object
    sound ``memory`` where it remembers them (``locate``: mask -> world point, to place them).
    """
    from .detector import extract_candidates
    use_look = look is not None and sound is not None and bool(weight)
    if regions is None:
        regions = segment_regions(segments, rgb if use_look else None, min_area, max_area)
    cands = segment_candidates(scores, masks, regions)
    if not cands:
        return extract_candidates(scores, upsample(masks, segments.shape), min_area, SLOT_MAX_AREA)
    if not use_look:
        return cands
    cands, looks = candidate_looks(rgb, cands)
    if not cands:
        return []
    logits = look.run({'sound': np.asarray(sound, np.float32).reshape(1, -1), 'looks': looks})['logits']
    if contact is None or contact_uv is None:
        return rescore(cands, logits, weight)
    return contact.apply(cands, logits, weight, contact_uv, looks, memory, sound, locate)


def load_look_match(detector_bundle, backend: str = 'cpu', threads: int = 0, spin: bool = True):
    """The ``look_match`` bundle a detector bundle names in its metadata (``look_match``:
    {bundle: file name beside it, weight}), loaded, and its weight; (None, 0.0) without one."""
    from ..errors import ModelError
    from ..runtime import load_bundle
    ref = detector_bundle.meta.get('look_match')
    if not ref:
        return None, 0.0
    path = Path(detector_bundle.path).with_name(str(ref.get('bundle', '')))
    if not path.name or not path.with_suffix('.json').is_file():
        raise ModelError(f'the detector names a look match {path} that is not there; re-export it')
    bundle = load_bundle(path, 'look_match', backend=backend, threads=threads, torch_loader=torch_loader,
                         spin=spin)
    return bundle, float(ref.get('weight', 1.0))
