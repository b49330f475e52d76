"""The second judge of generated audio: one contact, ring-out features.

A per-contact sound classifier (``eval/sound_classifier.py``: ring-out features, level-invariant),
fitted on the training windows' *recorded* contacts, names the material of the sound at a
window's target contact: its first ground-truth contact, moved to the nearest generated onset
within 100 ms. ``evaluate predictor`` reports it as ``material_accuracy_contact``.
"""
from __future__ import annotations

import numpy as np

from hearing_hands_ros.audio import detect_onsets
from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
from hearing_hands_ros.eval.sound_classifier import SoundClassifier, clip_features


def target_contact_time(meta: dict) -> float | None:
    """Time [s from the window start] of the first ground-truth contact of the window's target
    material, or None."""
    for c in meta['contacts']:
        if meta['material'] in c.get('materials', []):
            return float(c['time'])
    return None


def fit_contact_judge(train, sr: int):
    """Per-contact material classifier fitted on the training windows' *recorded* audio (one
    clip per window: its target's first contact)."""
    X, y = [], []
    for i, m in enumerate(train.meta):
        t = target_contact_time(m)
        if m['material'] == NO_MATERIAL or t is None:
            continue
        X.append(clip_features(train.audio_float(i), sr, t))
        y.append(m['material'])
    if len(set(y)) < 2:
        return None
    return SoundClassifier().fit(np.stack(X), np.asarray(y))


def judge_contacts(clf, clips: list[np.ndarray], meta: list[dict], sr: int,
                   search_s: float = 0.1) -> list[str | None]:
    """Material named by ``clf`` for each clip at its target contact (None: no target contact)."""
    out = []
    for x, m in zip(clips, meta):
        t = target_contact_time(m)
        if t is None or clf is None:
            out.append(None)
            continue
        on = detect_onsets(x, sr)
        near = on[np.abs(on - t) <= search_s]
        if len(near):
            t = float(near[np.argmin(np.abs(near - t))])
        out.append(str(clf.predict_audio(x, sr, t)[0]))
    return out


def contact_accuracy(named: list[str | None], meta: list[dict]) -> float | None:
    ok = [n == m['material'] for n, m in zip(named, meta) if n is not None]
    return float(np.mean(ok)) if ok else None
