"""Scripted gripper actions with randomized parameters.

An action is a timed list of keyframes of the gripper joint targets
q = (x, y, z, yaw, aperture) [m, m, m, rad, m] (TCP position in world, yaw about z, finger gap),
joined by minimum-jerk segments (zero velocity and acceleration at every keyframe). The same
`Plan` drives the position servos (reference + velocity feed-forward, sampled at the physics rate)
and is published as planned paths, the way a robot's planner hands them out: the *approach*
(transit to the pre-contact pose above or beside the target) at the action start, and the
*contact motion* (strike, scrape, push, grasp...) when the approach ends, so the wrist camera sees
the object a contact motion will touch when that motion is planned.

Action types: tap, hit (faster, harder), knock (2-3 quick taps), scrape (finger tips along an
object's top or side), push (object slides on the table), pick_place (grasp, lift, place: place
click), drop (grasp, lift, release: object hits the table), idle (motion without contact).
Scenarios: `mixed` (4-8 random actions on random objects, idle included) and `ambiguous` (3-6
taps/hits/knocks straight down onto the gap between two close objects of different materials whose
heights differ by 1.5-4 mm: the fingers bridge the gap and only the taller one is struck, which the
camera cannot resolve; see `plan_ambiguous`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scene import FINGER_HALF, MAX_APERTURE, PAIR_GAP, REACH, WORKSPACE_R

ACTION_TYPES = ('tap', 'hit', 'knock', 'scrape', 'push', 'pick_place', 'drop', 'idle')
_MIXED_P = dict(tap=0.17, hit=0.1, knock=0.12, scrape=0.14, push=0.13, pick_place=0.13, drop=0.11,
                idle=0.10)
# Pushes and side strikes use the fingers' broad y faces (force across the finger slides, so the
# finger joints are not loaded): face offset from the TCP along tool y [m].
_FINGER_SIDE = FINGER_HALF[1]
MAX_GRASP_WIDTH = 0.08                # widest graspable object [m]
ROUND_SHAPES = ('cylinder', 'cup', 'bowl', 'plate', 'sphere')


def min_jerk(tau: np.ndarray):
    """Minimum-jerk profile s(tau) and ds/dtau for tau in [0, 1]."""
    tau = np.clip(tau, 0.0, 1.0)
    t2 = tau * tau
    return t2 * tau * (10 - 15 * tau + 6 * t2), 30 * t2 * (1 - 2 * tau + t2)


def yaw_quat(yaw) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w) of rotations by `yaw` about world z."""
    yaw = np.asarray(yaw, float)
    return np.stack([np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2), np.cos(yaw / 2)], -1)


@dataclass
class Plan:
    """A planned action: keyframes q (K, 5) at absolute episode times (K,)."""

    kind: str
    target: int                        # object id (0 for idle)
    times: np.ndarray                  # (K,) [s], strictly increasing
    q: np.ndarray                      # (K, 5) x, y, z [m], yaw [rad], aperture [m]
    params: dict = field(default_factory=dict)
    contact_start: float | None = None  # [s] end of the approach = start of the contact motion

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def sample(self, t):
        """Reference q (n, 5) and its time derivative qd (n, 5) at times t (n,) [s]."""
        t = np.atleast_1d(np.asarray(t, float))
        k = np.clip(np.searchsorted(self.times, t, side='right') - 1, 0, len(self.times) - 2)
        dt = self.times[k + 1] - self.times[k]
        s, ds = min_jerk((t - self.times[k]) / dt)
        dq = self.q[k + 1] - self.q[k]
        return self.q[k] + dq * s[:, None], dq * (ds / dt)[:, None]

    def path(self, hz: float = 50.0, start: float | None = None, end: float | None = None):
        """Planned TCP path over [start, end] (default: the whole plan): times (M,), positions
        (M, 3), orientations (M, 4) xyzw, and the planned finger opening (M,) [m] (what a
        planner sends the gripper along it)."""
        start = self.start if start is None else start
        end = self.end if end is None else end
        n = max(2, int(np.ceil((end - start) * hz)) + 1)
        t = np.linspace(start, end, n)
        q, _ = self.sample(t)
        return t, q[:, :3].copy(), yaw_quat(q[:, 3]), q[:, 4].copy()

    def paths(self, hz: float = 50.0) -> list:
        """The paths a planner publishes for this action: [approach, contact motion], or the
        whole plan as one path when there is no approach (idle); each as :meth:`path` gives it."""
        if self.contact_start is None:
            return [self.path(hz)]
        return [self.path(hz, end=self.contact_start), self.path(hz, start=self.contact_start)]


@dataclass
class ObjState:
    """Current state of one object, as the planner sees it."""

    id: int
    shape: str
    size: np.ndarray                   # (3,) body-frame full extents [m]
    pos: np.ndarray                    # (3,) body position (bounding-box centre) [m]
    R: np.ndarray                      # (3, 3) body orientation
    lo: np.ndarray                     # (3,) world AABB min corner [m]
    hi: np.ndarray                     # (3,) world AABB max corner [m]

    @property
    def top(self) -> float:
        return float(self.hi[2])

    @property
    def height(self) -> float:
        return float(self.hi[2] - max(self.lo[2], 0.0))

    @property
    def on_table(self) -> bool:
        """Resting on the table top within reach (not fallen off, not held)."""
        return bool(self.lo[2] > -0.01 and self.lo[2] < 0.01
                    and np.all(np.abs(self.pos[:2]) < REACH - 0.06))

    @property
    def upright_round(self) -> bool:
        return self.shape in ROUND_SHAPES and self.R[2, 2] > 0.9

    def width_along(self, u) -> float:
        """Extent of the object along the horizontal world direction u (3,) [m] (body-frame
        bounding box; the diameter for upright round shapes)."""
        if self.upright_round:
            return float(self.size[0])
        return float(np.abs(np.asarray(u) @ self.R) @ self.size)

    def horizontal_axes(self):
        """Unit horizontal directions of the body x and y axes (for box faces / grasp)."""
        out = []
        for i in (0, 1):
            a = np.array([self.R[0, i], self.R[1, i], 0.0])
            n = np.linalg.norm(a)
            out.append(a / n if n > 1e-6 else np.array([1.0, 0.0, 0.0]) if i == 0
                       else np.array([0.0, 1.0, 0.0]))
        return out


class _Builder:
    """Accumulates keyframes starting from the current gripper configuration."""

    def __init__(self, t0: float, q0, z_safe: float):
        self.t = [t0]
        self.q = [np.asarray(q0, float).copy()]
        self.z_safe = z_safe
        self.approach_end: int | None = None     # keyframe where the last transit arrived

    @property
    def cur(self) -> np.ndarray:
        return self.q[-1]

    def move(self, x=None, y=None, z=None, yaw=None, ap=None, T=None, v=0.25, turn=np.pi):
        """Min-jerk move to the given targets (None keeps). T: duration, or from peak speed v.
        The yaw goes the shortest way round modulo ``turn``: a half turn by default (the fingers
        are symmetric), a full turn where the side the wrist camera looks from matters."""
        q = self.cur.copy()
        for i, val in enumerate((x, y, z, yaw, ap)):
            if val is not None:
                q[i] = val
        if yaw is not None:
            q[3] = self.cur[3] + (q[3] - self.cur[3] + turn / 2) % turn - turn / 2
        if T is None:
            dist = np.linalg.norm(q[:3] - self.cur[:3])
            T = max(0.15, 1.875 * dist / v, abs(q[3] - self.cur[3]) / 2.5,
                    abs(q[4] - self.cur[4]) / 0.15)
        self.t.append(self.t[-1] + float(T))
        self.q.append(q)
        return self

    def hold(self, T: float):
        return self.move(T=T)

    def transit(self, x, y, z, yaw=None, ap=None, v=0.45, turn=np.pi):
        """Go to (x, y, z) via the safe height if the straight way could sweep over objects."""
        far = np.hypot(x - self.cur[0], y - self.cur[1]) > 0.01
        if far and self.cur[2] < self.z_safe - 1e-3:
            self.move(z=self.z_safe, v=v)
        if far and z < self.z_safe:
            self.move(x=x, y=y, z=self.z_safe, yaw=yaw, ap=ap, v=v, turn=turn)
            self.move(z=z, v=0.6 * v)
        else:
            self.move(x=x, y=y, z=z, yaw=yaw, ap=ap, v=v, turn=turn)
        self.approach_end = len(self.t) - 1
        return self

    def plan(self, kind: str, target: int, params: dict) -> Plan:
        k = self.approach_end
        split = float(self.t[k]) if k is not None and 0 < k < len(self.t) - 1 else None
        return Plan(kind, target, np.array(self.t), np.array(self.q), params, split)


def _rim_or_top_point(o: ObjState, rng) -> np.ndarray:
    """A point (3,) on the object's top to strike: the rim of cups/bowls, else near the middle."""
    c = o.pos.copy()
    if o.shape in ('cup', 'bowl'):
        phi = rng.uniform(-np.pi, np.pi)
        r = 0.5 * o.size[0] - 0.003
        c[:2] += r * np.array([np.cos(phi), np.sin(phi)])
    else:
        half = 0.5 * (o.hi[:2] - o.lo[:2])
        c[:2] += rng.uniform(-0.3, 0.3, 2) * half
    c[2] = o.top
    return c


def _strike(b: _Builder, p, depth, T_down, hover, hold, T_up):
    """Down from `hover` above p (3,) to `depth` below it and back up (one tap)."""
    b.move(z=p[2] - depth, T=T_down)
    b.hold(hold)
    b.move(z=p[2] + hover, T=T_up)


def _strike_params(kind: str, rng):
    """hover height, depth below the surface [m], peak speed [m/s] and repeats of a strike."""
    if kind == 'hit':
        return rng.uniform(0.06, 0.11), rng.uniform(0.008, 0.015), rng.uniform(0.35, 0.6), 1
    if kind == 'knock':
        return (rng.uniform(0.012, 0.025), rng.uniform(0.003, 0.006), rng.uniform(0.15, 0.3),
                int(rng.integers(2, 4)))
    return rng.uniform(0.02, 0.05), rng.uniform(0.003, 0.008), rng.uniform(0.15, 0.35), 1


def _strikes(b, p, kind, hover, depth, v, reps, rng):
    """Hover above p (3,), then `reps` vertical strikes to `depth` below it."""
    b.hold(rng.uniform(0.05, 0.15))
    T_down = max(0.04, 1.875 * (hover + depth) / v)
    for _ in range(reps):
        _strike(b, p, depth, T_down, hover, rng.uniform(0.02, 0.06),
                rng.uniform(0.08, 0.12) if kind == 'knock' else rng.uniform(0.15, 0.3))
    return dict(point=p.round(4).tolist(), hover=round(hover, 4), depth=round(depth, 4),
                peak_speed=round(v, 3), repeats=reps)


def plan_tap(b, o, rng, kind='tap'):
    """tap / hit / knock on the top (or rim) of object o."""
    p = _rim_or_top_point(o, rng)
    yaw = rng.uniform(-np.pi, np.pi)
    ap = rng.uniform(0.0, 0.012)
    hover, depth, v, reps = _strike_params(kind, rng)
    b.transit(p[0], p[1], p[2] + hover, yaw=yaw, ap=ap)
    return _strikes(b, p, kind, hover, depth, v, reps, rng)


def plan_scrape(b, o, rng):
    """Drag the closed finger tips across the top, or along a side (cups, bowls, random)."""
    ap = rng.uniform(0.0, 0.01)
    speed = rng.uniform(0.03, 0.12)
    side = o.shape in ('cup', 'bowl') or rng.random() < 0.3
    if o.shape in ('sphere', 'plate'):
        side = False
    if side:
        n_dir = rng.uniform(-np.pi, np.pi)
        n = np.array([np.cos(n_dir), np.sin(n_dir), 0.0])
        if o.shape == 'box':                       # snap to the nearest face normal
            ax = o.horizontal_axes()
            cand = [s * a for a in ax for s in (1, -1)]
            n = max(cand, key=lambda c: c @ n)
        t = np.array([-n[1], n[0], 0.0])
        press = rng.uniform(0.002, 0.004)
        r = 0.5 * o.width_along(n)
        z = float(np.clip(0.45 * o.height, 0.008, 0.05))
        c = o.pos[:2] + n[:2] * (r + _FINGER_SIDE - press)
        half = 0.35 * o.width_along(t)
        p0, p1 = c - t[:2] * half, c + t[:2] * half
        yaw = np.arctan2(n[1], n[0]) - np.pi / 2      # tool y faces the object
        b.transit(*(p0 + n[:2] * 0.015), z, yaw=yaw, ap=ap)
        b.move(x=p0[0], y=p0[1], T=0.25)
    else:
        d = rng.uniform(-np.pi, np.pi)
        if o.shape == 'stick':                     # along the stick's axis
            a = o.horizontal_axes()[0]
            d = np.arctan2(a[1], a[0])
        u = np.array([np.cos(d), np.sin(d), 0.0])
        half = 0.35 * o.width_along(u)
        press = rng.uniform(0.002, 0.004)
        z = o.top - press
        p0, p1 = o.pos[:2] - u[:2] * half, o.pos[:2] + u[:2] * half
        yaw = rng.uniform(-np.pi, np.pi)
        b.transit(p0[0], p0[1], o.top + 0.02, yaw=yaw, ap=ap)
        b.move(z=z, T=0.35)
    b.hold(rng.uniform(0.05, 0.1))
    dist = float(np.linalg.norm(p1 - p0))
    b.move(x=p1[0], y=p1[1], T=max(0.2, 1.875 * dist / speed))
    b.hold(0.05)
    b.move(z=max(b.cur[2], o.top) + 0.03, T=0.3)
    return dict(mode='side' if side else 'top', speed=round(speed, 3), length=round(dist, 4))


def plan_push(b, o, rng):
    """Slide the object along the table with the closed fingers (object-table scraping)."""
    toward = -o.pos[:2] / max(np.linalg.norm(o.pos[:2]), 1e-6)
    ang = np.arctan2(toward[1], toward[0]) + rng.uniform(-1.2, 1.2)
    if np.linalg.norm(o.pos[:2]) < 0.06:
        ang = rng.uniform(-np.pi, np.pi)
    u = np.array([np.cos(ang), np.sin(ang), 0.0])
    r = 0.5 * o.width_along(u)
    z = float(np.clip(0.4 * o.height, 0.006, 0.03))
    start = o.pos[:2] - u[:2] * (r + _FINGER_SIDE + 0.02)
    dist = rng.uniform(0.05, 0.1)
    speed = rng.uniform(0.05, 0.12)
    end = o.pos[:2] + u[:2] * (dist - r - _FINGER_SIDE) + u[:2] * 0.0
    yaw = ang - np.pi / 2                           # tool y along the push
    b.transit(start[0], start[1], z, yaw=yaw, ap=0.0)
    b.hold(0.05)
    total = float(np.linalg.norm(end - start))
    b.move(x=end[0], y=end[1], T=max(0.3, 1.875 * total / speed))
    b.hold(0.05)
    back = end - u[:2] * 0.015
    b.move(x=back[0], y=back[1], T=0.15)
    b.move(z=b.z_safe, T=0.3)
    return dict(direction=u[:2].round(4).tolist(), distance=round(dist, 4), speed=round(speed, 3))


def grasp_axis(o: ObjState):
    """Closing direction (3,) and object width along it for the narrowest horizontal grasp."""
    best = None
    for a in o.horizontal_axes():
        w = o.width_along(a)
        if best is None or w < best[1]:
            best = (a, w)
    return best


def graspable(o: ObjState) -> bool:
    return o.on_table and grasp_axis(o)[1] <= MAX_GRASP_WIDTH and o.height >= 0.018


def _free_spot(o: ObjState, others: list, rng):
    """A random free table position (2,) for o, or None."""
    r = 0.5 * np.hypot(*(o.hi[:2] - o.lo[:2]))
    for _ in range(100):
        xy = rng.uniform(-WORKSPACE_R, WORKSPACE_R, 2)
        if np.hypot(*xy) > WORKSPACE_R or np.hypot(*(xy - o.pos[:2])) < 0.04:
            continue
        if all(np.hypot(*(xy - p.pos[:2])) > r + 0.5 * np.hypot(*(p.hi[:2] - p.lo[:2])) + 0.03
               for p in others if p.id != o.id and p.lo[2] > -0.05):   # not taken away (faults)
            return xy
    return None


def plan_grasp(b, o, others, rng, kind='pick_place'):
    """Grasp o, lift, then place it elsewhere (pick_place) or release it in the air (drop)."""
    a, w = grasp_axis(o)
    yaw = np.arctan2(a[1], a[0])
    ap_open = min(w + rng.uniform(0.025, 0.04), MAX_APERTURE)
    bottom = max(o.lo[2], 0.0)
    zg = bottom + float(np.clip(0.4 * o.height, 0.007, o.height - 0.012))
    b.transit(o.pos[0], o.pos[1], o.top + 0.03, yaw=yaw, ap=ap_open)
    b.move(z=zg, v=0.15)
    b.move(ap=0.0, T=rng.uniform(0.2, 0.35))
    b.hold(0.15)
    params = dict(grasp_height=round(zg - bottom, 4), width=round(w, 4))
    if kind == 'drop':
        h = rng.uniform(0.06, 0.18)
        b.move(z=zg + h, v=rng.uniform(0.15, 0.3))
        b.hold(rng.uniform(0.1, 0.2))
        b.move(ap=ap_open, T=0.08)
        b.hold(0.5)
        b.move(z=max(b.cur[2], b.z_safe), T=0.3)
        params['drop_height'] = round(h, 4)
        return params
    lift = rng.uniform(0.05, 0.1)
    dst = _free_spot(o, others, rng)
    if dst is None:
        dst = o.pos[:2]
    z_carry = max(zg + lift, b.z_safe + (zg - bottom))
    b.move(z=z_carry, v=0.2)
    b.move(x=dst[0], y=dst[1], v=0.25)
    sink = rng.uniform(0.004, 0.012)   # aim slightly below the table: a gentle place click
    b.move(z=zg - bottom - sink, v=rng.uniform(0.1, 0.2))
    b.hold(0.1)
    b.move(ap=ap_open, T=0.2)
    b.move(z=b.z_safe, T=0.35)
    params.update(place=np.round(dst, 4).tolist(), lift=round(lift, 4))
    return params


def plan_idle(b, rng):
    """Wander through 1-3 points above everything: motion, no contact."""
    for _ in range(int(rng.integers(1, 4))):
        xy = rng.uniform(-0.15, 0.15, 2)
        b.move(x=xy[0], y=xy[1], z=b.z_safe + rng.uniform(0.02, 0.1),
               yaw=b.cur[3] + rng.uniform(-1.0, 1.0), ap=rng.uniform(0.0, 0.08),
               v=rng.uniform(0.25, 0.5))
        b.hold(rng.uniform(0.05, 0.3))
    return {}


def plan_ambiguous(b, o, other, rng, kind='tap'):
    """Strike the taller object o of the ambiguous pair so that only the sound tells which one.

    The closed fingers (side by side along tool x, together 4 * FINGER_HALF[0] = 28 mm long)
    lie across the gap (< 10 mm), hover exactly above its middle and go straight down: the finger
    on o's side lands on o's top edge next to the gap (2-5 mm planned depth, less than the height
    difference, so `other` is never touched). At the onset the wrist camera (behind the fingers
    along tool y, image x = tool x) sees the two objects left and right of the fingers; the
    wrist faces the gap from either side at random, so the struck object is left or right in the
    image with equal chance (with the usual half-turn-symmetric yaw, the previous action's yaw
    decided it: 73 % on the right).
    """
    u = other.pos[:2] - o.pos[:2]
    u = u / max(np.linalg.norm(u), 1e-6)
    u3 = np.r_[u, 0.0]
    r_o, r_x = 0.5 * o.width_along(u3), 0.5 * other.width_along(u3)
    gap = float(np.linalg.norm(other.pos[:2] - o.pos[:2]) - r_o - r_x)
    mid = o.pos[:2] + u * (r_o + 0.5 * gap)
    hover, _, v, reps = _strike_params(kind, rng)
    depth = min(rng.uniform(0.002, 0.005), 0.5 * (o.top - other.top))
    p = np.r_[mid, o.top]
    yaw = np.arctan2(u[1], u[0]) + (np.pi if rng.random() < 0.5 else 0.0)
    b.transit(mid[0], mid[1], o.top + hover, yaw=yaw, ap=0.0, turn=2 * np.pi)
    params = _strikes(b, p, kind, hover, depth, v, reps, rng)
    params['point'] = np.r_[mid - u * FINGER_HALF[0], o.top].round(4).tolist()   # finger tip
    return dict(params, mode='gap', ambiguous=True, pair=[o.id, other.id], gap=round(gap, 4))


def plan_lone(b, o, other, rng, kind='tap'):
    """Strike object o of the ambiguous pair alone: on its far side from ``other``, the closed
    fingers lying along the gap (not across it), so that only o is at the fingertips. The
    ``alternating`` scenario mixes these with gap strikes (``plan_ambiguous``): what the robot
    hears of each object alone is what it can remember."""
    u = other.pos[:2] - o.pos[:2]
    u = u / max(np.linalg.norm(u), 1e-6)
    r_o = 0.5 * o.width_along(np.r_[u, 0.0])
    inset = r_o - 0.004 if o.shape in ('cup', 'bowl') else 0.35 * r_o       # rim or top
    xy = o.pos[:2] - u * inset
    p = np.r_[xy, o.top]
    hover, depth, v, reps = _strike_params(kind, rng)
    yaw = np.arctan2(u[1], u[0]) + np.pi / 2 + (np.pi if rng.random() < 0.5 else 0.0)
    b.transit(xy[0], xy[1], o.top + hover, yaw=yaw, ap=0.0, turn=2 * np.pi)
    params = _strikes(b, p, kind, hover, depth, v, reps, rng)
    return dict(params, mode='lone', ambiguous=False, pair=[o.id, other.id])


def side_by_side(a: ObjState, b: ObjState) -> bool:
    """Whether the ambiguous pair is still on the table a few millimetres apart (a fault may have
    moved one of them away)."""
    u = np.r_[b.pos[:2] - a.pos[:2], 0.0]
    u /= max(np.linalg.norm(u), 1e-6)
    gap = np.linalg.norm(b.pos[:2] - a.pos[:2]) - 0.5 * (a.width_along(u) + b.width_along(u))
    return a.on_table and b.on_table and gap < PAIR_GAP[1] + 0.01


def schedule(scenario: str, n_actions, objects: list, rng, pair=()) -> list:
    """The action sequence of an episode: list of (type, target id), and for the
    ``alternating`` scenario (type, target id, None, 'lone' | 'gap')."""
    ids = [o.id for o in objects]
    if scenario == 'alternating':
        # each object of the pair struck alone first (in random order), then gap strikes and lone
        # strikes of either object alternate, as touches of the same objects do in real work
        n = int(n_actions) if n_actions is not None else int(rng.integers(6, 10))
        kinds = rng.choice(['tap', 'tap', 'knock', 'hit'], size=n)
        lone = rng.choice(['tap', 'tap', 'knock'], size=n)      # a hit on one edge can tip it
        first = [int(i) for i in rng.permutation(list(pair))]
        out = []
        for k in range(n):
            if k < 2:
                out.append((str(lone[k]), first[k], None, 'lone'))
            elif k % 2 == 0:
                out.append((str(kinds[k]), int(pair[0]), None, 'gap'))
            else:
                out.append((str(lone[k]), int(rng.choice(list(pair))), None, 'lone'))
        return out
    if scenario == 'ambiguous':
        n = int(n_actions) if n_actions is not None else int(rng.integers(3, 7))
        kinds = rng.choice(['tap', 'tap', 'knock', 'hit'], size=n)
        tall = max((o for o in objects if o.id in pair), key=lambda o: o.size[2]).id
        return [(str(k), int(tall)) for k in kinds]
    n = int(n_actions) if n_actions is not None else int(rng.integers(4, 9))
    names = list(_MIXED_P)
    p = np.array([_MIXED_P[k] for k in names])
    kinds = rng.choice(names, size=n, p=p / p.sum())
    return [(str(k), 0 if k == 'idle' else int(rng.choice(ids))) for k in kinds]


def plan_action(kind: str, target: int, t0: float, q0, objects: dict, rng, pair=(),
                mode: str | None = None) -> Plan:
    """Plan one action from the current gripper configuration q0 (5,) at time t0.

    mode 'lone': a strike of a pair member alone (``plan_lone``), not at the gap.

    objects: id -> ObjState (current). Actions whose target left the table are re-targeted to
    another object on the table, or become idle; ungraspable targets are tapped instead.
    """
    on = [o for o in objects.values() if o.on_table]
    z_safe = max([o.top for o in objects.values() if o.lo[2] > -0.05] + [0.0]) + 0.04
    z_safe = float(np.clip(z_safe, 0.06, 0.3))
    b = _Builder(t0, q0, z_safe)
    if kind != 'idle' and not any(o.id == target for o in on):
        if not on:
            kind = 'idle'
        else:
            target = int(rng.choice([o.id for o in on]))
    if kind in ('pick_place', 'drop') and not graspable(objects[target]):
        kind = 'tap'
    params = {}
    if mode == 'lone' and pair and target in pair and kind in ('tap', 'hit', 'knock'):
        params = plan_lone(b, objects[target], objects[[i for i in pair if i != target][0]], rng,
                           kind)
    elif pair and target in pair and kind in ('tap', 'hit', 'knock') and side_by_side(
            *(objects[i] for i in pair)):
        o, other = sorted((objects[i] for i in pair), key=lambda s: -s.top)   # strike the taller
        target = o.id
        params = plan_ambiguous(b, o, other, rng, kind)
    elif kind in ('tap', 'hit', 'knock'):
        params = plan_tap(b, objects[target], rng, kind)
    elif kind == 'scrape':
        params = plan_scrape(b, objects[target], rng)
    elif kind == 'push':
        params = plan_push(b, objects[target], rng)
    elif kind in ('pick_place', 'drop'):
        params = plan_grasp(b, objects[target], list(objects.values()), rng, kind)
    else:
        kind, target = 'idle', 0
        params = plan_idle(b, rng)
    # Keep the TCP within the joint ranges.
    q = np.array(b.q)
    q[:, :2] = np.clip(q[:, :2], -REACH + 0.01, REACH - 0.01)
    q[:, 2] = np.clip(q[:, 2], 0.0 - 0.02, 0.4)
    q[:, 4] = np.clip(q[:, 4], 0.0, MAX_APERTURE)
    b.q = list(q)
    return b.plan(kind, target, params)
