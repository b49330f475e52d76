"""Contact events: what a planner is told about a path (predicted) and what a recording holds
(heard), with the matching that compares the two.

A :class:`ContactEvent` is one audible contact of a planned path: when (s from the path start,
with a spread), how likely, how loud at the wrist microphone, impact or slide, on what material,
and where the planned TCP is then. :func:`heard_events` finds the contact events in recorded
audio with no labels (what a robot has): onsets, their peak levels, and whether each is an
impact or a slide; an onset inside a slide's sustained sound (a retrigger of the streaming onset
detector on a scrape's texture) is not an event of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hearing_hands_ros.audio import detect_onsets

KINDS = ('impact', 'slide')
#: Level of silence at the wrist microphone (the sound world's noise floor) [dBFS].
FLOOR_DB = -60.0


@dataclass
class ContactEvent:
    """One audible contact of a planned path."""

    time: float                            # [s] from the path's first stamp
    time_std: float                        # [s] spread of ``time``
    probability: float                     # P(this contact is audible)
    peak_db: float                         # peak level at the wrist microphone [dBFS]
    kind: str                              # 'impact' or 'slide'
    material: str                          # most likely material of what is touched
    material_probs: dict = field(default_factory=dict)      # material -> probability
    position: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))  # (3,) TCP [m]
    duration: float = 0.0                  # [s] how long a slide sounds (0 for impacts)


def p_contact(events: list[ContactEvent]) -> float:
    """P(at least one audible contact), the events taken as independent."""
    return float(1.0 - np.prod([1.0 - e.probability for e in events])) if events else 0.0


def expected_peak_db(events: list[ContactEvent], floor_db: float = FLOOR_DB) -> float:
    """Expected peak level of the path [dBFS]: the loudest events' levels weighted by the chance
    that each is the loudest one heard (silence = ``floor_db``)."""
    level, p_none = 0.0, 1.0
    for e in sorted(events, key=lambda e: -e.peak_db):
        level += p_none * e.probability * e.peak_db
        p_none *= 1.0 - e.probability
    return float(level + p_none * floor_db)


# --- heard events -----------------------------------------------------------------------------
@dataclass
class HeardEvent:
    """A contact heard in a recording."""

    time: float          # [s] onset from the recording's first sample
    peak_db: float       # [dBFS] peak of the 1 ms envelope in the ``level_s`` after the onset
    kind: str            # 'impact' or 'slide'
    duration: float      # [s] how long the sound stays up (slides), else 0


def _envelope_db(x: np.ndarray, sr: int, hop_s: float = 0.001) -> np.ndarray:
    """Peak magnitude per hop, in dBFS (1 ms hops)."""
    hop = max(1, int(round(hop_s * sr)))
    n = len(x) // hop
    if n == 0:
        return np.zeros(0)
    peak = np.abs(x[:n * hop]).reshape(n, hop).max(1)
    return 20.0 * np.log10(np.maximum(peak, 1e-6))


def _loudness_db(x: np.ndarray, sr: int, window_s: float = 0.01, hop_s: float = 0.001) -> np.ndarray:
    """RMS level over ``window_s`` at every hop, in dBFS (smooth enough for a slide's texture)."""
    hop = max(1, int(round(hop_s * sr)))
    n = len(x) // hop
    if n == 0:
        return np.zeros(0)
    power = (x[:n * hop].astype(np.float64) ** 2).reshape(n, hop).mean(1)
    k = max(1, int(round(window_s / hop_s)))
    smooth = np.convolve(power, np.ones(k) / k, mode='full')[k - 1:k - 1 + n]   # trailing window
    return 10.0 * np.log10(np.maximum(smooth, 1e-12))


def heard_events(audio: np.ndarray, sr: int, threshold_db: float = 12.0, level_s: float = 0.03,
                 slide_s: float = 0.12, sustain_db: float = 20.0,
                 sliding: Callable[[float, float], bool] | None = None) -> list[HeardEvent]:
    """The contact events in recorded audio (float, mono), with no labels.

    Onsets come from the package's streaming onset detector (``audio.detect_onsets``); an
    event's level is the peak of the 1 ms envelope in the ``level_s`` after its onset. An onset
    whose 10 ms RMS level stays within ``sustain_db`` of its first peak for at least ``slide_s``
    is a slide (friction keeps exciting the object; an impact rings down faster), lasting until
    the level falls below that; later onsets inside a slide are its texture, not events of their
    own. A sustained sound may also be an impact that rings (metal, glass): where the robot knows
    its motion, ``sliding(t0, t1)`` says whether the gripper moves along the surface over that
    time, and a sustained sound while it does not is an impact (later onsets in it count).
    """
    x = np.asarray(audio, np.float32)
    onsets = detect_onsets(x, sr, threshold_db=threshold_db)
    env = _envelope_db(x, sr)
    loud = _loudness_db(x, sr)
    out: list[HeardEvent] = []
    slide_end = -np.inf
    for t in onsets:
        if t < slide_end:
            continue                                  # a retrigger inside a slide
        k = int(t * 1000)
        head = env[k:k + max(1, int(level_s * 1000))]
        if not len(head):
            continue
        peak = float(head.max())
        k_peak = k + int(loud[k:k + len(head)].argmax())
        below = np.nonzero(loud[k_peak:] < loud[k_peak] - sustain_db)[0]
        sustain = (below[0] if len(below) else len(loud) - k_peak) / 1000.0
        kind = 'slide' if sustain >= slide_s else 'impact'
        if kind == 'slide' and sliding is not None and not sliding(float(t), float(t) + sustain):
            kind = 'impact'                           # it rings; the gripper did not slide
        duration = sustain if kind == 'slide' else 0.0
        if kind == 'slide':
            slide_end = t + (k_peak - k) / 1000.0 + sustain
        out.append(HeardEvent(float(t), peak, kind, float(duration)))
    return out


# --- matching ---------------------------------------------------------------------------------
def match_times(pred: np.ndarray, true: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of predicted to true times within ``tol`` [s], nearest pairs
    first; returns (pred index, true index) pairs."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    if not len(pred) or not len(true):
        return []
    d = np.abs(pred[:, None] - true[None, :])
    pairs, used_p, used_t = [], set(), set()
    for i, j in zip(*np.unravel_index(np.argsort(d, axis=None), d.shape)):
        if d[i, j] > tol:
            break
        if i in used_p or j in used_t:
            continue
        pairs.append((int(i), int(j)))
        used_p.add(i)
        used_t.add(j)
    return pairs
