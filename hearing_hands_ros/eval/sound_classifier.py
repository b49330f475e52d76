"""A small sound classifier trained only on real (here: simulated ground-truth) contact sounds.

Two uses: checking that materials are separable from the audio alone (``eval/materials.py``), and
judging generated audio by the material / action of real sounds it most resembles.

    X, y, meta = clips_from_episode(read_episode(bag), kind='material')
    clf = SoundClassifier().fit(X, y)
    clf.save('material_classifier.npz')
    SoundClassifier.load('material_classifier.npz').predict_audio(audio, 16000, t=1.73)

Features (:func:`clip_features`, 27 numbers) describe a 0.4 s window starting ``PRE`` (20 ms)
before a contact. The main material cue is how fast the sound rings out, per frequency: early
decay rates of the strongest spectral peaks and their loss per cycle (the simulator's modes decay
as alpha + pi f eta, materials.py), decay rates of 8 mel bands and of the envelope, plus spectral
centroid / bandwidth / flatness, attack, time within 20 dB of the peak and SNR over the sound just
before the contact. Every level is relative to the clip's own peak, so a sound played at half the
volume has the same features: the material is never guessed from loudness. Options: the coarse
spectral shape (``spectrum=True``; it depends more on an object's shape and size than on its
material and lowers held-out material accuracy, but helps for actions) and the absolute peak
level (``include_level=True``).

The classifier is numpy/scipy only: standardization + L2-regularized multinomial logistic
regression fitted with L-BFGS (``method='logreg'``), or nearest class mean in standardized space
(``method='ncm'``, a baseline). It saves to a small ``.npz`` or ``.json`` file.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal
from scipy.optimize import minimize

from ..audio import mel_filterbank, stft_mag

__all__ = ['clip_features', 'feature_names', 'clips_from_episode', 'contact_label',
           'SoundClassifier', 'WINDOW', 'PRE']

WINDOW = 0.4        # [s] clip length
PRE = 0.02          # [s] of the clip before the contact time
N_BANDS = 8         # mel bands (30 Hz .. FMAX) with their own decay rate (and level)
N_PEAKS = 8         # strongest spectral peaks whose ring is measured
FMAX = 8000.0       # [Hz] features ignore content above (comparable across sample rates)
BLOCK = 0.01        # [s] envelope block / STFT hop
FLOOR_DB = 80.0     # dB below the clip peak where every level is clipped (keeps gain invariance)
LATE = 0.12         # [s after the contact] start of the "late" ring (spectrum option)
FAST = 8000.0       # [dB/s] decay given to a sound without any ringing peak
#: [dB] decays are fitted over the first DECAY_RANGE dB after the peak (an "early decay time"
#: as in room acoustics): the object's own modes dominate there, while the later tail is often
#: the gripper's or the table's ring. Chosen by episode-grouped cross-validation on training
#: episodes (10 dB: 0.56, 20 dB: 0.53, to the noise floor: 0.49 material accuracy).
DECAY_RANGE = 10.0
SKIP_LABELS = ('gripper', 'table')


# ------------------------------------------------------------------------------------ features
def _clip(audio: np.ndarray, sr: int, t: float, window: float, pre: float) -> np.ndarray:
    """Samples [t - pre, t - pre + window) of `audio` (t in seconds from audio[0]); zero-padded
    outside the signal."""
    n = int(round(window * sr))
    i0 = int(round((t - pre) * sr))
    out = np.zeros(n, np.float64)
    lo, hi = max(i0, 0), min(i0 + n, len(audio))
    if hi > lo:
        out[lo - i0:hi - i0] = audio[lo:hi]
    return out


def _db(p, ref: float) -> np.ndarray:
    """10 log10(p / ref), clipped to [-FLOOR_DB, +inf): gain-invariant given a gain-scaled ref."""
    return np.maximum(10 * np.log10(np.maximum(p, 1e-30) / ref), -FLOOR_DB)


def _decay_rate(env_db: np.ndarray, floor_db: float, dt: float,
                range_db: float = DECAY_RANGE) -> float:
    """Early decay [dB/s, >= 0] of a dB envelope after its peak: least-squares slope over its
    first `range_db` of decay, stopping 6 dB above `floor_db` (so a quiet sound reaching the
    noise floor keeps its true slope); for a click shorter than 3 frames, its drop over that
    span."""
    tail = env_db[int(np.argmax(env_db)):]
    below = np.flatnonzero(tail <= max(floor_db + 6.0, tail[0] - range_db))
    n = below[0] if len(below) else len(tail)
    if n < 3:
        j = min(max(n, 1), len(tail) - 1)
        return float(max(tail[0] - tail[j], 0.0) / (max(j, 1) * dt))
    return float(max(-np.polyfit(np.arange(n) * dt, tail[:n], 1)[0], 0.0))


def _ldecay(d) -> np.ndarray:
    """Compressed decay rate: log10(1 + d / 10 dB/s)."""
    return np.log10(1.0 + np.asarray(d, float) / 10.0)


def feature_names(include_level: bool = False, spectrum: bool = False) -> list[str]:
    """Names of the entries of :func:`clip_features`, in order."""
    names = ['decay', 'centroid', 'bandwidth', 'flatness', 'snr', 'length_20db', 'attack']
    names += [f'peak_{w}_{q}' for w in ('decay', 'loss') for q in ('min', 'median', 'max')]
    names += ['peak_decay_weighted', 'peak_loss_weighted', 'peak_freq_median',
              'top_decay', 'top_loss', 'top_freq']
    names += [f'band_decay_{i}' for i in range(N_BANDS)]
    if spectrum:
        names += [f'band_{w}_{i}' for w in ('max', 'late') for i in range(N_BANDS)]
    return names + (['level_dbfs'] if include_level else [])


def clip_features(audio: np.ndarray, sr: int, t: float = PRE, window: float = WINDOW,
                  pre: float = PRE, include_level: bool = False,
                  spectrum: bool = False) -> np.ndarray:
    """Gain-invariant descriptors (D,) float32 of the sound starting at `t` [s from audio[0]].

    The clip is [t - pre, t - pre + window); every level is in dB relative to the clip's own
    peak; every decay is an early decay (first DECAY_RANGE dB after the peak, and 6 dB above
    the level just before `t`).

    * envelope (10 ms blocks): broadband decay rate after the peak, time within 20 dB of the
      peak, attack (onset to peak), SNR of the peak over the pre-contact level;
    * spectrum of the first 100 ms (64 ms Hann, 10 ms hop, up to 8 kHz): centroid and
      bandwidth (log2 kHz), flatness (log10);
    * ring of the strongest (<= N_PEAKS) spectral peaks, the main material cue: their decay
      rates d [dB/s] and loss per cycle d / (8.686 pi f) (= eta + alpha / (pi f) for a mode
      decaying as alpha + pi f eta, materials.py): min/median/max, level-weighted mean, median
      frequency, and the same of the strongest peak;
    * decay rate of N_BANDS mel bands;
    * `spectrum`: the coarse spectral shape too (per band max and late mean level);
    * `include_level`: the absolute peak level [dBFS / 10] (not gain-invariant).

    Decay rates are compressed with log10(1 + d / 10). See :func:`feature_names`.
    """
    x = _clip(np.asarray(audio, np.float64).reshape(-1), sr, t, window, pre)
    hop = max(1, int(round(BLOCK * sr)))
    n_on = int(round(pre / BLOCK))                       # first frame/block at the contact
    onset = int(round(pre * sr))
    # envelope in 10 ms blocks
    nb = len(x) // hop
    ms = (x[:nb * hop].reshape(nb, hop) ** 2).mean(1)
    peak = float(ms.max()) + 1e-30
    env = _db(ms, peak)
    floor = float(_db(ms[:n_on].mean(), peak)) if n_on else -FLOOR_DB
    after = env[n_on:]
    # spectrogram (40 Hz .. FMAX); the pre-contact spectrum from the samples before `t` alone
    # (Hann window, scaled to the STFT's level for broadband sound)
    n_fft = int(2 ** np.round(np.log2(0.064 * sr)))
    fmax = min(FMAX, sr / 2)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    band = (freqs <= fmax) & (freqs >= 40.0)
    power = (stft_mag(x.astype(np.float32), n_fft, hop).astype(np.float64) ** 2)[band]  # (F, T)
    freqs = freqs[band]
    ref = float(power.sum(0).max()) + 1e-30
    pre_pow = np.zeros(len(freqs))
    if onset >= 16:
        w = signal.get_window('hann', onset)
        pre_pow = np.abs(np.fft.rfft(x[:onset] * w, n_fft)[band]) ** 2 * (3 * n_fft / 8 / np.sum(w ** 2))
    spec_db, pre_db = _db(power, ref), _db(pre_pow, ref)
    # spectral shape of the first 100 ms
    sp = power[:, n_on:n_on + 10].mean(1) + 1e-30
    p = sp / sp.sum()
    fk = freqs / 1000.0
    centroid = float((p * fk).sum())
    bandwidth = float(np.sqrt((p * (fk - centroid) ** 2).sum()))
    flatness = float(np.mean(np.log10(sp / sp.max() + 1e-12)))
    envelope = [_ldecay(_decay_rate(after, floor, BLOCK)), np.log2(centroid + 0.05),
                np.log2(bandwidth + 0.05), flatness, -floor / 10.0,
                np.sum(after > -20.0) * BLOCK * 10, np.argmax(after) * BLOCK * 10]
    # ring of the strongest spectral peaks of the first 50 ms
    early = spec_db[:, n_on:n_on + 5].max(1)
    is_peak = np.r_[False, (early[1:-1] > early[:-2]) & (early[1:-1] >= early[2:]), False]
    cand = np.flatnonzero(is_peak & (early > pre_db + 15.0))
    cand = cand[np.argsort(early[cand])[::-1][:N_PEAKS]]
    d = np.array([_decay_rate(spec_db[k, n_on:], pre_db[k], BLOCK) for k in cand])
    ok = d > 1.0
    d, f, lv = d[ok], freqs[cand][ok], early[cand][ok]
    if len(d) == 0:                                      # no ringing peak: a fast click/thud
        d, f, lv = np.array([FAST]), np.array([1000.0]), np.array([0.0])
    ld, ll = _ldecay(d), np.log10(d / (8.686 * np.pi * f))
    wt = 10 ** (lv / 10)
    wt /= wt.sum()
    ring = [ld.min(), np.median(ld), ld.max(), ll.min(), np.median(ll), ll.max(),
            (wt * ld).sum(), (wt * ll).sum(), np.log10(np.median(f) / 1000), ld[0], ll[0],
            np.log10(f[0] / 1000)]
    # mel bands
    fb = mel_filterbank(int(sr), n_fft, N_BANDS, 30.0, fmax)[:, band].astype(np.float64)
    mel = fb @ power
    mel_db, mel_pre = _db(mel, ref), _db(fb @ pre_pow, ref)
    bands = [_ldecay(_decay_rate(mel_db[b, n_on:], mel_pre[b], BLOCK)) for b in range(N_BANDS)]
    feats = [envelope, ring, bands]
    if spectrum:
        late = n_on + int(round(LATE / BLOCK))
        feats += [mel_db[:, n_on:].max(1) / 10.0,
                  _db(mel[:, late:].mean(1), ref) / 10.0 if late < mel.shape[1]
                  else np.full(N_BANDS, -FLOOR_DB / 10.0)]
    if include_level:
        feats.append([np.log10(peak)])                   # peak block level [dBFS / 10]
    return np.concatenate([np.asarray(v, np.float64) for v in feats]).astype(np.float32)


# ------------------------------------------------------------------------------------- labels
def contact_label(contact: dict, truth: dict, kind: str = 'material') -> str | None:
    """Label of a ground-truth contact event, or None when it has none.

    material: the material of the object involved that is neither the gripper nor the table
    (object-object contacts count only when both objects share their material).
    action: the type of the action during which it happened."""
    if kind == 'material':
        mats = {m for o, m in zip(contact['objects'], contact['materials'])
                if o is not None and o >= 1 and m not in SKIP_LABELS}
        return mats.pop() if len(mats) == 1 else None
    if kind == 'action':
        a = contact.get('action')
        actions = truth.get('actions', [])
        if a is None or not 0 <= int(a) < len(actions):
            return None
        return str(actions[int(a)]['type'])
    raise ValueError(f"kind must be 'material' or 'action', got {kind!r}")


def clips_from_episode(episode, kind: str = 'material', window: float = WINDOW, pre: float = PRE,
                       guard: float = 0.1, min_snr_db: float = 10.0,
                       include_level: bool = False,
                       spectrum: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """One clip per clean ground-truth contact event of an episode -> (X (n, D), y (n,), meta).

    `episode`: anything with ``.audio`` (float mono), ``.audio_start_ns``, ``.sample_rate`` and
    ``.truth`` (e.g. :func:`hearing_hands_ros.data.bags.read_episode`'s Episode). A contact is
    kept when it has a label (:func:`contact_label`), its window lies inside the audio, no
    event with another label (or none: table/gripper-only contacts) is sounding from `guard` s
    before it to the end of its window (scrapes count over their whole duration), it is the
    first of the same-label events in that span (later ones are the same sound: 'merged'), and
    its peak is `min_snr_db` above the level just before it ('inaudible' otherwise).

    meta: ``times`` (n,) contact times [s], ``index`` (n,) contact indices, ``kinds`` (n,)
    ('impact' | 'scrape') and ``counts`` (events, used, no_label, overlapped, merged, outside,
    inaudible; zero counts left out)."""
    truth = episode.truth or {}
    contacts = truth.get('contacts', [])
    sr = int(episode.sample_rate)
    audio = np.asarray(episode.audio, np.float32).reshape(-1)
    start_ns = int(truth.get('start_time_ns', 0))
    a0_ns = start_ns if episode.audio_start_ns is None else int(episode.audio_start_ns)
    offset = (start_ns - a0_ns) / 1e9                     # episode time -> seconds from audio[0]
    labels = [contact_label(c, truth, kind) for c in contacts]
    t = np.array([c['time'] for c in contacts], float)
    t_end = t + np.array([c.get('duration', 0.0) or 0.0 for c in contacts], float)
    counts = Counter(events=len(contacts))
    X, y, times, index, kinds = [], [], [], [], []
    for i, c in enumerate(contacts):
        if labels[i] is None:
            counts['no_label'] += 1
            continue
        lo, hi = t[i] - guard, t[i] - pre + window
        near = [j for j in range(len(contacts)) if j != i and t[j] < hi and t_end[j] >= lo]
        if any(labels[j] != labels[i] for j in near):
            counts['overlapped'] += 1
            continue
        if any(t[j] < t[i] or (t[j] == t[i] and j < i) for j in near):
            counts['merged'] += 1
            continue
        ta = t[i] + offset
        if ta - pre < 0 or (ta - pre + window) * sr > len(audio):
            counts['outside'] += 1
            continue
        f = clip_features(audio, sr, ta, window, pre, include_level, spectrum)
        if f[feature_names().index('snr')] * 10.0 < min_snr_db:
            counts['inaudible'] += 1
            continue
        X.append(f)
        y.append(labels[i])
        times.append(float(c['time']))
        index.append(i)
        kinds.append(str(c.get('kind', '')))
    counts['used'] = len(y)
    D = len(feature_names(include_level, spectrum))
    return (np.asarray(X, np.float32).reshape(-1, D), np.asarray(y, dtype=str),
            dict(times=np.asarray(times), index=np.asarray(index, int),
                 kinds=np.asarray(kinds, dtype=str), counts=dict(counts)))


# --------------------------------------------------------------------------------- classifier
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@dataclass
class SoundClassifier:
    """Standardize + multinomial logistic regression ('logreg') or nearest class mean ('ncm').

    `l2`: weight of 0.5 ||W||^2 per sample (logreg); `balanced`: classes weighted by inverse
    frequency so rare materials count as much as common ones; the clip settings (window, pre,
    include_level, spectrum) travel with the saved model so :meth:`predict_audio` uses the
    same ones."""

    method: str = 'logreg'
    l2: float = 1e-2
    max_iter: int = 500
    balanced: bool = True
    window: float = WINDOW
    pre: float = PRE
    include_level: bool = False
    spectrum: bool = False
    classes_: np.ndarray | None = None
    mean_: np.ndarray | None = None
    std_: np.ndarray | None = None
    W_: np.ndarray | None = None          # (D, K) logreg weights, or (K, D) class means for ncm
    b_: np.ndarray | None = None          # (K,)

    def _z(self, X) -> np.ndarray:
        return (np.asarray(X, np.float64) - self.mean_) / self.std_

    def fit(self, X: np.ndarray, y) -> 'SoundClassifier':
        """Fit on features X (n, D) and string labels y (n,)."""
        X = np.asarray(X, np.float64)
        y = np.asarray(y, dtype=str)
        if len(X) == 0:
            raise ValueError('no training clips')
        self.classes_, yi = np.unique(y, return_inverse=True)
        self.mean_ = X.mean(0)
        self.std_ = X.std(0) + 1e-6
        Z = self._z(X)
        n, D = Z.shape
        K = len(self.classes_)
        freq = np.bincount(yi, minlength=K).astype(float)
        w = (n / (K * freq))[yi] if self.balanced else np.ones(n)
        if self.method == 'ncm':
            self.W_ = np.stack([Z[yi == k].mean(0) for k in range(K)])
            self.b_ = np.zeros(K)
            return self
        if self.method != 'logreg':
            raise ValueError(f"method must be 'logreg' or 'ncm', got {self.method!r}")
        Y = np.eye(K)[yi]

        def loss(theta):
            W, b = theta[:D * K].reshape(D, K), theta[D * K:]
            P = _softmax(Z @ W + b)
            ll = -np.sum(w * np.log(np.sum(P * Y, 1) + 1e-300)) / n
            G = (P - Y) * w[:, None] / n
            return (ll + 0.5 * self.l2 * np.sum(W ** 2),
                    np.r_[(Z.T @ G + self.l2 * W).ravel(), G.sum(0)])

        res = minimize(loss, np.zeros(D * K + K), jac=True, method='L-BFGS-B',
                       options=dict(maxiter=self.max_iter))
        self.W_, self.b_ = res.x[:D * K].reshape(D, K), res.x[D * K:]
        return self

    def decision_function(self, X) -> np.ndarray:
        """Class scores (n, K): logits, or minus half the squared distance to the class means."""
        Z = np.atleast_2d(self._z(X))
        if self.method == 'ncm':
            return -0.5 * ((Z[:, None, :] - self.W_[None]) ** 2).sum(-1)
        return Z @ self.W_ + self.b_

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, K) in the order of ``classes_``."""
        return _softmax(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        """Most likely labels (n,)."""
        return self.classes_[np.argmax(self.decision_function(X), 1)]

    def features(self, audio: np.ndarray, sr: int, t) -> np.ndarray:
        """Features (n, D) of the sounds at times `t` [s from audio[0]] (scalar or sequence)."""
        return np.stack([clip_features(audio, sr, float(ti), self.window, self.pre,
                                       self.include_level, self.spectrum)
                         for ti in np.atleast_1d(t)])

    def predict_audio(self, audio: np.ndarray, sr: int, t=PRE) -> np.ndarray:
        """Labels (n,) of the sounds starting at `t` [s from audio[0]] (default: a clip whose
        sound starts `pre` into it, e.g. a generated 0.4 s clip)."""
        return self.predict(self.features(audio, sr, t))

    # ---- persistence
    _ARRAYS = ('mean_', 'std_', 'W_', 'b_')
    _PARAMS = ('method', 'l2', 'max_iter', 'balanced', 'window', 'pre', 'include_level',
               'spectrum')

    def to_dict(self) -> dict:
        """Plain-JSON description of the fitted model."""
        d = {k: getattr(self, k) for k in self._PARAMS}
        d.update({k: np.asarray(getattr(self, k)).tolist() for k in self._ARRAYS})
        d['classes_'] = [str(c) for c in self.classes_]
        d['feature_names'] = feature_names(self.include_level, self.spectrum)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'SoundClassifier':
        clf = cls(**{k: d[k] for k in cls._PARAMS if k in d})
        for k in cls._ARRAYS:
            setattr(clf, k, np.asarray(d[k], np.float64))
        clf.classes_ = np.asarray(d['classes_'], dtype=str)
        return clf

    def save(self, path) -> Path:
        """Write the model as .json (text) or .npz (anything else)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = self.to_dict()
        if path.suffix == '.json':
            path.write_text(json.dumps(d))
        else:
            with open(path, 'wb') as f:
                np.savez(f, **{k: np.asarray(getattr(self, k)) for k in self._ARRAYS},
                         classes_=self.classes_.astype(str),
                         params=json.dumps({k: d[k] for k in self._PARAMS}))
        return path

    @classmethod
    def load(cls, path) -> 'SoundClassifier':
        """Read a model written by :meth:`save`."""
        path = Path(path)
        if path.suffix == '.json':
            return cls.from_dict(json.loads(path.read_text()))
        with np.load(path, allow_pickle=False) as z:
            d = json.loads(str(z['params']))
            d.update({k: z[k] for k in (*cls._ARRAYS, 'classes_')})
        return cls.from_dict(d)
