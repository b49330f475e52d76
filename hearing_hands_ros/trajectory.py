"""Planned gripper motion -> per-frame condition features at the audio frame rate.

A :class:`Trajectory` is a stamped pose sequence of the gripper tool-centre point in the scene
frame (``world``), e.g. a ``nav_msgs/Path`` whose poses carry their planned times, optionally with
the gripper aperture at each pose. :func:`validate` turns every malformed input into one
:class:`TrajectoryError` sentence; :func:`features` resamples a valid trajectory to the audio frame
rate (100 frames/s = mel hop 160 at 16 kHz) as an ``(T, 18)`` float32 array, frame ``k`` at time
``start + k / frame_rate``:

=========  ====  ==============================================================================
columns    dims  meaning
=========  ====  ==============================================================================
0:3        3     position [m] in the scene frame (linear interpolation)
3:9        6     orientation as the first two columns of the rotation matrix (6D, Zhou et al.
                 2019; continuous, unlike quaternions), slerp-interpolated
9:12       3     linear velocity [m/s] (exact per path segment)
12:15      3     angular velocity [rad/s] in the scene frame (per segment)
15         1     aperture [m] (finger opening)
16         1     aperture velocity [m/s]
17         1     active: 1 while the path runs, 0 in the tail after it (pose held, speeds 0)
=========  ====  ==============================================================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

FRAME_RATE = 100.0
FEATURE_LAYOUT = ('pos_x', 'pos_y', 'pos_z', 'rot6d_0', 'rot6d_1', 'rot6d_2', 'rot6d_3', 'rot6d_4',
                  'rot6d_5', 'vel_x', 'vel_y', 'vel_z', 'angvel_x', 'angvel_y', 'angvel_z',
                  'aperture', 'aperture_vel', 'active')
N_FEATURES = len(FEATURE_LAYOUT)
DEFAULT_APERTURE = 0.04   # [m] used when neither the path nor the caller knows the opening


class TrajectoryError(ValueError):
    """A planned path cannot be used (empty, single pose, NaN, unsorted, too long, wrong frame)."""


@dataclass
class Trajectory:
    """Stamped gripper poses. ``times`` [s] on any clock (ROS seconds or episode seconds)."""

    times: np.ndarray                 # (N,) float64 [s]
    positions: np.ndarray             # (N, 3) [m]
    orientations: np.ndarray          # (N, 4) quaternion xyzw
    apertures: np.ndarray | None = None   # (N,) [m] or None
    frame_id: str = 'world'

    @classmethod
    def from_stamps_ns(cls, stamps_ns, positions, orientations, apertures=None,
                       frame_id: str = 'world', origin_ns: int = 0) -> 'Trajectory':
        """Build from integer ROS stamps; ``times = (stamps_ns - origin_ns) / 1e9``."""
        stamps = np.asarray(stamps_ns, dtype=np.int64).reshape(-1)
        return cls((stamps - int(origin_ns)).astype(np.float64) / 1e9, positions, orientations,
                   apertures, frame_id)

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0])


def plan_apertures(stamps_ns, plan_times_ns, plan_apertures) -> np.ndarray:
    """The finger opening (N,) [m] at a path's pose stamps (N,) [ns] from the gripper's plan
    along it (its times [ns] and openings [m]; held constant beyond its ends)."""
    t = np.asarray(plan_times_ns, np.int64)
    a = np.asarray(plan_apertures, np.float64).reshape(-1)
    if not len(t) or len(t) != len(a):
        raise TrajectoryError(f'gripper plan has {len(t)} times and {len(a)} openings')
    order = np.argsort(t, kind='stable')
    x = (np.asarray(stamps_ns, np.int64) - t[order[0]]).astype(np.float64)
    return np.interp(x, (t[order] - t[order[0]]).astype(np.float64), a[order])


def validate(traj: Trajectory, frame_id: str | None = 'world',
             max_duration: float | None = 8.0) -> Trajectory:
    """Check ``traj`` and return a clean copy (float64 arrays, unit quaternions).

    Raises :class:`TrajectoryError` for: a frame id other than ``frame_id``, no pose, a single
    pose, mismatched array lengths, NaN/inf values, a zero quaternion, unsorted or duplicate
    stamps, or a duration above ``max_duration`` seconds.
    """
    if frame_id is not None and traj.frame_id != frame_id:
        raise TrajectoryError(f'path frame id {traj.frame_id!r} does not match the model\'s scene '
                              f'frame {frame_id!r}; transform the path into {frame_id!r} first')
    t = np.asarray(traj.times, dtype=np.float64).reshape(-1)
    p = np.asarray(traj.positions, dtype=np.float64).reshape(-1, 3)
    q = np.asarray(traj.orientations, dtype=np.float64).reshape(-1, 4)
    n = len(t)
    if n == 0:
        raise TrajectoryError('path is empty: it needs at least two stamped poses')
    if n == 1:
        raise TrajectoryError('path has a single pose: it needs at least two stamped poses '
                              '(start and goal, stamped with their planned times)')
    if len(p) != n or len(q) != n:
        raise TrajectoryError(f'path has {n} stamps but {len(p)} positions and {len(q)} orientations')
    a = None
    if traj.apertures is not None:
        a = np.asarray(traj.apertures, dtype=np.float64).reshape(-1)
        if len(a) != n:
            raise TrajectoryError(f'path has {n} poses but {len(a)} apertures')
    for name, arr in (('stamps', t), ('positions', p), ('orientations', q), ('apertures', a)):
        if arr is not None and not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr.reshape(n, -1)).all(axis=1))[0])
            raise TrajectoryError(f'path {name} contain NaN or inf (first at pose {bad})')
    norms = np.linalg.norm(q, axis=1)
    if (norms < 1e-6).any():
        raise TrajectoryError(f'path orientation {int(np.argmax(norms < 1e-6))} is a zero '
                              'quaternion')
    dt = np.diff(t)
    if (dt < 0).any():
        raise TrajectoryError(f'path stamps are not sorted (pose {int(np.argmax(dt < 0)) + 1} is '
                              'earlier than the one before)')
    if (dt == 0).any():
        raise TrajectoryError(f'path has duplicate stamps (pose {int(np.argmax(dt == 0)) + 1}); '
                              'each pose must be stamped with its planned time')
    if max_duration is not None and t[-1] - t[0] > max_duration:
        raise TrajectoryError(f'path lasts {t[-1] - t[0]:.2f} s, longer than the limit of '
                              f'{max_duration:g} s; split it or raise max_path_duration')
    return Trajectory(t, p, q / norms[:, None], a, traj.frame_id)


def n_frames_for(duration: float, tail: float = 0.5, frame_rate: float = FRAME_RATE,
                 max_frames: int | None = None) -> int:
    """Frames covering ``duration + tail`` seconds (at least 2), capped at ``max_frames``."""
    n = int(math.ceil((duration + tail) * frame_rate - 1e-9)) + 1
    return max(2, n if max_frames is None else min(n, max_frames))


def _segments(times: np.ndarray, ft: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment index (T,) of each frame time and whether the frame is inside the path."""
    seg = np.clip(np.searchsorted(times, ft, side='right') - 1, 0, len(times) - 2)
    inside = (ft >= times[0]) & (ft <= times[-1])
    return seg, inside


def features(traj: Trajectory, n_frames: int | None = None, frame_rate: float = FRAME_RATE,
             t0: float | None = None, aperture: float = DEFAULT_APERTURE,
             aperture_track: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per-frame features ``(n_frames, 18)`` float32 (layout in :data:`FEATURE_LAYOUT`).

    ``traj`` must be valid (see :func:`validate`). Frames start at ``t0`` (default: the first
    stamp); before the first and after the last pose the pose is held and speeds are 0.
    Aperture: ``aperture_track = (times, values)`` (e.g. the recorded joint state, same clock as
    ``traj.times``), else ``traj.apertures``, else the constant ``aperture``.
    """
    t = traj.times
    if n_frames is None:
        n_frames = n_frames_for(traj.duration)
    t0 = t[0] if t0 is None else float(t0)
    ft = t0 + np.arange(n_frames) / frame_rate                               # (T,)
    ftc = np.clip(ft, t[0], t[-1])
    seg, inside = _segments(t, ft)
    dt = np.diff(t)                                                          # (N-1,)

    pos = np.stack([np.interp(ftc, t, traj.positions[:, i]) for i in range(3)], axis=1)
    rots = Rotation.from_quat(traj.orientations)
    rot = Slerp(t, rots)(ftc)
    rot6 = rot.as_matrix()[:, :, :2].transpose(0, 2, 1).reshape(-1, 6)     # columns 0, 1
    vel_seg = np.diff(traj.positions, axis=0) / dt[:, None]                  # (N-1, 3)
    ang_seg = (rots[1:] * rots[:-1].inv()).as_rotvec() / dt[:, None]         # world frame
    on = inside[:, None].astype(np.float64)
    vel = vel_seg[seg] * on
    ang = ang_seg[seg] * on

    if aperture_track is not None:
        at, av = (np.asarray(v, dtype=np.float64).reshape(-1) for v in aperture_track)
        ap = np.interp(ft, at, av) if len(at) else np.full(n_frames, aperture)
    elif traj.apertures is not None:
        ap = np.interp(ftc, t, traj.apertures)
    else:
        ap = np.full(n_frames, float(aperture))
    ap_vel = np.gradient(ap, 1.0 / frame_rate) if n_frames > 1 else np.zeros(n_frames)

    out = np.concatenate([pos, rot6, vel, ang, ap[:, None], ap_vel[:, None], on], axis=1)
    return out.astype(np.float32)
