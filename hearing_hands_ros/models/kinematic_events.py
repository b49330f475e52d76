"""The ``kinematic`` baseline: contact events from the planned path alone, by a hand-written rule.

No learning, no image, no ground truth: only the TCP track of the path and the gripper aperture
(trajectory features, ``trajectory.FEATURE_LAYOUT``). The rules:

* **strike**: a downward motion that ends. The vertical velocity is clearly negative (below
  ``-DESCENT_SPEED``, and faster than the horizontal speed) and then comes to ~0 (above
  ``-STOP_SPEED``) at a height at least ``MIN_DROP`` below the path's start height, and the
  TCP's next motion is up or sideways (a path that just stops low, like an approach arriving
  above its target, makes no contact; one that goes on down had not reached its low point). A
  strike aims a little below the surface it hits: the impact is taken where the descent crosses
  ``STRIKE_DEPTH`` above the lowest point, its spread is ``DEPTH_SPREAD`` over the speed there.
  Probability rises with the peak descent speed (``1 - exp(-v / SPEED_SCALE)``: slow descents
  may stop short of anything or touch it softly), the level is linear in it.
* **grasp**: when the fingers close (aperture speed below ``-APERTURE_SPEED``) at that low point
  before the TCP moves again, the sound is the fingers meeting the object, instead of the end of
  the descent. A recorded closing stops on the object (the opening stays above
  ``STALL_OPENING``): the sound comes ``GRASP_LEAD_S`` before it stops. A planned closing runs
  to the end of its stroke, and where along it the fingers meet the object depends on its width,
  which the path does not say: at the closing's middle, with the spread of a uniform time over
  it. The opening comes from the gripper's plan along the path (``Trajectory.apertures``) or a
  recording, else from the aperture the caller gives (a constant: no grasp or drop is found).
* **drop**: when the fingers open while the TCP is at least ``MIN_DROP`` above the height where
  they last closed, the object falls that height ``h``: an impact ``sqrt(2 h / g)`` after the
  opening starts.
* **slide**: the TCP moves horizontally (faster than ``SLIDE_SPEED``, vertical speed ~0) at the
  path's lowest height (within ``HEIGHT_TOL``) for at least ``SLIDE_MIN_S``, where that height
  lies at least ``MIN_DROP`` below the path's highest point (a path that only cruises at one
  height touches nothing). One slide per path, the longest such run, from its start.

The constants are set by hand; the levels, the strike depth and the grasp lead were read off the
sound world's training recordings (mixed and ambiguous), not fitted to the sets scored. The rule
does not see a material, so its events name none (``material`` is '').
"""
from __future__ import annotations

import numpy as np

from hearing_hands_ros.events import ContactEvent
from hearing_hands_ros.trajectory import FEATURE_LAYOUT, FRAME_RATE

Z = FEATURE_LAYOUT.index('pos_z')
POS = slice(FEATURE_LAYOUT.index('pos_x'), FEATURE_LAYOUT.index('pos_z') + 1)
VEL = slice(FEATURE_LAYOUT.index('vel_x'), FEATURE_LAYOUT.index('vel_z') + 1)
APERTURE = FEATURE_LAYOUT.index('aperture')
APERTURE_VEL = FEATURE_LAYOUT.index('aperture_vel')
ACTIVE = FEATURE_LAYOUT.index('active')

DESCENT_SPEED = 0.05       # [m/s] a descent is at least this fast downwards
STOP_SPEED = 0.01          # [m/s] below this the TCP is at rest (vertically, or horizontally)
MOVE_SPEED = 0.02          # [m/s] after the low point the TCP moves again at least this fast
MIN_DROP = 0.008           # [m] the low point lies this far below the start (or the top) of the path
STRIKE_DEPTH = 0.004       # [m] assumed planned depth below the surface (the sound world: 2-15 mm)
DEPTH_SPREAD = 0.0025      # [m] spread of that depth
MIN_TIME_STD = 0.005       # [s] floor of an event's time spread (frame and onset jitter)
SPEED_SCALE = 0.1          # [m/s] P(strike heard) = 1 - exp(-peak descent speed / SPEED_SCALE)
IMPACT_DB = -27.0          # [dBFS] level of a strike at zero speed ...
IMPACT_DB_PER_MPS = 14.0   # [dB per m/s] ... rising with the peak descent speed
APERTURE_SPEED = 0.05      # [m/s] the fingers close or open at least this fast
GRASP_LEAD_S = 0.015       # [s] the fingers touch this long before a recorded closing stops
STALL_OPENING = 0.005      # [m] a closing that stops this open stopped on the object
GRASP_PROBABILITY = 0.7    # P(the fingers meeting an object are heard)
GRASP_DB = -28.0           # [dBFS] level of a grasp
DROP_PROBABILITY = 0.9     # P(a dropped object's landing is heard)
DROP_DB = -29.0            # [dBFS] level of a landing (a short fall onto the table)
GRAVITY = 9.81             # [m/s^2]
SLIDE_SPEED = 0.01         # [m/s] horizontal speed of a slide
HEIGHT_TOL = 0.002         # [m] a slide runs within this of the path's lowest height
SLIDE_MIN_S = 0.15         # [s] shortest slide
SLIDE_PROBABILITY = 0.6    # P(a slide is heard)
SLIDE_DB = -40.0           # [dBFS] level of a slide at zero speed ...
SLIDE_DB_PER_MPS = 100.0   # [dB per m/s] ... rising with its mean horizontal speed
MAX_DB = -6.0              # [dBFS] no predicted level above this


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of the True runs of a boolean array."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]))


def _active_frames(traj_feats: np.ndarray, valid: int) -> int:
    """Frames of the path itself: the window's valid frames less the held tail after the path."""
    n = int(min(valid, len(traj_feats)))
    active = np.nonzero(traj_feats[:n, ACTIVE] > 0.5)[0]
    return int(active[-1]) + 1 if len(active) else n


def _crossing(z: np.ndarray, lo: int, hi: int, level: float) -> float:
    """Fractional frame in [lo, hi] where falling ``z`` last crosses ``level`` before ``hi``."""
    above = np.nonzero(z[lo:hi + 1] >= level)[0]
    k = lo + int(above[-1]) if len(above) else lo
    if k >= hi or z[k] == z[k + 1]:
        return float(k)
    return k + float(np.clip((z[k] - level) / (z[k] - z[k + 1]), 0.0, 1.0))


def _impact(feats: np.ndarray, k: float, n: int, frame_rate: float, probability: float,
            peak_db: float, time_std: float = MIN_TIME_STD) -> ContactEvent:
    """An impact at fractional frame ``k``."""
    i = min(max(int(round(k)), 0), n - 1)
    return ContactEvent(time=float(k / frame_rate), time_std=float(time_std),
                        probability=float(probability), peak_db=float(min(peak_db, MAX_DB)),
                        kind='impact', material='', material_probs={},
                        position=feats[i, POS].astype(float))


def strikes(traj_feats: np.ndarray, n: int, frame_rate: float = FRAME_RATE) -> list[ContactEvent]:
    """Strike and grasp impacts of the first ``n`` frames (the module's rules)."""
    z, vz = traj_feats[:n, Z], traj_feats[:n, VEL.stop - 1]
    speed = np.linalg.norm(traj_feats[:n, VEL], axis=1)
    closing = _runs(traj_feats[:n, APERTURE_VEL] < -APERTURE_SPEED)
    out = []
    for a, b in _runs(vz < -DESCENT_SPEED):
        rest = np.nonzero(vz[b:] >= -STOP_SPEED)[0]
        if not len(rest):
            continue                                  # still descending when the path ends
        k_stop = b + int(rest[0])
        k_min = a + int(np.argmin(z[a:k_stop + 1]))
        after = k_min + 1 + np.nonzero(speed[k_min + 1:] >= MOVE_SPEED)[0]
        if z[k_min] > z[0] - MIN_DROP or not len(after) or vz[after[0]] < -STOP_SPEED:
            continue                                  # not low enough, or not a low point
        k_peak = a + int(np.argmin(vz[a:b]))
        if np.hypot(*traj_feats[k_peak, VEL.start:VEL.start + 2]) > -vz[k_peak]:
            continue                                  # a sideways move that also sinks
        grasp = [(c, e) for c, e in closing if k_stop - 1 <= c < after[0]]
        if grasp:                                     # the fingers close on something here
            c, e = grasp[0]
            if traj_feats[min(e, n - 1), APERTURE] > STALL_OPENING:    # stopped on it (recorded)
                out.append(_impact(traj_feats, e - GRASP_LEAD_S * frame_rate, n, frame_rate,
                                   GRASP_PROBABILITY, GRASP_DB))
            else:                                     # a planned full close: somewhere along it
                out.append(_impact(traj_feats, 0.5 * (c + e), n, frame_rate, GRASP_PROBABILITY,
                                   GRASP_DB, max((e - c) / frame_rate / np.sqrt(12.0), MIN_TIME_STD)))
            continue
        k = _crossing(z, a, k_min, z[k_min] + STRIKE_DEPTH)
        v_peak = float(-vz[k_peak])
        v_cross = float(-vz[min(int(round(k)), k_min)])
        out.append(_impact(traj_feats, k, n, frame_rate, 1.0 - np.exp(-v_peak / SPEED_SCALE),
                           IMPACT_DB + IMPACT_DB_PER_MPS * v_peak,
                           max(DEPTH_SPREAD / max(v_cross, DESCENT_SPEED), MIN_TIME_STD)))
    return out


def drops(traj_feats: np.ndarray, n: int, frame_rate: float = FRAME_RATE) -> list[ContactEvent]:
    """Landings of objects released in the air over the first ``n`` frames: the fingers open at
    least ``MIN_DROP`` above where they last closed (the module's drop rule)."""
    z, ap_vel = traj_feats[:n, Z], traj_feats[:n, APERTURE_VEL]
    closed = [e for _, e in _runs(ap_vel < -APERTURE_SPEED)]
    out = []
    for a, _ in _runs(ap_vel > APERTURE_SPEED):
        before = [e for e in closed if e <= a]
        if not before:
            continue                                  # nothing was held
        h = float(z[a] - z[min(before[-1], n - 1)])
        if h < MIN_DROP:
            continue                                  # opened where it closed: a place
        fall_s = float(np.sqrt(2.0 * h / GRAVITY))
        out.append(_impact(traj_feats, a + fall_s * frame_rate, n, frame_rate, DROP_PROBABILITY,
                           DROP_DB))
    return out


def slide(traj_feats: np.ndarray, n: int, frame_rate: float = FRAME_RATE) -> list[ContactEvent]:
    """The slide of the first ``n`` frames, if any (the module's slide rule)."""
    z, vel = traj_feats[:n, Z], traj_feats[:n, VEL]
    if not n or z.max() - z.min() < MIN_DROP:
        return []
    h_speed = np.linalg.norm(vel[:, :2], axis=1)
    moving = (h_speed >= SLIDE_SPEED) & (np.abs(vel[:, 2]) < STOP_SPEED) & (z <= z.min() + HEIGHT_TOL)
    runs = [(a, b) for a, b in _runs(moving) if (b - a) / frame_rate >= SLIDE_MIN_S]
    if not runs:
        return []
    a, b = max(runs, key=lambda r: r[1] - r[0])
    v = float(h_speed[a:b].mean())
    return [ContactEvent(time=float(a / frame_rate), time_std=MIN_TIME_STD, probability=SLIDE_PROBABILITY,
                         peak_db=float(min(SLIDE_DB + SLIDE_DB_PER_MPS * v, MAX_DB)), kind='slide',
                         material='', material_probs={}, position=traj_feats[a, POS].astype(float),
                         duration=float((b - a) / frame_rate))]


def kinematic_events(traj_feats: np.ndarray, valid: int | None = None,
                     frame_rate: float = FRAME_RATE) -> list[ContactEvent]:
    """Contact events of one path from its trajectory features ``(T, 18)`` (frame ``k`` at
    ``k / frame_rate`` s from the path start), over its first ``valid`` frames; by time."""
    feats = np.asarray(traj_feats, np.float64)
    n = _active_frames(feats, len(feats) if valid is None else valid)
    events = strikes(feats, n, frame_rate) + drops(feats, n, frame_rate) + slide(feats, n, frame_rate)
    return sorted(events, key=lambda e: e.time)


def kinematic_predictions(traj: np.ndarray, valid: np.ndarray,
                          frame_rate: float = FRAME_RATE) -> list[list[ContactEvent]]:
    """:func:`kinematic_events` of each window of a batch: ``traj`` (W, T, 18), ``valid`` (W,)
    (as ``PredictorData`` holds them)."""
    return [kinematic_events(t, int(v), frame_rate) for t, v in zip(traj, valid)]
