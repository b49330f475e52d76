"""The sound world: MuJoCo physics + scripted gripper + modal contact sounds, as an event stream.

    world = SoundWorld(SimConfig(scenario='mixed', seed=0))
    for ev in world.run():           # chronological; deterministic for a seed
        ...                          # ev.kind in {'path', 'pose', 'image', 'audio'}
    world.truth                      # ground truth (docs/contract.md), complete after run()

Each physics step (`physics_hz`, default 1000 Hz) reads the contacts (normal force = sum of the
pyramidal-cone constraint forces of the contact; relative velocity of the two bodies at the
contact point from `cvel`) and groups them by sounding pair (object k >= 1, table 0, gripper -1):

* impact: a new contact (the pair was apart for `SEPARATION`) approaching faster than
  `V_IMPACT`, or a contact point of an ongoing contact approaching faster than `V_SLAP` (a
  toppling box slapping the table), outside the pair's refractory time. Its impulse is the
  momentum change of a collision, J = (1 + e) m_n v_n: v_n the approach speed of the fastest
  contact point, m_n = 1 / (n^T J M^-1 J^T n) the effective mass of the two bodies along the
  contact normal there (MuJoCo's joint-space inertia; the table is immovable), e = sqrt(e_1 e_2)
  the materials' restitution (MuJoCo's contacts are critically damped and do not bounce;
  the synth's Hertz pulse assumes the same J = (1 + e) m v). So the struck object's modal
  velocity J / m_obj is at most (1 + e) v_n, however light it is. Integrating the simulated
  normal force over the first milliseconds instead (as before) counted the gripper's servo
  pressing on through the object into the table, 0.3-1 N s on hits: a quasi-static force that
  radiates nothing, but which the synth played as a sharp pulse (hits on light plastic boxes
  peaked up to 15 dB over digital full scale).
  Below `J_MIN` it is not a sound event.
* slide: the pair presses (> `F_SLIDE`) and slips faster than `V_SLIDE`. Handed to the synth
  in `SLIDE_PIECE` pieces of mean force / speed; in the ground truth, a scrape event per
  sliding stretch (gaps < `SLIDE_GAP` bridged) of at least `MIN_SCRAPE`, with its duration and
  its impulse = integral of the normal force over it [N s].

Resting contacts have no approach or slip speed and so make no sound. Audio chunks are rendered
once physics is `IMPACT_WINDOW` past their end, so every excitation lands in the right chunk;
the events are released in time order through a small priority queue.
"""
from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

os.environ.setdefault('MUJOCO_GL', 'osmesa')
import mujoco  # noqa: E402

from . import actions as act  # noqa: E402
from . import faults as flt  # noqa: E402
from .materials import get_material  # noqa: E402
from .modal import Excitation, ModalSynth, ObjectSound  # noqa: E402
from .scene import (CAM_FOVY, GRIPPER_HOME, GRIPPER_ID, OBSTACLE_PARK, SCENARIOS, TABLE_ID,  # noqa: E402
                    add_obstacle, generate_scene, geom_sound_ids, label_lut, sample_obstacle)

DEFAULT_START_NS = 1_767_225_600 * 10 ** 9

V_IMPACT = 0.02        # [m/s] approach speed of a new contact that counts as an impact
V_SLAP = 0.1           # [m/s] ... of a new point of an ongoing contact (a toppling box lands)
# SEPARATION: a pair apart at least this long makes a new contact (bounces are longer; contact
# flicker of rattling/rocking bodies is shorter)
SEPARATION = 0.008     # [s]
J_MIN = 2e-4           # [N s] smallest impulse that is a sound event
IMPACT_WINDOW = 0.006  # [s] audio is rendered this long after physics (pulses fit in a chunk)
REFRACTORY = 0.03      # [s] per pair, after an impact onset
F_SLIDE = 0.05         # [N] least normal force of a sounding slide
V_SLIDE = 0.005        # [m/s] least slip speed of a sounding slide
SLIDE_PIECE = 0.004    # [s] slide excitations are averaged over pieces this long
SLIDE_GAP = 0.03       # [s] slip pauses shorter than this stay within one scrape
MIN_SCRAPE = 0.03      # [s] shortest scrape recorded in the ground truth
SETTLE = 0.3           # [s] unrecorded physics before t = 0 (objects come to rest)
LEAD_IN = 0.25         # [s] still gripper before the first action
TAIL = 0.6             # [s] after the last action (sounds ring out)
PATH_HZ = 50.0         # [Hz] sampling of the published planned path
# The fault obstacle does not move (a mocap body, like a fixture): the synth rings it as a body of
# this mass [kg] (its own few grams would turn the gripper's impulse into a deafening ring)
OBSTACLE_SOUND_MASS = 1.0


@dataclass
class SimConfig:
    """Episode configuration (docs/contract.md)."""

    scenario: str = 'mixed'            # one of SCENARIOS
    seed: int = 0
    n_actions: int | None = None       # None: scenario default (mixed 4-8, ambiguous 3-6)
    width: int = 128
    height: int = 128
    fps: float = 30.0
    sample_rate: int = 16000
    chunk_samples: int = 512
    physics_hz: int = 1000             # >= 1000
    pose_hz: float = 100.0
    start_time_ns: int = DEFAULT_START_NS
    # seed of the sound synthesis (object modes' jitter, strike weights, slide noise, room, noise
    # floor); None = ``seed``. Another value records a second take of the same scene and motion
    sound_seed: int | None = None
    # share of the eligible actions that go wrong after their paths were published (sim/faults.py)
    faults: float = 0.0
    fault_kinds: tuple = flt.FAULT_KINDS

    def __post_init__(self):
        if not 0.0 <= self.faults <= 1.0:
            raise ValueError(f'faults must be in [0, 1], not {self.faults}')
        self.fault_kinds = flt.check_kinds(self.fault_kinds)


@dataclass
class PathEvent:
    t: float
    times: np.ndarray                  # (M,) absolute episode seconds
    positions: np.ndarray              # (M, 3) TCP positions in world [m]
    orientations: np.ndarray           # (M, 4) xyzw
    action: str
    index: int = 0
    apertures: np.ndarray | None = None  # (M,) planned finger opening [m] (the gripper's plan)
    kind: ClassVar[str] = 'path'


@dataclass
class PoseEvent:
    t: float
    position: np.ndarray               # (3,) TCP in world [m]
    orientation: np.ndarray            # (4,) xyzw
    aperture: float                    # finger opening [m]
    kind: ClassVar[str] = 'pose'


@dataclass
class ImageEvent:
    t: float
    rgb: np.ndarray                    # (H, W, 3) uint8
    labels: np.ndarray                 # (H, W) uint8: 0 background, 255 gripper, k object id
    camera_pose: tuple                 # (pos (3,), quat (4,) xyzw) of the optical frame in world
    kind: ClassVar[str] = 'image'


@dataclass
class AudioEvent:
    t: float                           # time of the first sample
    samples: np.ndarray                # (N,) float32 in [-1, 1]
    kind: ClassVar[str] = 'audio'


_PRIORITY = {'path': 0, 'pose': 1, 'image': 2, 'audio': 3}


def _quat_xyzw(wxyz) -> np.ndarray:
    return np.array([wxyz[1], wxyz[2], wxyz[3], wxyz[0]])


def _mat_to_xyzw(R) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(R, float).reshape(9))
    return _quat_xyzw(q)


def _jsonable(x):
    """numpy scalars/arrays inside dicts and lists -> plain Python."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


@dataclass
class _Pair:
    """Sound state of one pair of bodies (a > b in sound-id order)."""

    a: int
    b: int
    force: float = 0.0                 # normal force of the last step [N]
    last: int = -10 ** 9               # last step in contact
    refractory: int = -1               # no impact onset before this step
    # slide piece (synth) and scrape stretch (truth)
    piece: list = field(default_factory=list)   # [(step, F, v, pos)]
    scrape: dict | None = None


class SoundWorld:
    """A randomized scene and an episode of scripted actions, streamed as events."""

    def __init__(self, cfg: SimConfig | None = None, script: list | None = None, **overrides):
        """cfg: the episode configuration (or its fields as keyword overrides).
        script: optional fixed action list [(type, target id), ...] instead of the scenario's
        random schedule (tests, demos); an entry (type, target id, fault kind) forces that fault
        on the action (besides the random ones; it does not use up their share)."""
        cfg = cfg or SimConfig(**overrides)
        self.script = [flt.script_entry(e) for e in script] if script is not None else None
        self._forced = {k: e[2] for k, e in enumerate(self.script or []) if e[2] is not None}
        if cfg.physics_hz < 1000:
            raise ValueError('physics_hz must be >= 1000')
        if cfg.scenario not in SCENARIOS:
            raise ValueError(f'unknown scenario {cfg.scenario!r}')
        self.cfg = cfg
        self.dt = 1.0 / cfg.physics_hz
        self.scene = generate_scene(cfg.seed, cfg.scenario, timestep=self.dt)
        # the obstacle is in the model only where a fault may need it: other episodes unchanged
        self.obstacle = None
        xml = self.scene.xml
        if (cfg.faults > 0 and 'obstacle' in cfg.fault_kinds) or 'obstacle' in self._forced.values():
            rng = np.random.default_rng([cfg.seed, flt.FAULT_SEED, 1])
            self.obstacle = sample_obstacle(max(o.id for o in self.scene.objects) + 1, rng)
            xml = add_obstacle(xml, self.obstacle, rng)
        m = self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(m)
        jid = lambda n: m.joint(n).qposadr[0]  # noqa: E731
        self._qadr = np.array([jid(n) for n in ('gx', 'gy', 'gz', 'gyaw', 'finger_r', 'finger_l')])
        self._cam = m.camera('wrist_camera').id
        self._mic = m.site('wrist_mic').id
        self._tcp_body = m.body('gripper').id
        # velocity feed-forward of the position servos: ctrl = q + (kv / kp) qdot
        self._ff = -m.actuator_biasprm[:, 2] / m.actuator_gainprm[:, 0]
        sounding = self.scene.objects + ([self.obstacle] if self.obstacle else [])
        self.sound_id = geom_sound_ids(m, sounding)                    # (ngeom,)
        self._lut = label_lut(self.sound_id)                           # (ngeom + 1,)
        self._obj_bodies = {o.id: m.body(o.name).id for o in self.scene.objects}
        self._materials = {TABLE_ID: 'table', GRIPPER_ID: 'gripper',
                           **{o.id: o.material for o in sounding}}
        # collision filters: faults switch bodies' collisions off and on; run() restores them
        self._collide0 = [a.copy() for a in (m.geom_contype, m.geom_conaffinity,
                                             m.body_contype, m.body_conaffinity)]
        for o in self.scene.objects:    # physics mass (compiled) is the truth
            o.mass = float(m.body_subtreemass[self._obj_bodies[o.id]])
        self._settle()
        self.truth = self._new_truth()

    # ------------------------------------------------------------------ setup
    def _settle(self):
        """Gripper home, objects come to rest; the snapshot is the episode's t = 0."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        q0 = np.r_[GRIPPER_HOME, 0.0, 0.02, 0.02]
        d.qpos[self._qadr] = q0
        d.ctrl[:] = q0
        for _ in range(int(round(SETTLE / self.dt))):
            mujoco.mj_step(m, d)
        d.qvel[:] = 0.0
        d.time = 0.0
        mujoco.mj_forward(m, d)
        self._snapshot = (d.qpos.copy(), d.qvel.copy(), d.ctrl.copy(), d.act.copy())
        for o in self.scene.objects:
            o.position = d.xpos[self._obj_bodies[o.id]].copy()

    def _new_truth(self) -> dict:
        c = self.cfg
        cam = self.camera_info()
        R = np.zeros(9)
        mujoco.mju_quat2Mat(R, self.model.cam_quat[self._cam])
        R_opt = R.reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])   # MuJoCo camera -> OpenCV optical
        return _jsonable({
            'version': 1, 'seed': c.seed, 'scenario': c.scenario, 'duration': None,
            'start_time_ns': c.start_time_ns, 'frame_id': 'world',
            'audio': {'sample_rate': c.sample_rate, 'chunk_samples': c.chunk_samples,
                      **({'sound_seed': c.sound_seed} if c.sound_seed is not None else {})},
            'camera': {'width': c.width, 'height': c.height, 'fps': c.fps, 'K': cam['K'],
                       'frame_id': cam['frame_id'],
                       'T_tcp_camera': {'position': self.model.cam_pos[self._cam].tolist(),
                                        'orientation': _mat_to_xyzw(R_opt).tolist()}},
            'objects': self.scene.describe(),
            'actions': [], 'contacts': [], 'faults': []})

    def camera_info(self) -> dict:
        """Pinhole intrinsics of the wrist camera (OpenCV convention, pixel centres at integers)."""
        w, h = self.cfg.width, self.cfg.height
        f = 0.5 * h / np.tan(np.radians(CAM_FOVY) / 2)
        K = [f, 0.0, (w - 1) / 2, 0.0, f, (h - 1) / 2, 0.0, 0.0, 1.0]
        return dict(width=w, height=h, K=[float(k) for k in K], D=[0.0] * 5,
                    frame_id='wrist_camera_optical')

    # ------------------------------------------------------------------ state readers
    def _gripper_q(self) -> np.ndarray:
        """(5,) x, y, z, yaw, aperture from the joints."""
        q = self.data.qpos[self._qadr]
        return np.r_[q[:4], q[4] + q[5]]

    def object_states(self) -> dict:
        """id -> actions.ObjState from the current simulation state (world AABBs of the geoms)."""
        m, d = self.model, self.data
        out = {}
        for o in self.scene.objects:
            b = self._obj_bodies[o.id]
            gs = np.nonzero(m.geom_bodyid == b)[0]
            R = d.geom_xmat[gs].reshape(-1, 3, 3)                    # (G, 3, 3)
            c = d.geom_xpos[gs] + np.einsum('gij,gj->gi', R, m.geom_aabb[gs, :3])
            half = np.einsum('gij,gj->gi', np.abs(R), m.geom_aabb[gs, 3:])
            st = act.ObjState(o.id, o.shape, np.asarray(o.size), d.xpos[b].copy(),
                              d.xmat[b].reshape(3, 3).copy(), (c - half).min(0), (c + half).max(0))
            if st.upright_round:                        # exact horizontal extent of round things
                st.lo[:2] = st.pos[:2] - 0.5 * o.size[0]
                st.hi[:2] = st.pos[:2] + 0.5 * o.size[0]
            out[o.id] = st
        return out

    # ------------------------------------------------------------------ contacts -> sound
    def _read_contacts(self):
        """Per sounding pair: dict key -> (a, b, force [N], approach [m/s], slip [m/s], pos (3,),
        index of the fastest-approaching contact in `data.contact`).

        Vectorized over contacts; `approach` is the largest approach speed among the pair's
        contact points, `slip` and `pos` are normal-force-weighted means."""
        m, d = self.model, self.data
        if d.ncon == 0:
            return {}
        con = d.contact
        g = con.geom                                        # (n, 2)
        sid = self.sound_id[g]                              # (n, 2)
        adr = con.efc_address
        ok = (sid[:, 0] != sid[:, 1]) & (sid.min(1) >= GRIPPER_ID) & (adr >= 0)
        if not ok.any():
            return {}
        idx = np.nonzero(ok)[0]
        sid, g, adr = sid[idx], g[idx], adr[idx]
        # normal force: pyramidal cone rows each carry a normal component (sum over 2(dim-1))
        dim = con.dim[idx]
        rows = np.where(dim == 1, 1, 2 * (dim - 1))
        cs = np.cumsum(d.efc_force[:d.nefc])
        F = cs[adr + rows - 1] - np.where(adr > 0, cs[adr - 1], 0.0)    # (k,) [N]
        pos = con.pos[idx]                                  # (k, 3)
        a, b = sid.max(1), sid.min(1)
        keys = (a + 2) * 64 + (b + 2)
        uk = np.array(sorted(set(keys.tolist())))
        inv = np.searchsorted(uk, keys)
        Fs = np.bincount(inv, F)
        body = m.geom_bodyid[g]                             # (k, 2)
        cvel = d.cvel
        # Fast path: every body in contact is (nearly) still -> no impact, no slip possible.
        bound = (np.abs(cvel[:, 3:]).sum(1) + 0.3 * np.abs(cvel[:, :3]).sum(1))[body]
        if bound.max() < min(V_SLIDE, V_IMPACT):
            wgt = np.where(Fs[inv] > 1e-9, F / np.maximum(Fs[inv], 1e-12), 1.0)
            pos_p = np.stack([np.bincount(inv, wgt * pos[:, j]) for j in range(3)], 1)
            return {int(k): (int(k // 64 - 2), int(k % 64 - 2), float(Fs[j]), 0.0, 0.0, pos_p[j],
                             -1) for j, k in enumerate(uk)}
        nrm = con.frame[idx, :3]                            # (k, 3), from geom1 to geom2
        cv = cvel[body]                                     # (k, 2, 6) [rot, lin] at root com
        r = pos[:, None, :] - d.subtree_com[m.body_rootid[body]]        # (k, 2, 3)
        w = cv[..., :3]
        v = cv[..., 3:] + np.stack([w[..., 1] * r[..., 2] - w[..., 2] * r[..., 1],
                                    w[..., 2] * r[..., 0] - w[..., 0] * r[..., 2],
                                    w[..., 0] * r[..., 1] - w[..., 1] * r[..., 0]], -1)
        vrel = v[:, 1] - v[:, 0]                            # (k, 3)
        vn = (vrel * nrm).sum(1)
        approach = -vn                                      # > 0: geom2 moves toward geom1
        vt = vrel - vn[:, None] * nrm
        slip = np.sqrt((vt * vt).sum(1))
        wgt = np.where(Fs[inv] > 1e-9, F / np.maximum(Fs[inv], 1e-12),
                       1.0 / np.bincount(inv)[inv])         # per-contact weights within pair
        slip_p = np.bincount(inv, wgt * slip)
        pos_p = np.stack([np.bincount(inv, wgt * pos[:, j]) for j in range(3)], 1)
        o = np.lexsort((approach, inv))                    # by pair, then approach speed
        top = o[np.r_[np.nonzero(np.diff(inv[o]))[0], len(o) - 1]]      # fastest per pair
        return {int(k): (int(k // 64 - 2), int(k % 64 - 2), float(Fs[j]), float(approach[top[j]]),
                         float(slip_p[j]), pos_p[j], int(idx[top[j]])) for j, k in enumerate(uk)}

    def _impact_impulse(self, ci: int, v: float, a: int, b: int) -> float:
        """Collision impulse (1 + e) m_n v [N s] of contact `ci` approaching at v [m/s]; m_n =
        1 / (Jn M^-1 Jn^T) is the effective mass of its two bodies along the contact normal."""
        m, d = self.model, self.data
        con = d.contact
        jac = np.zeros((3, m.nv))
        Jn = np.zeros(m.nv)
        for sign, g in ((-1.0, con.geom[ci, 0]), (1.0, con.geom[ci, 1])):
            mujoco.mj_jac(m, d, jac, None, con.pos[ci], int(m.geom_bodyid[g]))
            Jn += sign * (con.frame[ci, :3] @ jac)
        M = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, d, M)
        inv_m = float(Jn @ np.linalg.solve(M, Jn))
        if inv_m <= 1e-9:
            return 0.0
        e = np.sqrt(get_material(self._materials[a]).restitution
                    * get_material(self._materials[b]).restitution)
        return float((1.0 + e) * v / inv_m)

    def _contact_step(self, i: int):
        """Update sound events with the contacts of the step that ended at state i."""
        t = (i - 1) * self.dt
        pairs = self._read_contacts()
        for key, (a, b, F, approach, slip, pos, ci) in pairs.items():
            st = self._pairs.get(key)
            if st is None:
                st = self._pairs[key] = _Pair(a, b)
            fresh = (i - 1 - st.last) * self.dt >= SEPARATION     # pair was apart long enough
            if i >= st.refractory and (approach > V_SLAP or (fresh and approach > V_IMPACT)):
                st.refractory = i + int(round(REFRACTORY / self.dt))
                self._finish_impact(dict(a=a, b=b, t=t, pos=pos, action=self._action_index,
                                         J=self._impact_impulse(ci, approach, a, b)))
            st.force, st.last = F, i
            if F > F_SLIDE and slip > V_SLIDE:
                self._slide(st, i, t, F, slip, pos)
        # close slide pieces / scrapes of pairs that stopped sliding
        for st in self._pairs.values():
            if st.piece and st.piece[-1][0] < i:
                self._flush_piece(st)
            if st.scrape is not None and (i - st.scrape['last']) * self.dt > SLIDE_GAP:
                self._finish_scrape(st)

    def _slide(self, st: _Pair, i, t, F, v, pos):
        if st.piece and (i // self._piece_steps) != (st.piece[0][0] // self._piece_steps):
            self._flush_piece(st)
        st.piece.append((i, F, v, pos))
        sc = st.scrape
        if sc is None:
            st.scrape = dict(t=t, pos=pos, last=i, J=F * self.dt, action=self._action_index)
        else:
            sc['last'] = i
            sc['J'] += F * self.dt

    def _flush_piece(self, st: _Pair):
        steps = np.array([p[0] for p in st.piece])
        F = np.mean([p[1] for p in st.piece])
        v = np.mean([p[2] for p in st.piece])
        pos = np.mean([p[3] for p in st.piece], axis=0)
        self._exc.append(Excitation(t=(steps[0] - 1) * self.dt, obj=st.a, other=st.b, kind='slide',
                                    normal_force=float(F), tangential_speed=float(v),
                                    position=tuple(pos), duration=len(steps) * self.dt))
        st.piece = []

    def _finish_scrape(self, st: _Pair):
        sc, st.scrape = st.scrape, None
        dur = sc['last'] * self.dt - sc['t']
        if dur >= MIN_SCRAPE:
            self._record(sc['t'], sc['pos'], st.a, st.b, 'scrape', sc['J'], dur, sc['action'])

    def _finish_impact(self, imp: dict):
        if imp['J'] < J_MIN:
            return
        self._exc.append(Excitation(t=imp['t'], obj=imp['a'], other=imp['b'], kind='impact',
                                    normal_impulse=float(imp['J']), position=tuple(imp['pos'])))
        self._record(imp['t'], imp['pos'], imp['a'], imp['b'], 'impact', imp['J'], 0.0,
                     imp['action'])

    def _record(self, t, pos, a, b, kind, impulse, duration, action):
        self.truth['contacts'].append(dict(
            time=round(float(t), 6), stamp_ns=self.cfg.start_time_ns + int(round(t * 1e9)),
            position=[round(float(x), 5) for x in pos], objects=[int(a), int(b)],
            materials=[self._materials[a], self._materials[b]], kind=kind,
            impulse=round(float(impulse), 7), duration=round(float(duration), 4),
            gripper=bool(b == GRIPPER_ID), action=int(action)))

    # ------------------------------------------------------------------ the episode
    def run(self):
        """Generator of events in chronological order (see module docstring)."""
        c, m, d = self.cfg, self.model, self.data
        qpos, qvel, ctrl, actv = self._snapshot
        for a, a0 in zip((m.geom_contype, m.geom_conaffinity, m.body_contype, m.body_conaffinity),
                         self._collide0):
            a[:] = a0
        mujoco.mj_resetData(m, d)
        d.qpos[:], d.qvel[:], d.ctrl[:], d.act[:] = qpos, qvel, ctrl, actv
        mujoco.mj_forward(m, d)
        self.truth = self._new_truth()
        self._pairs, self._exc = {}, []
        self._action_index = -1
        self._piece_steps = max(1, int(round(SLIDE_PIECE / self.dt)))
        self._heap, self._seq = [], 0
        self._i = 0
        self._end_step = None                     # episode end (state step), once known
        self._next_pose = self._next_frame = self._next_chunk = 0
        self._mic_at = {}
        self._chunk_dur = c.chunk_samples / c.sample_rate
        self._lag_steps = int(np.ceil((IMPACT_WINDOW + SLIDE_PIECE) / self.dt)) + 2
        rng = np.random.default_rng([c.seed, 0xAC7])
        frng = np.random.default_rng([c.seed, flt.FAULT_SEED])        # the per-action fault draw
        self._held, self._obstacle_on, self._obstacle_release = {}, False, False
        sounds = {o.id: ObjectSound(o.material, o.shape, tuple(map(float, o.size)), mass=o.mass)
                  for o in self.scene.objects}
        if self.obstacle:
            o = self.obstacle
            sounds[o.id] = ObjectSound(o.material, o.shape, tuple(map(float, o.size)),
                                       mass=OBSTACLE_SOUND_MASS)
        self._synth = ModalSynth(c.sample_rate, sounds,
                                 seed=c.seed if c.sound_seed is None else c.sound_seed)
        self._renderer = mujoco.Renderer(m, c.height, c.width)
        try:
            q_ref = self._gripper_q()
            yield from self._emit_due()
            for _ in range(int(round(LEAD_IN / self.dt))):
                yield from self._advance(q_ref, np.zeros(5))
            sched = self.script if self.script is not None else act.schedule(
                c.scenario, c.n_actions, self.scene.objects, rng, self.scene.pair)
            for k, (kind, target, *rest) in enumerate(sched):
                t0 = self._i * self.dt
                plan = act.plan_action(kind, target, t0, q_ref, self.object_states(), rng,
                                       self.scene.pair, mode=rest[1] if len(rest) > 1 else None)
                self._action_index = k
                for times, P, Q, ap in plan.paths(PATH_HZ):   # approach, then contact motion
                    self._push(PathEvent(float(times[0]), times, P, Q, plan.kind, k, ap))
                self.truth['actions'].append(_jsonable(dict(
                    index=k, type=plan.kind, start=round(plan.start, 6), end=round(plan.end, 6),
                    contact_start=None if plan.contact_start is None else round(plan.contact_start, 6),
                    target=plan.target, params=plan.params, fault=None)))
                n = int(round((plan.end - t0) / self.dt))
                ts = t0 + self.dt * np.arange(1, n + 1)
                ref, refd = plan.sample(ts)
                fault = self._fault_kind(k, plan, frng)
                drng = np.random.default_rng([c.seed, flt.FAULT_SEED, 2, k])
                j_inj = int(np.ceil((flt.injection_time(plan, drng) - t0) / self.dt - 1e-9)) \
                    if fault else -1
                for j in range(n):
                    if j == j_inj:       # the reference from step j on may change (slip)
                        self._inject(k, fault, plan, drng, ts[j:], ref[j:], refd[j:])
                    yield from self._advance(ref[j], refd[j])
                q_ref = ref[-1] if n else q_ref
                self._obstacle_release = self._obstacle_on     # gone once the fingers are clear
            # ring-out, then end on a whole audio chunk
            t_end = self._i * self.dt + TAIL
            n_chunks = int(np.ceil(t_end / self._chunk_dur - 1e-9))
            self.duration = n_chunks * self._chunk_dur
            self._end_step = int(np.ceil(self.duration / self.dt - 1e-9))
            self.truth['duration'] = round(self.duration, 6)
            while self._next_chunk < n_chunks:
                yield from self._advance(q_ref, np.zeros(5))
            for st in self._pairs.values():       # flush open scrapes
                if st.scrape is not None:
                    self._finish_scrape(st)
            self.truth['contacts'].sort(key=lambda e: (e['time'], e['kind'], e['objects']))
            self._obstacle_effects()
            yield from self._flush(np.inf)
        finally:
            self._renderer.close()

    # ------------------------------------------------------------------ faults (sim/faults.py)
    def _fault_kind(self, k: int, plan, frng):
        """The fault action k is to take: the script's, else drawn (two numbers per action always,
        so later draws do not depend on this one); None: none (or not one this action can take)."""
        u, v = frng.random(2)
        if k in self._forced:
            return self._forced[k] if flt.eligible(self._forced[k], plan.kind) else None
        return flt.draw(u, v, self.cfg.faults, self.cfg.fault_kinds, plan.kind)

    def _inject(self, k: int, kind: str, plan, rng, ts, ref, refd):
        """Apply fault `kind` to action k now and record it. ts (n,), ref (n, 5), refd (n, 5):
        the executed reference from now on (changed in place by a slip). An obstacle with no place
        on the path becomes another kind the action can take, a move with no free spot a removal."""
        t = self._i * self.dt
        states = self.object_states()
        st = states.get(plan.target)
        effect, params = None, {}
        if kind == 'obstacle':
            t_c = flt.planned_contact(plan, st, t) if st is not None else plan.end
            pose = flt.place_obstacle(plan, states, self.obstacle.size, t, t_c, rng)
            if pose is not None:
                params = self._show_obstacle(*pose)
            else:
                rest = [x for x in self.cfg.fault_kinds if x != 'obstacle' and flt.eligible(x, plan.kind)]
                kind = str(rng.choice(rest)) if rest else None
        if kind == 'moved':
            shift = flt.free_shift(st, states, plan, t, rng)
            if shift is None:
                kind = 'removed'
            else:
                self._shift_body(plan.target, shift)
                params = dict(shift=np.round(shift, 4))
        if kind == 'removed':
            self._remove_body(plan.target)
        if kind in ('moved', 'removed'):
            effect = flt.planned_contact(plan, st, t)      # the touch that will not come
        if kind == 'slip':
            effect = flt.slip_time(plan, rng)
            aperture = float(plan.q[:, 4].max())            # the plan's open grasp
            flt.slip_reference(ts, ref, refd, effect, aperture)
            params = dict(aperture=round(aperture, 4))
        if kind is None:
            return
        self.truth['actions'][-1]['fault'] = kind
        self.truth['faults'].append(_jsonable(dict(
            action=k, kind=kind, time=round(t, 6),
            effect_time=None if effect is None else round(effect, 6), params=params)))

    def _free_joint(self, oid: int):
        """(body, qpos address, dof address) of object oid's free joint."""
        m = self.model
        b = self._obj_bodies[oid]
        j = m.body_jntadr[b]
        return b, m.jnt_qposadr[j], m.jnt_dofadr[j]

    def _collide(self, body: int, on: bool):
        """Switch the collisions of a body's geoms on (contype = conaffinity = 1) or off."""
        m = self.model
        gs = m.geom_bodyid == body
        m.geom_contype[gs] = m.geom_conaffinity[gs] = int(on)
        m.body_contype[body] = m.body_conaffinity[body] = int(on)

    def _shift_body(self, oid: int, dxy):
        """Move object oid horizontally by dxy (2,) [m], at rest."""
        _, qa, va = self._free_joint(oid)
        self.data.qpos[qa:qa + 2] += dxy
        self.data.qvel[va:va + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def _remove_body(self, oid: int):
        """Take object oid away: collisions off, held at `faults.PARK` under the table slab."""
        b, qa, va = self._free_joint(oid)
        self._collide(b, False)
        self.data.qpos[qa:qa + 3] = flt.PARK
        self.data.qvel[va:va + 6] = 0.0
        self._held[b] = (qa, va, self.data.qpos[qa:qa + 7].copy())
        mujoco.mj_forward(self.model, self.data)

    def _show_obstacle(self, centre, R, t_hit) -> dict:
        """Place the obstacle (centre (3,) [m], rotation (3, 3)), collisions on; its truth params.
        The first placement adds it to the truth's objects (``"obstacle": true``)."""
        o, m, d = self.obstacle, self.model, self.data
        b = m.body(o.name).id
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, np.ascontiguousarray(R, float).reshape(9))
        d.mocap_pos[m.body_mocapid[b]], d.mocap_quat[m.body_mocapid[b]] = centre, quat
        self._collide(b, True)
        mujoco.mj_forward(m, d)
        self._obstacle_on, self._obstacle_release = True, False
        if not any(x.get('obstacle') for x in self.truth['objects']):
            self.truth['objects'].append(_jsonable(dict(
                o.describe(), initial_position=np.round(centre, 5), obstacle=True)))
        return dict(obstacle=o.id, position=np.round(centre, 5),
                    orientation=np.round(_quat_xyzw(quat), 5), planned_hit=round(t_hit, 6))

    def _hold_faulted(self):
        """Before a step: removed objects stay parked; a released obstacle goes back into the table
        slab once nothing touches it."""
        d = self.data
        for qa, va, pose in self._held.values():
            d.qpos[qa:qa + 7] = pose
            d.qvel[va:va + 6] = 0.0
        oid = self.obstacle.id if self.obstacle else None
        if self._obstacle_release and not any(
                st.last == self._i and oid in (st.a, st.b) for st in self._pairs.values()):
            m = self.model
            b = m.body(self.obstacle.name).id
            d.mocap_pos[m.body_mocapid[b]], d.mocap_quat[m.body_mocapid[b]] = OBSTACLE_PARK, (1, 0, 0, 0)
            self._collide(b, False)
            self._obstacle_on = self._obstacle_release = False

    def _obstacle_effects(self):
        """Each obstacle fault's effect time: its action's first contact with the obstacle."""
        for f in self.truth['faults']:
            if f['kind'] == 'obstacle':
                hits = [c['time'] for c in self.truth['contacts']
                        if self.obstacle.id in c['objects'] and c['action'] == f['action']]
                f['effect_time'] = min(hits) if hits else None

    def _advance(self, q, qd):
        """One physics step tracking reference q (5,) with velocity qd (5,); yields due events."""
        d = self.data
        u = np.r_[q[:4], 0.5 * q[4], 0.5 * q[4]]
        ud = np.r_[qd[:4], 0.5 * qd[4], 0.5 * qd[4]]
        d.ctrl[:] = u + self._ff * ud
        if self._held or self._obstacle_release:
            self._hold_faulted()
        mujoco.mj_step(self.model, d)
        self._i += 1
        self._contact_step(self._i)
        return self._emit_due()

    def _in_episode(self, t: float) -> bool:
        return self._end_step is None or t < self.duration - 1e-9

    def _emit_due(self):
        """Queue the pose/image/audio events that are due at the current state; flush."""
        c, d, i = self.cfg, self.data, self._i
        t_state = i * self.dt
        while self._next_pose / c.pose_hz <= t_state + 1e-9 and self._in_episode(
                self._next_pose / c.pose_hz):
            t = self._next_pose / c.pose_hz
            self._push(PoseEvent(t, d.xpos[self._tcp_body].copy(),
                                 _quat_xyzw(d.xquat[self._tcp_body]),
                                 float(self._gripper_q()[4])))
            self._next_pose += 1
        while self._next_frame / c.fps <= t_state + 1e-9 and self._in_episode(
                self._next_frame / c.fps):
            self._push(self._render(self._next_frame / c.fps))
            self._next_frame += 1
        # mic position at each chunk's middle; a chunk is rendered once physics is `lag` past it
        mid_chunk = int(np.floor(t_state / self._chunk_dur - 0.5 + 1e-9))
        if mid_chunk >= 0 and mid_chunk not in self._mic_at:
            self._mic_at[mid_chunk] = d.site_xpos[self._mic].copy()
        while (self._next_chunk + 1) * self._chunk_dur <= (i - self._lag_steps) * self.dt + 1e-9 \
                and self._in_episode(self._next_chunk * self._chunk_dur):
            self._push(self._render_audio(self._next_chunk))
            self._next_chunk += 1
        return self._flush(min(t_state, self._next_chunk * self._chunk_dur))

    def _render_audio(self, k: int) -> AudioEvent:
        c = self.cfg
        t0 = k * self._chunk_dur
        t1 = t0 + self._chunk_dur
        now = [e for e in self._exc if e.t < t1]
        self._exc = [e for e in self._exc if e.t >= t1]
        mic = self._mic_at.pop(k, self.data.site_xpos[self._mic].copy())
        samples = self._synth.render(t0, c.chunk_samples, now, mic)
        return AudioEvent(t0, samples)

    def _render(self, t: float) -> ImageEvent:
        r, d = self._renderer, self.data
        r.update_scene(d, camera=self._cam)
        rgb = r.render()
        r.enable_segmentation_rendering()
        seg = r.render()
        r.disable_segmentation_rendering()
        is_geom = seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
        labels = np.where(is_geom, self._lut[seg[..., 0] + 1], 0).astype(np.uint8)
        R = d.cam_xmat[self._cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        return ImageEvent(t, rgb, labels, (d.cam_xpos[self._cam].copy(), _mat_to_xyzw(R)))

    def _push(self, ev):
        heapq.heappush(self._heap, (ev.t, _PRIORITY[ev.kind], self._seq, ev))
        self._seq += 1

    def _flush(self, horizon: float):
        """Release queued events with t < horizon, in time order."""
        out = []
        while self._heap and self._heap[0][0] < horizon - 1e-12:
            out.append(heapq.heappop(self._heap)[3])
        return out
