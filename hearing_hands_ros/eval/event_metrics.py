"""Event metrics: what a planner is told about a path against what the recording of it holds.

A method is scored on a list of windows, each ``(predicted, heard, material, episode)``: the
events it predicts for the window's path (:class:`~hearing_hands_ros.events.ContactEvent`), the
events heard in the window's recording (:func:`~hearing_hands_ros.events.heard_events`), the
material of the object the window's action strikes (None where there is none or it is unknown)
and the episode the window comes from (an episode is one trial: the bootstrap resamples them).

Matching (``TOL_S`` = 25 ms): a predicted *impact* matches a heard impact whose onset is within
the tolerance, one to one, nearest pairs first (:func:`~hearing_hands_ros.events.match_times`); a
predicted *slide* matches a heard slide when its time falls inside the slide's interval
``[time - tol, time + duration + tol]``, one predicted slide per heard slide. An impact is not
matched to a slide or the other way round.

=========================  ==================================================================
``contact_auc``            AUC of ``p_contact`` separating windows with a heard event from
                           windows with none (None while one of the two is absent)
``event_f1``               F1 of the predicted events with probability >= ``threshold``
``event_ap``               average precision of all predicted events ranked by probability
                           (all-point interpolated; matched in that order, best first)
``onset_error_ms``         median |time error| of matched impacts (a slide matches anywhere in
                           its interval, so its time error is not an onset error)
``first_onset_error_ms``   median over windows of |first predicted - first heard onset|
``loudness_spearman``      Spearman of ``expected_peak_db`` against the loudest heard event,
                           over windows with a heard event
``event_level_error_db``   median |peak_db error| of matched events
``material_accuracy``      matched events whose predicted material is the struck one (windows
                           with a known material; None for a method that names no material)
``majority_material_rate`` share of the most common struck material over those same events
``audio_onset_f1``         onsets heard in a method's rendered audio against those heard in
                           the recording, one to one within the tolerance, of either kind
=========================  ==================================================================

On ``PredictorData``, :func:`windows_from_data` builds the windows, the heard events of each
limited to its own path (a window's tail hears the next path start). Every metric is pooled over
windows. :func:`summarize` scores each window once (:func:`score_window`) and reports all of them
with episode-bootstrap 95 % intervals.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import numpy as np
from scipy.stats import rankdata

from hearing_hands_ros.events import (ContactEvent, HeardEvent, expected_peak_db, heard_events, match_times,
                                      p_contact)
from hearing_hands_ros.trajectory import FEATURE_LAYOUT, FRAME_RATE

TOL_S = 0.025          # [s] event matching tolerance
THRESHOLD = 0.5        # predicted events at or above this probability count for F1
AFTER_PATH_S = 0.05    # [s] heard onsets this long after a path's end still count as its own
ACTIVE = FEATURE_LAYOUT.index('active')
#: Slack on every tolerance bound, so that a time exactly ``tol`` away is not lost to rounding.
_EPS = 1e-9


class Window(NamedTuple):
    """One scored window (a plain 4-tuple in this order is accepted everywhere)."""

    predicted: list          # list[ContactEvent]
    heard: list              # list[HeardEvent]
    material: str | None     # material of the struck object
    episode: object          # episode id (hashable)


def path_end_s(traj_feats: np.ndarray, valid: int, frame_rate: float = FRAME_RATE) -> float:
    """When the path itself ends in its window [s]: the last active frame (``active`` feature)."""
    active = np.nonzero(np.asarray(traj_feats)[:int(valid), ACTIVE] > 0.5)[0]
    return float((active[-1] + 1) / frame_rate) if len(active) else int(valid) / frame_rate


def windows_from_data(data, predicted: Sequence[Sequence[ContactEvent]], sample_rate: int = 16000,
                      after_path_s: float | None = AFTER_PATH_S) -> list[Window]:
    """The scored windows of a method on ``PredictorData``: its events per window, the events
    heard in each window's recording (over its valid frames), the target's material (None for a
    window without a target) and the episode.

    A window runs on past its path to hear the ringing, and so hears the start of the next path
    too (in the sound world's sets, 37-48 % of the audible windows heard nothing else). Heard events with their onset
    more than ``after_path_s`` after the path's end are dropped: they belong to the next path's
    own window (None keeps them all)."""
    from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
    if len(predicted) != len(data):
        raise ValueError(f'{len(predicted)} predicted event lists for {len(data)} windows')
    out = []
    for i, (p, m) in enumerate(zip(predicted, data.meta)):
        heard = heard_events(data.audio_float(i), sample_rate)
        if after_path_s is not None:
            end = path_end_s(data.traj[i], int(data.valid[i])) + after_path_s
            heard = [h for h in heard if h.time <= end]
        out.append(Window(list(p), heard, None if m['material'] == NO_MATERIAL else m['material'],
                          m['episode']))
    return out


# --- matching -----------------------------------------------------------------------------------
def _in_slide(t: float, h: HeardEvent, tol: float) -> bool:
    return h.time - tol - _EPS <= t <= h.time + h.duration + tol + _EPS


def match_events(pred: Sequence[ContactEvent], heard: Sequence[HeardEvent],
                 tol: float = TOL_S) -> list[tuple[int, int]]:
    """(predicted index, heard index) pairs of one window: impacts one to one by onset within
    ``tol`` (nearest pairs first), slides by interval (more probable predicted slides first, each
    to the unused heard slide with the nearest start)."""
    pi = [i for i, e in enumerate(pred) if e.kind != 'slide']
    hi = [j for j, h in enumerate(heard) if h.kind != 'slide']
    pairs = [(pi[a], hi[b]) for a, b in match_times([pred[i].time for i in pi],
                                                    [heard[j].time for j in hi], tol + _EPS)]
    used: set[int] = set()
    slides = sorted((i for i, e in enumerate(pred) if e.kind == 'slide'),
                    key=lambda i: -pred[i].probability)
    for i in slides:
        cands = [j for j, h in enumerate(heard)
                 if h.kind == 'slide' and j not in used and _in_slide(pred[i].time, h, tol)]
        if cands:
            j = min(cands, key=lambda j: abs(heard[j].time - pred[i].time))
            used.add(j)
            pairs.append((i, j))
    return pairs


def _ranked_hits(pred: Sequence[ContactEvent], heard: Sequence[HeardEvent],
                 tol: float) -> list[tuple[float, bool]]:
    """(probability, hit) of every predicted event, matched in order of probability (a detection
    AP's matching: a more confident event takes the heard event first)."""
    used: set[int] = set()
    out = []
    for i in sorted(range(len(pred)), key=lambda i: -pred[i].probability):
        e = pred[i]
        if e.kind == 'slide':
            cands = [j for j, h in enumerate(heard)
                     if h.kind == 'slide' and j not in used and _in_slide(e.time, h, tol)]
        else:
            cands = [j for j, h in enumerate(heard)
                     if h.kind != 'slide' and j not in used and abs(h.time - e.time) <= tol + _EPS]
        if cands:
            used.add(min(cands, key=lambda j: abs(heard[j].time - e.time)))
        out.append((float(e.probability), bool(cands)))
    return out


def onset_counts(rendered: Sequence[HeardEvent], heard: Sequence[HeardEvent],
                 tol: float = TOL_S) -> tuple[int, int, int]:
    """(matched, rendered, heard) onsets of one window, one to one within ``tol``, any kind."""
    pairs = match_times([e.time for e in rendered], [h.time for h in heard], tol + _EPS)
    return len(pairs), len(rendered), len(heard)


# --- one window's outcome ---------------------------------------------------------------------
@dataclass
class WindowScore:
    """What every metric needs from one window, computed once."""

    episode: object
    p_contact: float
    audible: bool                      # at least one heard event
    expected_peak_db: float
    recorded_peak_db: float | None     # loudest heard event (None: nothing heard)
    n_pred: int                        # predicted events at or above the threshold
    n_heard: int
    n_hit: int
    onset_errors: list = field(default_factory=list)      # [s] matched impacts
    level_errors: list = field(default_factory=list)      # [dB] matched events
    first_onset_error: float | None = None                # [s]
    materials: list = field(default_factory=list)         # (predicted, struck) at matched events
    ranked: list = field(default_factory=list)            # (probability, hit), all predicted
    audio: tuple | None = None                            # onset_counts of rendered audio


def _window(w) -> Window:
    return w if isinstance(w, Window) else Window(*w)


def score_window(window, tol: float = TOL_S, threshold: float = THRESHOLD,
                 rendered: Sequence[HeardEvent] | None = None) -> WindowScore:
    """Score one window; ``rendered``: events heard in the method's audio for it, if any."""
    pred, heard, material, episode = _window(window)
    kept = [e for e in pred if e.probability >= threshold]
    pairs = match_events(kept, heard, tol)
    first = None
    if kept and heard:
        first = abs(min(e.time for e in kept) - min(h.time for h in heard))
    return WindowScore(
        episode=episode, p_contact=p_contact(list(pred)), audible=bool(heard),
        expected_peak_db=expected_peak_db(list(pred)),
        recorded_peak_db=max(h.peak_db for h in heard) if heard else None,
        n_pred=len(kept), n_heard=len(heard), n_hit=len(pairs),
        onset_errors=[abs(kept[i].time - heard[j].time) for i, j in pairs if kept[i].kind != 'slide'],
        level_errors=[abs(kept[i].peak_db - heard[j].peak_db) for i, j in pairs],
        first_onset_error=first,
        materials=[(kept[i].material, material) for i, _ in pairs] if material is not None else [],
        ranked=_ranked_hits(pred, heard, tol),
        audio=onset_counts(rendered, heard, tol) if rendered is not None else None)


def score_windows(windows, tol: float = TOL_S, threshold: float = THRESHOLD,
                  rendered=None) -> list[WindowScore]:
    rendered = [None] * len(windows) if rendered is None else rendered
    if len(rendered) != len(windows):
        raise ValueError(f'{len(rendered)} rendered event lists for {len(windows)} windows')
    return [score_window(w, tol, threshold, r) for w, r in zip(windows, rendered)]


# --- metrics over window scores ----------------------------------------------------------------
def _median(values) -> float | None:
    return float(np.median(values)) if len(values) else None


def auc(scores, labels) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); None if a class is absent."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(a, b) -> float | None:
    """Spearman rank correlation (ties take mean ranks); None for fewer than 3 pairs or a
    constant side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3:
        return None
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def average_precision(ranked: list[tuple[float, bool]], n_true: int) -> float | None:
    """All-point interpolated AP of pooled (score, hit) pairs against ``n_true`` true events."""
    if n_true == 0:
        return None
    if not ranked:
        return 0.0
    order = np.argsort(-np.array([s for s, _ in ranked], float), kind='stable')
    hit = np.array([h for _, h in ranked], float)[order]
    ctp = np.cumsum(hit)
    recall = np.r_[0.0, ctp / n_true]
    precision = np.r_[1.0, ctp / np.arange(1, len(hit) + 1)]
    precision = np.maximum.accumulate(precision[::-1])[::-1]       # the envelope
    return float(np.sum(np.diff(recall) * precision[1:]))


def _f1(tp: int, n_pred: int, n_true: int) -> float | None:
    return None if n_pred + n_true == 0 else 2.0 * tp / (n_pred + n_true)


def _contact_auc(s: list[WindowScore]):
    return auc([w.p_contact for w in s], [w.audible for w in s])


def _event_f1(s):
    return _f1(sum(w.n_hit for w in s), sum(w.n_pred for w in s), sum(w.n_heard for w in s))


def _event_ap(s):
    return average_precision([r for w in s for r in w.ranked], sum(w.n_heard for w in s))


def _onset_error_ms(s):
    m = _median([e for w in s for e in w.onset_errors])
    return None if m is None else 1000.0 * m


def _first_onset_error_ms(s):
    m = _median([w.first_onset_error for w in s if w.first_onset_error is not None])
    return None if m is None else 1000.0 * m


def _loudness_spearman(s):
    aud = [w for w in s if w.audible]
    return spearman([w.expected_peak_db for w in aud], [w.recorded_peak_db for w in aud])


def _event_level_error_db(s):
    return _median([e for w in s for e in w.level_errors])


def _material_accuracy(s):
    pairs = [p for w in s for p in w.materials]
    if not pairs or not any(pred for pred, _ in pairs):
        return None                                   # nothing matched, or no material named
    return float(np.mean([pred == true for pred, true in pairs]))


def _majority_material_rate(s):
    struck = [true for w in s for _, true in w.materials]
    if not struck:
        return None
    _, counts = np.unique(struck, return_counts=True)
    return float(counts.max() / len(struck))


def _audio_onset_f1(s):
    counts = [w.audio for w in s if w.audio is not None]
    if not counts:
        return None
    tp, n_r, n_h = np.sum(counts, axis=0)
    return _f1(int(tp), int(n_r), int(n_h))


#: name -> metric over window scores, in the order :func:`summarize` reports them.
METRICS: dict[str, Callable[[list[WindowScore]], float | None]] = {
    'contact_auc': _contact_auc,
    'event_f1': _event_f1,
    'event_ap': _event_ap,
    'onset_error_ms': _onset_error_ms,
    'first_onset_error_ms': _first_onset_error_ms,
    'loudness_spearman': _loudness_spearman,
    'event_level_error_db': _event_level_error_db,
    'material_accuracy': _material_accuracy,
    'majority_material_rate': _majority_material_rate,
    'audio_onset_f1': _audio_onset_f1,
}


# --- the public metrics over windows ---------------------------------------------------------
def contact_auc(windows) -> float | None:
    return _contact_auc(score_windows(windows))


def event_f1(windows, tol: float = TOL_S, threshold: float = THRESHOLD) -> float | None:
    return _event_f1(score_windows(windows, tol, threshold))


def event_ap(windows, tol: float = TOL_S) -> float | None:
    return _event_ap(score_windows(windows, tol))


def onset_error_ms(windows, tol: float = TOL_S, threshold: float = THRESHOLD) -> float | None:
    return _onset_error_ms(score_windows(windows, tol, threshold))


def first_onset_error_ms(windows, threshold: float = THRESHOLD) -> float | None:
    return _first_onset_error_ms(score_windows(windows, threshold=threshold))


def loudness_spearman(windows) -> float | None:
    return _loudness_spearman(score_windows(windows))


def event_level_error_db(windows, tol: float = TOL_S, threshold: float = THRESHOLD) -> float | None:
    return _event_level_error_db(score_windows(windows, tol, threshold))


def material_accuracy(windows, tol: float = TOL_S, threshold: float = THRESHOLD) -> float | None:
    return _material_accuracy(score_windows(windows, tol, threshold))


def majority_material_rate(windows, tol: float = TOL_S, threshold: float = THRESHOLD) -> float | None:
    return _majority_material_rate(score_windows(windows, tol, threshold))


def audio_onset_f1(rendered: Sequence[Sequence[HeardEvent]], heard: Sequence[Sequence[HeardEvent]],
                   tol: float = TOL_S) -> float | None:
    """F1 of onsets heard in rendered audio against those heard in the recordings, pooled over
    windows: ``rendered[i]`` and ``heard[i]`` are the heard-event lists of window ``i`` (or two
    plain heard-event lists: one window)."""
    if all(isinstance(e, HeardEvent) for e in [*rendered, *heard]):
        rendered, heard = [rendered], [heard]
    if len(rendered) != len(heard):
        raise ValueError(f'{len(rendered)} rendered event lists for {len(heard)} recorded ones')
    counts = np.array([onset_counts(r, h, tol) for r, h in zip(rendered, heard)], int).reshape(-1, 3)
    tp, n_r, n_h = counts.sum(0)
    return _f1(int(tp), int(n_r), int(n_h))


# --- bootstrap and summary -----------------------------------------------------------------------
def episode_bootstrap(items, metric: Callable, n: int = 1000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float] | None:
    """(lo, hi) ``level`` interval of ``metric(resampled items)``: whole episodes drawn with
    replacement (the windows of one trial share its scene, so they go together). ``items``:
    windows (or :class:`WindowScore`); None when the metric is undefined on every resample."""
    items = [w if isinstance(w, (Window, WindowScore)) else Window(*w) for w in items]
    groups: dict = {}
    for w in items:
        groups.setdefault(w.episode, []).append(w)
    episodes = list(groups.values())
    if not episodes:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = rng.integers(0, len(episodes), len(episodes))
        v = metric([w for k in pick for w in episodes[k]])
        if v is not None and np.isfinite(v):
            values.append(v)
    if not values:
        return None
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def summarize(windows, tol: float = TOL_S, threshold: float = THRESHOLD, rendered=None,
              n_boot: int = 1000, seed: int = 0) -> dict:
    """All event metrics of one method, with episode-bootstrap 95 % intervals (``ci95``) and
    the counts they rest on. ``rendered``: per window, the events heard in the method's rendered
    audio (None: the method renders none, ``audio_onset_f1`` is None)."""
    scores = score_windows(windows, tol, threshold, rendered)
    out: dict = {name: f(scores) for name, f in METRICS.items()}
    out['ci95'] = {}
    for name, f in METRICS.items():
        ci = episode_bootstrap(scores, f, n_boot, seed) if out[name] is not None and n_boot > 0 else None
        out['ci95'][name] = None if ci is None else list(ci)
    out['counts'] = dict(windows=len(scores), audible_windows=sum(w.audible for w in scores),
                         episodes=len({w.episode for w in scores}),
                         predicted=sum(w.n_pred for w in scores),
                         heard=sum(w.n_heard for w in scores), matched=sum(w.n_hit for w in scores))
    out['tolerance_ms'] = 1000.0 * tol
    out['threshold'] = threshold
    return out
