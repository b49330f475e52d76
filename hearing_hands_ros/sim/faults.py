"""Faults: actions that go wrong after their paths were published (the planner did not know).

An execution monitor compares the contacts a planned path was expected to make with what the
wrist microphone hears. To evaluate it, `SoundWorld` makes a share `SimConfig.faults` of the
actions go wrong: per action a draw from an rng seeded by ``[seed, FAULT_SEED]`` (independent of
the scene, schedule and sound rngs) decides whether, and which of the kinds in
`SimConfig.fault_kinds` the action can take (uniformly); a script entry
``(type, target, kind)`` forces one. The fault is applied when the action's contact-motion path
has been published (`Plan.contact_start`; idle: at 20-40 % of its single path):

* ``moved``: the target jumps 6-10 cm sideways to a free spot on the table (clear of the other
  objects and of the whole remaining planned gripper motion), so the planned contact meets
  nothing; with no free spot it is ``removed`` instead.
* ``removed``: the target is taken away: its collisions are switched off and it is held under the
  table slab (hidden from the camera, no contacts, no sound).
* ``obstacle``: a small plate (a mocap body, immovable like a fixture, of an object material
  drawn per episode) appears on the path so that the fingers strike it part-way along the
  contact motion (idle: along its path), before the planned contact. Any action type.
* ``slip`` (pick_place, drop): part-way through the lift or carry the executed finger aperture
  opens (the executed reference deviates from the published plan): the object drops early.

The planned gripper geometry used for placing things is a set of spheres: 8 along each capsule
finger and 5 along the palm (`gripper_spheres`), moved along the plan sampled at 500 Hz-1 kHz.
"""
from __future__ import annotations

import numpy as np

from .actions import ObjState, Plan, min_jerk
from .scene import FINGER_HALF, FINGER_LEN, REACH

FAULT_KINDS = ('moved', 'removed', 'obstacle', 'slip')
FAULT_SEED = 0xFA17
PARK = np.array([0.0, 0.0, -1.0])   # removed objects: under the table slab [m]
SHIFT = (0.06, 0.10)                 # [m] horizontal jump of a moved object
CLEAR = 0.01                         # [m] moved object: clearance to objects and planned gripper
MARGIN = 0.004                       # [m] obstacle: clearance to every object
OPEN_TIME = 0.08                     # [s] slip: the fingers open this fast (as a drop's release)
_FT = FINGER_HALF[0]
_FINGER_Z = np.linspace(_FT, FINGER_LEN - _FT, 8)      # capsule axis samples above the TCP [m]
_PALM_X = np.linspace(-0.05, 0.05, 5)                  # palm box 0.12 x 0.044 x 0.024 m
_RADII = np.r_[np.full(16, _FT), np.full(5, 0.022)]    # (21,) [m]


# ------------------------------------------------------------------------------ choosing
def eligible(kind: str, action: str) -> bool:
    """Whether an action of type `action` can take fault `kind`."""
    if kind in ('moved', 'removed'):
        return action != 'idle'
    if kind == 'slip':
        return action in ('pick_place', 'drop')
    return kind == 'obstacle'


def check_kinds(kinds) -> tuple:
    """`kinds` as a tuple of known fault kinds (ValueError otherwise)."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad or not kinds:
        raise ValueError(f'fault kinds must be some of {FAULT_KINDS}, not {kinds!r}')
    return kinds


def script_entry(entry) -> tuple:
    """A script entry (type, target) or (type, target, fault kind) -> (type, target, kind|None)."""
    if len(entry) == 2:
        return str(entry[0]), int(entry[1]), None
    kind, target, fault = entry
    check_kinds([fault])
    if not eligible(fault, kind):
        raise ValueError(f'an action of type {kind!r} cannot take the fault {fault!r}')
    return str(kind), int(target), str(fault)


def draw(u: float, v: float, share: float, kinds: tuple, action: str):
    """The drawn fault kind of an action (None: no fault) from two uniform numbers u, v."""
    options = [k for k in kinds if eligible(k, action)]
    if u >= share or not options:
        return None
    return options[min(int(v * len(options)), len(options) - 1)]


def injection_time(plan: Plan, rng) -> float:
    """When the fault is applied [s]: the contact motion's start (idle: 20-40 % of its path)."""
    if plan.contact_start is not None:
        return float(plan.contact_start)
    return plan.start + float(rng.uniform(0.2, 0.4)) * (plan.end - plan.start)


# ------------------------------------------------------------------------------ planned geometry
def gripper_spheres(q: np.ndarray) -> np.ndarray:
    """Sphere centres (n, 21, 3) [m] of the gripper at configurations q (n, 5) (radii `_RADII`):
    8 along each finger axis (tool x = +-(aperture / 2 + finger radius)), 5 along the palm."""
    n = len(q)
    xf = np.repeat(0.5 * q[:, 4:5] + _FT, 8, axis=1)                     # (n, 8)
    lx = np.concatenate([xf, -xf, np.broadcast_to(_PALM_X, (n, 5))], 1)  # (n, 21)
    lz = np.r_[_FINGER_Z, _FINGER_Z, np.full(5, FINGER_LEN + 0.012)]     # (21,)
    c, s = np.cos(q[:, 3:4]), np.sin(q[:, 3:4])
    return q[:, None, :3] + np.stack([c * lx, s * lx, np.broadcast_to(lz, lx.shape)], -1)


def _gap(points: np.ndarray, lo, hi) -> np.ndarray:
    """Distance (...,) from the gripper spheres (..., 21, 3) to the box [lo, hi] minus the radii,
    the smallest per configuration (< 0: they overlap)."""
    d = np.maximum(np.maximum(lo - points, points - hi), 0.0)
    return (np.sqrt((d * d).sum(-1)) - _RADII).min(-1)


def _sample(plan: Plan, t_from: float, hz: float = 1000.0):
    """Times (n,) from t_from to the plan's end, and the planned q (n, 5), qd (n, 5) there."""
    t = np.arange(t_from, plan.end, 1.0 / hz)
    q, qd = plan.sample(t)
    return t, q, qd


def planned_contact(plan: Plan, st: ObjState, t_from: float) -> float:
    """Time [s] the planned gripper would first touch the object's box `st` after t_from: the
    contact the unfaulted motion would have made (exact for strikes onto a top; the bounding box
    makes it a little early for sideways touches of round things). With no touch: when the TCP
    is lowest in the contact motion."""
    t, q, _ = _sample(plan, t_from)
    if not len(t):
        return float(t_from)
    hit = np.nonzero(_gap(gripper_spheres(q), st.lo, st.hi) <= 0.0)[0]
    return float(t[hit[0]] if len(hit) else t[np.argmin(q[:, 2])])


# ------------------------------------------------------------------------------ moved
def free_shift(st: ObjState, states: dict, plan: Plan, t_from: float, rng):
    """A horizontal shift (2,) [m] of 6-10 cm that puts object `st` on a free spot within reach,
    clear of the other objects' boxes and of the gripper's planned motion after t_from (12
    directions from a random start, random order), or None."""
    _, q, _ = _sample(plan, t_from, 500.0)
    pts = gripper_spheres(q)
    others = [s for s in states.values() if s.id != st.id and s.lo[2] > -0.05]
    phi = rng.uniform(0, 2 * np.pi) + 2 * np.pi * rng.permutation(12) / 12
    for p, d in zip(phi, rng.uniform(*SHIFT, 12)):
        dxy = d * np.array([np.cos(p), np.sin(p)])
        lo, hi = st.lo + np.r_[dxy, 0.0], st.hi + np.r_[dxy, 0.0]
        if np.any(np.abs(st.pos[:2] + dxy) > REACH - 0.07):
            continue
        if any(np.all(lo < o.hi + CLEAR) and np.all(o.lo - CLEAR < hi) for o in others):
            continue
        if len(q) and _gap(pts, lo - CLEAR, hi + CLEAR).min() <= 0.0:
            continue
        return dxy
    return None


# ------------------------------------------------------------------------------ obstacle
def _plate_frame(v: np.ndarray, rng) -> np.ndarray:
    """Rotation (3, 3) whose z column is the unit direction v; x horizontal (random about v when
    v is vertical)."""
    h = np.cross(v, [0.0, 0.0, 1.0])
    if np.linalg.norm(h) < 0.3:
        a = rng.uniform(-np.pi, np.pi)
        h = np.array([np.cos(a), np.sin(a), 0.0])
        h -= v * (h @ v)
    x = h / np.linalg.norm(h)
    return np.stack([x, np.cross(v, x), v], 1)


def place_obstacle(plan: Plan, states: dict, size, t_from: float, t_contact: float, rng):
    """Pose of an obstacle plate of full extents `size` (3,) (thin along its z) that the planned
    gripper strikes part-way between t_from + 0.05 s and t_contact - 0.03 s: in front of a
    finger (its lowest axis point, or 8-24 mm higher for sideways motions), facing the motion.
    Clear of every object's box by `MARGIN`, at least 2 mm above the table.
    Returns (centre (3,), R (3, 3), planned hit time [s]) or None."""
    half = 0.5 * np.asarray(size, float)
    t, q, qd = _sample(plan, t_from, 500.0)
    pts = gripper_spheres(q)                                             # (n, 21, 3)
    speed = np.linalg.norm(qd[:, :3], axis=1)
    lo_t, hi_t = t_from + 0.05, t_contact - 0.03
    cand = np.nonzero((t >= lo_t + 0.03) & (t <= hi_t) & (speed > 0.02))[0]
    boxes = [(s.lo - MARGIN, s.hi + MARGIN) for s in states.values() if s.lo[2] > -0.05]
    for i in rng.permutation(cand)[:150]:
        v = qd[i, :3] / speed[i]
        R = _plate_frame(v, rng)
        ext = np.abs(R) @ half                                           # world half extents
        for side in rng.permutation([0, 8]):
            for j in ((0,) if abs(v[2]) > 0.9 else (0, 1, 2, 3)):   # 8 mm steps up the finger
                centre = pts[i, side + j] + v * (_FT + half[2] + 0.001)
                lo, hi = centre - ext, centre + ext
                if lo[2] < 0.002 or any(np.all(lo < b[1]) and np.all(b[0] < hi) for b in boxes):
                    continue
                local = (pts - centre) @ R                               # plate frame
                hit = np.nonzero(_gap(local, -half, half) <= 0.0)[0]
                if len(hit) and lo_t <= t[hit[0]] <= hi_t:
                    return centre, R, float(t[hit[0]])
    return None


# ------------------------------------------------------------------------------ slip
def slip_time(plan: Plan, rng) -> float:
    """When the fingers start opening [s]: pick_place from half-way through the lift to 3/4 of
    the carry; drop from half-way through the lift to its end (the planned release comes after a
    hold). Keyframes after `contact_start` (actions.plan_grasp): descend, close, hold, lift,
    then carry (pick_place)."""
    k0 = int(np.argmin(np.abs(plan.times - plan.contact_start)))
    tl0, tl1 = plan.times[k0 + 3], plan.times[k0 + 4]
    end = plan.times[k0 + 4] + 0.75 * (plan.times[k0 + 5] - tl1) if plan.kind == 'pick_place' \
        else tl1
    return float(rng.uniform(tl0 + 0.5 * (tl1 - tl0), end))


def slip_reference(t: np.ndarray, ref: np.ndarray, refd: np.ndarray, t_slip: float,
                   aperture: float) -> None:
    """Open the executed reference (n, 5) and its rate (n, 5) at times t (n,) in place: from
    t_slip the aperture ramps (min-jerk, `OPEN_TIME`) to `aperture` [m] and stays at least that
    open (the plan's own opening later on joins it)."""
    k = np.searchsorted(t, t_slip)
    if k >= len(t):
        return
    a0 = ref[k, 4]
    s, ds = min_jerk((t[k:] - t_slip) / OPEN_TIME)
    ramp = a0 + (aperture - a0) * s
    use = ramp > ref[k:, 4]
    ref[k:, 4] = np.where(use, ramp, ref[k:, 4])
    refd[k:, 4] = np.where(use, (aperture - a0) * ds / OPEN_TIME, refd[k:, 4])
