"""Training targets of the contact-event model, from the predictor's path windows.

By default the targets come from the recording itself, as a robot has them without labels: the
contact events heard in each window's audio (``events.heard_events``: onsets, peak levels,
impact or slide, no retriggers inside a scrape); a sustained sound is a slide only while the
planned TCP moves along the surface (``SLIDE_SPEED``), else an impact that
rings. ``source='truth'`` takes the simulator's
ground-truth contacts instead, where a bag has them (levels still from the audio). The material
target, the window's target object's material, exists only where the bag is labelled.

A window ends where the episode's next planned path starts, if that comes before its tail is
over: the next path's contacts are that path's to predict (an approach window's tail often holds
the first strike of the contact motion after it).

Per window (T frames at 100 frames/s)::

    inputs    (T, D) float32          ``models.events.model_inputs`` (intended contact dropped)
    onset     (T,) float32            1 at the frame of each impact onset, a Gaussian of
                                      ``ONSET_SIGMA`` frames around it (the onset falls between
                                      frames; the model's peak lands on the nearest)
    slide     (T,) float32            1 while a slide sounds
    level     (T,) float32            peak dBFS of the contact starting at this frame, else NaN
    material  int                     index in ``models.events.MATERIALS`` or -1 (unknown)
    contact_z float                   planned TCP height at the first heard contact, NaN if none
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL, PredictorData
from hearing_hands_ros.events import HeardEvent, heard_events
from hearing_hands_ros.models import events as E

SOURCES = ('audio', 'truth')
ONSET_SIGMA = 1.0           # [frames] spread of an onset's target
#: Horizontal TCP speed above which a sustained sound is a slide, not a ringing impact [m/s].
SLIDE_SPEED = 0.01


def sliding(feats: np.ndarray, frame_rate: float):
    """``(t0, t1) -> bool``: does the planned TCP move horizontally over that time (features)?"""
    speed = np.linalg.norm(feats[:, 9:11], axis=1)

    def moves(t0: float, t1: float) -> bool:
        a = int(t0 * frame_rate)
        b = max(a + 1, int(np.ceil(t1 * frame_rate)))
        return bool(len(speed[a:b]) and speed[a:b].mean() > SLIDE_SPEED)
    return moves


@dataclass
class EventData:
    """Stacked event targets of W windows (see the module docstring)."""

    inputs: np.ndarray       # (W, T, D) float32 (``models.events.n_inputs``), no intended contact
    onset: np.ndarray        # (W, T) float32
    slide: np.ndarray        # (W, T) float32
    level: np.ndarray        # (W, T) float32, NaN where no contact starts
    material: np.ndarray     # (W,) int64, -1 unknown
    contact_z: np.ndarray    # (W,) float32, NaN without a heard contact
    valid: np.ndarray        # (W,) int64 frames of the window, up to the next path's start
    heard: list              # per window: list[HeardEvent] (the targets' events)
    meta: list

    def __len__(self) -> int:
        return len(self.valid)


def truth_events(meta: dict, audio: np.ndarray, sr: int) -> list[HeardEvent]:
    """Ground-truth contacts of a window as events; levels measured in its audio."""
    out = []
    for c in meta.get('contacts', []):
        k = int(c['time'] * sr)
        head = audio[k:k + int(0.03 * sr)]
        peak = float(20 * np.log10(max(float(np.abs(head).max()) if len(head) else 0.0, 1e-6)))
        kind = 'slide' if c.get('kind') in ('slide', 'scrape') else 'impact'
        out.append(HeardEvent(float(c['time']), peak, kind, float(c.get('duration', 0.0))))
    return sorted(out, key=lambda e: e.time)


def window_targets(feats: np.ndarray, valid: int, events: list[HeardEvent], t_len: int,
                   frame_rate: float):
    """Per-frame onset, slide and level targets and the intended-contact height of one window."""
    onset = np.zeros(t_len, np.float32)
    slide = np.zeros(t_len, np.float32)
    level = np.full(t_len, np.nan, np.float32)
    contact_z = np.nan
    for e in events:
        k = int(round(e.time * frame_rate))
        if not 0 <= k < valid:
            continue
        if np.isnan(contact_z):
            contact_z = float(feats[k, 2])
        if e.kind == 'slide':
            j = min(valid, k + max(1, int(round(e.duration * frame_rate))))
            slide[k:j] = 1.0
        else:
            j = np.arange(max(0, k - 3), min(valid, k + 4))
            bump = np.exp(-0.5 * ((j - e.time * frame_rate) / ONSET_SIGMA) ** 2)
            onset[j] = np.maximum(onset[j], bump / bump.max())
        level[k] = e.peak_db if np.isnan(level[k]) else max(level[k], e.peak_db)
    return onset, slide, level, contact_z


def window_ends(data: PredictorData, frame_rate: float) -> np.ndarray:
    """Frames of each window up to the start of its episode's next path (at most ``valid``)."""
    ends = data.valid.astype(np.int64).copy()
    by_episode: dict = {}
    for i, m in enumerate(data.meta):
        by_episode.setdefault(m.get('bag', m['episode']), []).append(i)
    for idx in by_episode.values():
        idx = sorted(idx, key=lambda i: data.meta[i]['start'])
        for a, b in zip(idx, idx[1:]):
            gap = int(np.floor((data.meta[b]['start'] - data.meta[a]['start']) * frame_rate))
            ends[a] = max(1, min(ends[a], gap))
    return ends


def build(data: PredictorData, cfg: E.EventConfig, source: str = 'audio',
          sample_rate: int = 16000) -> EventData:
    """Event targets of every window of ``data`` (module docstring)."""
    if source not in SOURCES:
        raise ValueError(f'event targets come from {" or ".join(SOURCES)}, not {source!r}')
    valid = window_ends(data, cfg.frame_rate)
    w, t_len = len(data), data.traj.shape[1]
    inputs = np.zeros((w, t_len, E.n_inputs(cfg)), np.float32)
    onset, slide = np.zeros((w, t_len), np.float32), np.zeros((w, t_len), np.float32)
    level = np.full((w, t_len), np.nan, np.float32)
    material = np.full(w, -1, np.int64)
    contact_z = np.full(w, np.nan, np.float32)
    heard = []
    for i in range(w):
        n = int(valid[i])
        feats = data.traj[i]
        inputs[i] = E.model_inputs(feats, int(data.valid[i]), data.looks[i], None, cfg)
        audio = data.audio_float(i)
        ev = heard_events(audio, sample_rate, sliding=sliding(feats, cfg.frame_rate)) \
            if source == 'audio' else \
            truth_events(data.meta[i], audio, sample_rate)
        ev = [e for e in ev if e.time * cfg.frame_rate < n]
        heard.append(ev)
        onset[i], slide[i], level[i], contact_z[i] = window_targets(feats, n, ev, t_len,
                                                                    cfg.frame_rate)
        m = data.meta[i].get('material', NO_MATERIAL)
        material[i] = E.MATERIALS.index(m) if m in E.MATERIALS else -1
    return EventData(inputs, onset, slide, level, material, contact_z, valid, heard,
                     list(data.meta))
