"""The predictor evaluation's metrics: a generated clip against the recording of the same window.

Per window over its valid frames, then averaged over windows (``aggregate``):

``stft_distance``      mean squared difference of magnitude STFTs (n_fft 512, hop 128), as the
                       "STFT distance" of RegNet / Hearing Hands / 2.5D-sound (which use the
                       complex STFT; magnitudes here, since phase of a generated sound is arbitrary)
``envelope_distance``  RMS difference of the Hilbert envelopes (|analytic signal|) of the two
                       waveforms, each smoothed over 5 ms (ENV of Morgado et al. 2018)
``onset_f1``           F1 of onsets (``audio.detect_onsets``) of the generated audio against the
                       ground-truth contacts (gripper contacts and impacts), +-25 ms, one-to-one
``onset_error_ms``     median |time error| of matched onsets
``material_accuracy``  the judge (``models.judge``, a classifier trained only on real recorded
                       audio) names the target object's material from the generated audio
``action_accuracy``    same for the action type
``loudness_error_db``  |peak 10 ms RMS level (dBFS) generated - real|
``network_evaluations``  network calls per clip

``material_accuracy_contact`` (the second judge) is in ``eval/contact_judge.py``. ``DEFINITIONS``
is the one-line form of each, written into the evaluation's JSON.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import hilbert

from hearing_hands_ros.audio import detect_onsets, stft_mag
from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
from hearing_hands_ros.planner import peak_level_db

TOL_S = 0.025


def stft_distance(pred: np.ndarray, real: np.ndarray) -> float:
    n = min(len(pred), len(real))
    a, b = stft_mag(pred[:n], 512, 128), stft_mag(real[:n], 512, 128)
    return float(np.mean((a - b) ** 2))


def envelope(x: np.ndarray, sr: int = 16000, smooth_s: float = 0.005) -> np.ndarray:
    env = np.abs(hilbert(x.astype(np.float64)))
    k = max(1, int(smooth_s * sr))
    return np.convolve(env, np.ones(k) / k, mode='same')


def envelope_distance(pred: np.ndarray, real: np.ndarray, sr: int = 16000) -> float:
    n = min(len(pred), len(real))
    return float(np.sqrt(np.mean((envelope(pred[:n], sr) - envelope(real[:n], sr)) ** 2)))


def match_onsets(pred: np.ndarray, true: np.ndarray, tol: float = TOL_S):
    """Greedy one-to-one matching by time; returns (hits, errors [s])."""
    pred, true = np.sort(pred), np.sort(true)
    used = np.zeros(len(pred), bool)
    errs = []
    for t in true:
        if not len(pred):
            break
        d = np.abs(pred - t)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= tol:
            used[j] = True
            errs.append(pred[j] - t)
    return len(errs), np.asarray(errs)


def true_onsets(contacts: list[dict], merge_s: float = 0.02) -> np.ndarray:
    """Ground-truth sound onsets: contact events, merged when closer than ``merge_s``."""
    times = sorted(float(c['time']) for c in contacts)
    out = []
    for t in times:
        if not out or t - out[-1] > merge_s:
            out.append(t)
    return np.asarray(out)


def window_metrics(pred: np.ndarray, real: np.ndarray, contacts: list[dict], sr: int) -> dict:
    po = detect_onsets(pred, sr)
    to = true_onsets(contacts)
    hits, errs = match_onsets(po, to)
    return dict(stft_distance=stft_distance(pred, real), envelope_distance=envelope_distance(pred, real, sr),
                hits=hits, n_pred=len(po), n_true=len(to), errs=errs.tolist(),
                loudness_error_db=abs(peak_level_db(pred) - peak_level_db(real)))


def aggregate(rows: list[dict], judged: tuple[list, list], meta: list[dict], nfe: int) -> dict:
    hits = sum(r['hits'] for r in rows)
    n_pred, n_true = sum(r['n_pred'] for r in rows), sum(r['n_true'] for r in rows)
    prec = hits / n_pred if n_pred else (1.0 if not n_true else 0.0)
    rec = hits / n_true if n_true else 1.0
    errs = np.abs(np.concatenate([np.asarray(r['errs']) for r in rows])) if rows else np.zeros(0)
    mats, acts = judged
    mat_ok = [m == w['material'] for m, w in zip(mats, meta) if w['material'] != NO_MATERIAL]
    act_ok = [a == w['action'] for a, w in zip(acts, meta)]
    return dict(stft_distance=float(np.mean([r['stft_distance'] for r in rows])),
                envelope_distance=float(np.mean([r['envelope_distance'] for r in rows])),
                onset_f1=float(2 * prec * rec / (prec + rec)) if prec + rec else 0.0,
                onset_error_ms=float(np.median(errs) * 1e3) if len(errs) else None,
                material_accuracy=float(np.mean(mat_ok)) if mat_ok else None,
                action_accuracy=float(np.mean(act_ok)) if act_ok else None,
                loudness_error_db=float(np.mean([r['loudness_error_db'] for r in rows])),
                network_evaluations=nfe)


DEFINITIONS = {
    'stft_distance': 'mean squared difference of magnitude STFTs (n_fft 512, hop 128, Hann)',
    'envelope_distance': 'RMS difference of 5 ms-smoothed Hilbert envelopes',
    'onset_f1': 'F1 of detected onsets vs ground-truth contacts (merged within 20 ms), +-25 ms',
    'onset_error_ms': 'median |error| of matched onsets [ms]',
    'material_accuracy': 'judge (trained on real audio only) names the target material',
    'material_accuracy_contact': 'per-contact ring-out classifier (fitted on recorded training '
                                 'contacts only) names the target material at its first contact',
    'action_accuracy': 'judge names the action type',
    'loudness_error_db': '|peak 10 ms RMS level generated - recorded| [dB]',
    'network_evaluations': 'network calls per clip (CFG counts 2 per step; a model with a '
                           'regression prior counts it at every step)',
}
