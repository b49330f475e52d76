"""Physically based contact sounds: modal synthesis of impacts and scrapes (numpy/scipy only).

Model (after van den Doel & Pai, "The sounds of physical shapes", Presence 1998; van den Doel,
Kry & Pai, "FoleyAutomatic", SIGGRAPH 2001; O'Brien, Shen & Gatchalian, SCA 2002):

* Every body (objects id >= 1, table id 0, gripper id -1) is a bank of damped modes. Its
  far-field pressure at distance r from a force F(t) applied at the contact is

      p(t) = (1/r) sum_k w_k(x) g_k  int F(s) h_k(t - s) ds,
      h_k(t) = e^{-d_k t} (cos(2 pi f_k t) - d_k / (2 pi f_k) sin(2 pi f_k t))   (t >= 0)

  (h_k is the modal velocity after a unit impulse; it has zero mean, so slow forces are silent)

  with frequencies f_k from thin-structure theory (bars, plates, rings, shells; Kinsler et al.
  "Fundamentals of Acoustics"; Leissa "Vibration of Plates", NASA SP-160, 1969), decay rates
  d_k = alpha + pi f_k eta (materials.py), gains g_k from the modal velocity J/m times a compact
  source radiation model, and position weights w_k(x) (the strike point changes the timbre).
* An impact with normal impulse J is a half-sine force pulse of area J lasting the Hertz contact
  time of the two surfaces (K. L. Johnson, "Contact Mechanics", 1985, sec. 11.4): stiff pairs
  (steel/glass) give ~0.1 ms pulses that excite all modes, soft ones (foam) ~10 ms pulses that
  only give a low thud. Both bodies of a contact receive the same force (Newton's third law).
* A slide is friction noise: white noise low-passed at v / max(lambda_roughness, Hertz patch)
  (the asperity spacing swept at the sliding speed, FoleyAutomatic's scraping model, smoothed by
  the contact patch, so soft pairs only rumble) with RMS force ~ mu N sqrt(v Ra) (stick-slip
  fluctuations of the order of the friction force), exciting the modes of both bodies.
* The sum goes through a short room impulse response (direct path, early reflections and an
  exponential noise tail, ~60 ms), gets a -60 dBFS white noise floor, and a memoryless soft
  limiter (never clips; calibrated so a hard metal hit at 10 cm peaks near -6 dBFS).

Streaming: `ModalSynth.render` keeps the resonator states (exact 2-pole recursions via
`scipy.signal.lfilter` with carried `zi`), the not-yet-played parts of force pulses and slide
segments, and the room filter state, so chunked rendering equals one-shot rendering (~1e-12).
Distance attenuation is applied when a force enters the body (the mic position of the call that
receives the excitation); the mic is assumed not to move far during one ring. There is no
propagation delay (< 2 ms at working distances) so sound onsets coincide with contact times.

Simplifications, stated: mode shapes are not computed (gains and position weights are drawn per
object from its seed); solid objects smaller than ~10 cm have their first bending modes above
the band of 16 kHz audio, so a series whose lowest mode exceeds `F_FOLD` is moved down by octaves
(keeping its ratios, i.e. its timbre) until it lies below; rigid-body "acceleration noise"
(the click of the contact itself) is not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from .materials import Material, get_material

__all__ = ['Modes', 'ObjectSound', 'Excitation', 'ModalSynth', 'object_modes', 'synthesize',
           'shape_geometry', 'shape_mass', 'hertz_contact_duration', 'SHAPES', 'TABLE_SOUND',
           'GRIPPER_SOUND', 'FULL_SCALE_PA', 'NOISE_FLOOR_DBFS']

SHAPES = ('box', 'cylinder', 'cup', 'bowl', 'plate', 'sphere', 'stick')
RHO_AIR = 1.2            # [kg/m^3] at 20 C (Kinsler et al., table)
C_AIR = 343.0            # [m/s]
F_FOLD = 3000.0          # [Hz] lowest mode of a series is moved below this by octaves
F_MIN = 30.0             # [Hz] modes below are dropped (inaudible through a small mic)
MIN_MODES, MAX_MODES = 8, 32
R_MIN = 0.03             # [m] distance clamp for the 1/r law (mic can't be inside the body)
CONTACT_RADIUS = 5e-3    # [m] curvature radius of the touching asperity/edge (Hertz)
#: Pressure [Pa] that maps to digital full scale (1.0) (the microphone gain). Calibrated so that a
#: steel cup struck by the gripper with J = 0.05 N*s (sim/world.py: J = (1 + e) m_n v, a 0.2 m/s
#: strike on a 0.19 kg cup) at 10 cm peaks near -6 dBFS (see test_sim_sound.py). Over 16 default
#: mixed episodes the contact events then peak at -35 / -19 / -9 / -3 dBFS (10th / 50th / 90th
#: percentile / max) and none reaches the limiter's knee (was 400 Pa with force-integrated
#: impulses: ~15 % of the events in the limiter).
FULL_SCALE_PA = 100.0
NOISE_FLOOR_DBFS = -60.0  # RMS of the white noise floor
LIMIT_KNEE = 0.8          # soft limiter: identity below, tanh knee above, |y| < 1 always
#: Effective slide gain (dimensionless; RMS excitation / (mu N) at V_REF, RA_REF). It is > 1
#: because the model does not resolve the
#: asperity micro-impacts that make real scraping bright, so this is calibrated by ear-level
#: targets: the gripper scraping a wooden block (N = 2 N, v = 0.1 m/s) at 10 cm -> ~ -50 dBFS RMS
#: (set with FULL_SCALE_PA = 400; ~ -38 dBFS with today's microphone gain).
SLIDE_COEF = 5.0
# Porous bodies (open-cell foam, woven fabric) barely ring, but compressing them pushes air out of
# their cells/pores: a short band-limited noise burst while the contact lasts, RMS pressure at 1 m
# CRUSH_PA_PER_N * (mean contact force) * per-material factor. Effective constants, tuned by ear
# so that a gripper tap on foam is a soft, dull, audible thud ~20 dB under a tap on wood (the
# open-cell mechanism: Gibson & Ashby [GA] ch. 2; the level itself is not a cited value).
CRUSH_PA_PER_N = 0.12
CRUSH = {"foam": (1.0, 1800.0), "fabric": (0.8, 2500.0)}    # material -> (factor, low-pass Hz)
V_REF, RA_REF = 0.1, 5e-6  # [m/s], [m]
SLIDE_FADE = 8            # [samples] power-complementary crossfade between slide segments


@dataclass(frozen=True)
class Modes:
    """Modal model of one body: M modes (8 <= M <= 32), sorted by frequency."""

    freqs: np.ndarray    # (M,) [Hz], < 0.45 sample_rate
    decays: np.ndarray   # (M,) [1/s] amplitude decay rates
    gains: np.ndarray    # (M,) [Pa*m/(N*s)]: peak pressure at 1 m per 1 N*s of impulse

    def __len__(self) -> int:
        return len(self.freqs)


@dataclass(frozen=True)
class ObjectSound:
    """What the synth needs to know about a body. `size` = (sx, sy, sz) full extents [m] (a scalar
    means a cube); z is the axis of cups/bowls/cylinders/plates. `mass` [kg] defaults to
    `shape_mass(material, shape, size)`; pass the physics mass for consistent contact durations."""

    material: str
    shape: str
    size: tuple | float
    mass: float | None = None


#: The table top (id 0) and the gripper finger (id -1) the synth adds itself.
TABLE_SOUND = ObjectSound('table', 'box', (1.2, 0.8, 0.025))
GRIPPER_SOUND = ObjectSound('gripper', 'stick', (0.02, 0.012, 0.07), mass=1.0)   # finger + carriage


@dataclass
class Excitation:
    """One contact event handed to the synth (from the physics engine).

    kind 'impact': `normal_impulse` J [N*s] delivered at time t.
    kind 'slide':  `normal_force` N [N] and `tangential_speed` v [m/s], held during
                   [t, t + duration) (emit one per physics step or per chunk piece).
    `obj`/`other`: body ids (>= 1 objects, 0 table, -1 gripper; None = nothing). Both ring."""

    t: float                       # [s] episode time
    obj: int
    kind: str                      # 'impact' | 'slide'
    normal_impulse: float = 0.0    # [N*s]
    normal_force: float = 0.0      # [N]
    tangential_speed: float = 0.0  # [m/s]
    position: tuple = (0.0, 0.0, 0.0)  # (3,) world [m]
    other: int | None = None
    duration: float = 1e-3         # [s] slides only


# ----------------------------------------------------------------------------------- geometry
def _size3(size) -> np.ndarray:
    s = np.broadcast_to(np.asarray(size, dtype=float), (3,)).copy()
    if np.any(s <= 0):
        raise ValueError(f'size must be positive, got {size}')
    return s


def shape_geometry(material, shape: str, size) -> dict:
    """Thin-structure geometry of a body.

    Returns dict(mass [kg], area [m^2] radiating surface, thickness [m] bending thickness,
    hollow bool, length [m] largest extent)."""
    m = get_material(material)
    sx, sy, sz = _size3(size)
    d = 0.5 * (sx + sy)            # diameter of round shapes
    a = 0.5 * d
    hollow = m.hollow
    if shape == 'box':
        area = 2 * (sx * sy + sy * sz + sx * sz)
        h = m.wall if hollow else min(sx, sy, sz)
        vol = area * h if hollow else sx * sy * sz
    elif shape == 'cylinder':
        area = 2 * np.pi * a * sz + 2 * np.pi * a ** 2
        h = m.wall if hollow else min(d, sz)
        vol = area * h if hollow else np.pi * a ** 2 * sz
    elif shape == 'cup':
        hollow, h = True, m.wall
        area = 2 * np.pi * a * sz + np.pi * a ** 2
        vol = area * h
    elif shape == 'bowl':
        hollow, h = True, m.wall
        area = np.pi * (a ** 2 + sz ** 2)          # spherical cap of rim radius a, depth sz
        vol = area * h
    elif shape == 'plate':
        hollow, h = False, min(sz, max(m.wall, 3e-3))
        area = 2 * np.pi * a ** 2
        vol = np.pi * a ** 2 * h
    elif shape == 'sphere':
        a = (sx + sy + sz) / 6.0
        area = 4 * np.pi * a ** 2
        h = m.wall if hollow else 2 * a
        vol = area * h if hollow else 4.0 / 3.0 * np.pi * a ** 3
    elif shape == 'stick':
        area = 2 * (sx * sy + sy * sz + sx * sz)
        hollow, h = False, min(sx, sy, sz)
        vol = sx * sy * sz
    else:
        raise ValueError(f'unknown shape {shape!r}; known: {SHAPES}')
    return {'mass': float(vol * m.density), 'area': float(area), 'thickness': float(h),
            'hollow': bool(hollow), 'length': float(max(sx, sy, sz))}


def shape_mass(material, shape: str, size) -> float:
    """Mass [kg] of a body (thin-walled if the material makes containers, see Material.hollow)."""
    return shape_geometry(material, shape, size)['mass']


# ------------------------------------------------------------------------------ mode series
# Free-free Euler-Bernoulli beam eigenvalues (beta L)^2 (Kinsler et al. sec. 3.x), then
# ((2n+1) pi / 2)^2; frequency ratios 1, 2.76, 5.40, 8.93, ...
_BAR = np.array([22.373, 61.673, 120.903, 199.859] + [((2 * n + 1) * np.pi / 2) ** 2
                                                      for n in range(5, 12)])
# Free circular plate, lambda^2 = omega a^2 sqrt(rho h / D), nu ~ 0.33 (Leissa 1969, table 2.4).
_DISC = np.array([5.253, 9.084, 12.23, 20.52, 21.53, 33.06, 35.25, 38.55, 46.2, 52.9, 59.9, 61.8,
                  73.1, 79.8, 87.0, 90.7])
# Solid elastic sphere, omega a / c_shear for the lowest spheroidal/torsional modes (Lamb 1882;
# nu ~ 0.3): dense, inharmonic.
_SPHERE = np.array([2.501, 2.640, 3.865, 3.916, 4.858, 5.095, 5.977, 6.20, 7.00, 7.24, 7.92, 8.32,
                    8.95, 9.35, 9.98, 10.4])


def _ring(kappa: float, a: float, height: float, stiff: float) -> np.ndarray:
    """Bending modes of a thin cylindrical shell / bell: inextensional ring modes
    f_n = kappa / (2 pi a^2) * n (n^2 - 1) / sqrt(n^2 + 1), n = 2.. (Kinsler et al.; Rossing,
    "The Science of Sound"), with (n, m) axial variants raised by sqrt(1 + 0.6 m^2 (a/H)^2)."""
    n = np.arange(2, 12, dtype=float)
    fn = stiff * kappa / (2 * np.pi * a ** 2) * n * (n ** 2 - 1) / np.sqrt(n ** 2 + 1)
    m = np.arange(0, 3, dtype=float)[:, None]
    return (fn[None, :] * np.sqrt(1 + 0.6 * m ** 2 * (a / max(height, 1e-3)) ** 2)).ravel()


def _rect_plate(kappa: float, lx: float, ly: float) -> np.ndarray:
    """Simply supported rectangular plate: f_mn = (pi/2) kappa ((m/lx)^2 + (n/ly)^2)."""
    m = np.arange(1, 7, dtype=float)
    return (np.pi / 2 * kappa * ((m[:, None] / lx) ** 2 + (m[None, :] / ly) ** 2)).ravel()


def _mode_series(mat: Material, shape: str, size, geo: dict) -> np.ndarray:
    """Unperturbed mode frequencies [Hz] (unsorted, before folding/limiting)."""
    sx, sy, sz = _size3(size)
    cp = mat.plate_speed
    h = geo['thickness']
    kap = h * cp / np.sqrt(12.0)          # sqrt(D / (rho h)) [m^2/s]
    a = 0.25 * (sx + sy)
    if shape == 'stick' or (shape == 'cylinder' and not geo['hollow'] and sz > 1.5 * 2 * a):
        dims = np.sort([sx, sy, sz])
        length = dims[2]
        if shape == 'stick':
            rg1, rg2 = dims[0] / np.sqrt(12), dims[1] / np.sqrt(12)   # radii of gyration
        else:
            rg1 = rg2 = a / 2
        bend = np.concatenate([_BAR * rg1, _BAR * rg2 * 1.003]) * mat.bar_speed / (
            2 * np.pi * length ** 2)
        ct = mat.bar_speed / np.sqrt(2 * (1 + mat.poisson))     # shear wave speed
        tors = np.arange(1, 6) * ct / (2 * length) * min(1.0, 2 * rg1 / max(rg2, 1e-9) + 0.3)
        return np.concatenate([bend, tors])
    if shape == 'cup':
        return _ring(kap, a, sz, 1.0)
    if shape == 'bowl':
        return _ring(kap, a, sz, 1.4)      # hemispherical shell: stiffer than an open cylinder
    if shape == 'plate':
        return _DISC * kap / (2 * np.pi * a ** 2)
    if shape == 'cylinder':
        if geo['hollow']:                  # closed can: shell + end caps
            return np.concatenate([_ring(kap, a, sz, 1.15), _DISC[:6] * kap / (2 * np.pi * a ** 2)])
        return _DISC * (sz * cp / np.sqrt(12)) / (2 * np.pi * a ** 2)   # squat solid disc
    if shape == 'box':
        if geo['hollow']:                  # six thin panels
            return np.concatenate([_rect_plate(kap, sx, sy), _rect_plate(kap, sx, sz),
                                   _rect_plate(kap, sy, sz)])
        dims = np.sort([sx, sy, sz])       # thin slab or solid block (plate estimate, folded)
        return _rect_plate(kap, dims[1], dims[2])
    if shape == 'sphere':
        r = (sx + sy + sz) / 6.0
        if geo['hollow']:
            return _ring(kap, r, 2 * r, 1.8)
        cs = mat.bar_speed / np.sqrt(2 * (1 + mat.poisson))
        return _SPHERE * cs / (2 * np.pi * r)
    raise ValueError(f'unknown shape {shape!r}; known: {SHAPES}')


def object_modes(material, shape: str, size, rng: np.random.Generator, sample_rate: int = 16000,
                 mass: float | None = None, n_modes: int | None = None) -> Modes:
    """Modal model of a body (see module docstring). Deterministic given `rng`'s state.

    Frequencies scale as c_plate * thickness / length^2; a few % per-object perturbation
    (5 % global, 1.5 % per mode); limited to < 0.45 sample_rate and >= F_MIN; 8..32 modes."""
    mat = get_material(material)
    geo = shape_geometry(mat, shape, size)
    m_kg = float(mass) if mass else geo['mass']
    f = np.sort(_mode_series(mat, shape, size, geo))
    f = f[f >= F_MIN] if np.any(f >= F_MIN) else f
    while f[0] > F_FOLD:                   # move out-of-band series down by octaves
        f = f * 0.5
    f = f * np.exp(rng.normal(0, 0.05)) * (1 + rng.normal(0, 0.015, f.shape))
    f_max = 0.45 * sample_rate
    soft = mat.loss_factor >= 0.2
    m_want = n_modes or (MIN_MODES if soft else int(rng.integers(16, MAX_MODES + 1)))
    m_want = int(np.clip(m_want, MIN_MODES, MAX_MODES))
    f = np.sort(f[(f < f_max) & (f >= F_MIN)])[:m_want]
    extra = np.zeros(0)
    if len(f) < MIN_MODES:                 # fill with unmodelled (coupled / higher-order) modes
        lo = f[0] if len(f) else F_MIN
        extra = np.exp(rng.uniform(np.log(lo), np.log(f_max * 0.95), MIN_MODES - len(f)))
    is_extra = np.r_[np.zeros(len(f), bool), np.ones(len(extra), bool)]
    f = np.r_[f, extra]
    order = np.argsort(f)
    f, is_extra = f[order], is_extra[order]
    # Modal participation: impulse energy J^2 / 2m shared among modes (sum phi^2 = 1).
    phi = np.exp(rng.normal(0, 0.5, f.shape)) * np.where(is_extra, 0.5, 1.0)
    phi /= np.sqrt(np.sum(phi ** 2))
    # Compact-source radiation: p(1 m) = rho0 S v omega / (4 pi) * ka / (1 + (ka)^2) (dipole-like
    # at low ka, baffled-piston-like limit at high ka; Kinsler et al. ch. 7), v = J phi / m.
    a_eff = np.sqrt(geo['area'] / (4 * np.pi))
    omega = 2 * np.pi * f
    ka = omega / C_AIR * a_eff
    gains = (mat.radiation * phi / m_kg * RHO_AIR * geo['area'] * omega / (4 * np.pi)
             * ka / (1 + ka ** 2))
    return Modes(freqs=f.astype(float), decays=mat.decay(f), gains=gains.astype(float))


def hertz_contact_duration(mat1, mat2, m1: float, m2: float, impulse: float,
                           radius: float = CONTACT_RADIUS) -> float:
    """Hertz impact duration [s] of two bodies (Johnson 1985, sec. 11.4):
    T = 2.943 delta_max / v, delta_max = (5 m v^2 / (4 K))^(2/5), K = 4/3 E* sqrt(R),
    m = m1 m2 / (m1 + m2), v = J / ((1 + e) m). Clamped to [20 us, 50 ms]."""
    a, b = get_material(mat1), get_material(mat2)
    e_star = 1.0 / (1.0 / a.contact_modulus + 1.0 / b.contact_modulus)
    m = m1 * m2 / (m1 + m2)
    e = np.sqrt(a.restitution * b.restitution)
    v = max(abs(impulse) / ((1 + e) * m), 1e-4)
    k = 4.0 / 3.0 * e_star * np.sqrt(radius)
    delta = (5 * m * v ** 2 / (4 * k)) ** 0.4
    return float(np.clip(2.943 * delta / v, 2e-5, 5e-2))


def _soft_limit(x: np.ndarray) -> np.ndarray:
    """Memoryless limiter: identity below LIMIT_KNEE, tanh knee above, strictly inside (-1, 1)."""
    ax = np.abs(x)
    over = ax > LIMIT_KNEE
    if np.any(over):
        room = 1.0 - LIMIT_KNEE
        x = x.copy()
        x[over] = np.sign(x[over]) * (LIMIT_KNEE + room * np.tanh((ax[over] - LIMIT_KNEE) / room))
    return x


# --------------------------------------------------------------------------------- synth
@dataclass
class _Body:
    id: int
    material: Material
    mass: float
    modes: Modes
    b: np.ndarray         # (M, 2) resonator numerators (gain / FULL_SCALE_PA folded in)
    a: np.ndarray         # (M, 3) resonator denominators
    zi: np.ndarray        # (M, 2) lfilter states
    dirs: np.ndarray      # (M, 3) position-weight directions
    phase: np.ndarray     # (M,)
    length: float         # [m]
    buf: np.ndarray = field(default=None)   # (M, K) pending input [N*s * (1/r) * w] from _base


class ModalSynth:
    """Streaming contact-sound renderer for one episode.

    `objects`: {id >= 1: ObjectSound}; the table (0) and the gripper (-1) are added.
    Deterministic for `seed` (object modes, strike weights, slide noise, room, noise floor)."""

    def __init__(self, sample_rate: int, objects: dict, seed: int = 0,
                 table: ObjectSound = TABLE_SOUND, gripper: ObjectSound = GRIPPER_SOUND,
                 noise_dbfs: float = NOISE_FLOOR_DBFS, room: bool = True):
        self.sr = int(sample_rate)
        self.seed = int(seed)
        self.noise_rms = 10 ** (noise_dbfs / 20) if noise_dbfs is not None else 0.0
        self.bodies: dict[int, _Body] = {}
        all_objs = {0: table, -1: gripper, **{int(k): v for k, v in objects.items()}}
        for oid, spec in all_objs.items():
            if isinstance(spec, dict):
                spec = ObjectSound(**spec)
            self.bodies[oid] = self._make_body(oid, spec)
        self.ir = self._room_ir() if room else np.ones(1)
        self.room_zi = np.zeros(len(self.ir) - 1)
        self._base: int | None = None        # absolute sample index of the next output sample
        self._direct = np.zeros(0)           # pending direct sound (crush noise) from _base
        self._noise_cache: dict[int, np.ndarray] = {}

    # ---- construction
    def _make_body(self, oid: int, spec: ObjectSound) -> _Body:
        rng = np.random.default_rng([self.seed, 1, oid + 2])
        mat = get_material(spec.material)
        geo = shape_geometry(mat, spec.shape, spec.size)
        mass = float(spec.mass) if spec.mass else geo['mass']
        modes = object_modes(mat, spec.shape, spec.size, rng, self.sr, mass=mass)
        r = np.exp(-modes.decays / self.sr)
        th = 2 * np.pi * modes.freqs / self.sr
        # Velocity response to an impulse, r^n (cos n th - (d / omega) sin n th): zero mean, so a
        # static or slowly varying force radiates nothing (impulse-invariant, exact recursion).
        a = np.stack([np.ones_like(r), -2 * r * np.cos(th), r ** 2], axis=1)
        c = modes.decays / (2 * np.pi * modes.freqs)
        g = modes.gains / FULL_SCALE_PA
        b = np.stack([g, -g * r * (np.cos(th) + c * np.sin(th))], axis=1)
        dirs = rng.normal(size=(len(modes), 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        return _Body(oid, mat, mass, modes, b, a, np.zeros((len(modes), 2)), dirs,
                     rng.uniform(0, np.pi, len(modes)), geo['length'],
                     np.zeros((len(modes), 0)))

    def _room_ir(self) -> np.ndarray:
        """Direct path + 6 early reflections (1-12 ms) + exponential noise tail (RT60 0.2-0.4 s,
        truncated at 60 ms, -10 dB re direct): a small lab room seen from a wrist mic."""
        rng = np.random.default_rng([self.seed, 2])
        n = int(0.06 * self.sr)
        ir = np.zeros(n)
        ir[0] = 1.0
        for dly in rng.uniform(1e-3, 12e-3, 6):
            gain = rng.choice([-1, 1]) * rng.uniform(0.1, 0.35) * (1e-3 / dly) ** 0.5
            ir[int(dly * self.sr)] += gain
        t = np.arange(n) / self.sr
        tail = rng.normal(size=n) * np.exp(-6.91 * t / rng.uniform(0.2, 0.4)) * (t > 3e-3)
        ir += tail * np.sqrt(0.1 / np.sum(tail ** 2))
        return ir

    # ---- excitation -> input buffers
    def _ensure(self, body: _Body, length: int) -> None:
        if body.buf.shape[1] < length:
            body.buf = np.pad(body.buf, ((0, 0), (0, length - body.buf.shape[1])))

    def _weights(self, body: _Body, pos: np.ndarray) -> np.ndarray:
        """(M,) strike-position weights in [0.4, 1]: modes have nodes and antinodes."""
        k = np.arange(1, len(body.modes) + 1)
        u = body.dirs @ pos / body.length
        return 0.4 + 0.6 * np.abs(np.cos(np.pi * k * u + body.phase))

    def _add_force(self, bodies: list[_Body], start: int, impulses: np.ndarray, pos, mic) -> None:
        """Add per-sample impulses [N*s] (L,) beginning at absolute sample `start` to bodies."""
        start_off = start - self._base
        if start_off < 0:                       # late excitation: play it now
            start_off = 0
        r = max(float(np.linalg.norm(np.asarray(pos, float) - mic)), R_MIN)
        for body in bodies:
            self._ensure(body, start_off + len(impulses))
            w = self._weights(body, np.asarray(pos, float)) / r
            body.buf[:, start_off:start_off + len(impulses)] += w[:, None] * impulses[None, :]

    def _impact(self, ex: Excitation, bodies: list[_Body], mic) -> None:
        J = float(ex.normal_impulse)
        if J <= 0:
            return
        if len(bodies) == 2:
            b0, b1 = bodies
            T = hertz_contact_duration(b0.material, b1.material, b0.mass, b1.mass, J)
        else:
            T = hertz_contact_duration(bodies[0].material, 'table', bodies[0].mass, 1e3, J)
        tau0 = ex.t * self.sr
        tau1 = tau0 + T * self.sr
        i0, i1 = int(np.floor(tau0)), int(np.ceil(tau1))
        edges = np.clip(np.arange(i0, i1 + 1, dtype=float), tau0, tau1)
        cum = 0.5 * (1 - np.cos(np.pi * (edges - tau0) / (tau1 - tau0)))   # half-sine area CDF
        self._add_force(bodies, i0, J * np.diff(cum), ex.position, mic)
        for body in bodies:
            if body.material.name in CRUSH:
                self._crush(body.material.name, J / T, i0, i1, ex, mic)

    def _crush(self, material: str, force: float, i0: int, i1: int, ex: Excitation, mic) -> None:
        """Air pushed out of a porous body during the contact [i0, i1): low-passed noise under a
        half-sine envelope, RMS pressure CRUSH_PA_PER_N * factor * mean force at 1 m, then 1/r."""
        factor, f_lp = CRUSH[material]
        n = max(i1 - i0, int(0.004 * self.sr))
        env = np.sin(np.pi * (np.arange(n) + 0.5) / n)
        rng = np.random.default_rng([self.seed, 7, max(i0, 0), ex.obj + 2])
        p = np.exp(-2 * np.pi * f_lp / self.sr)
        noise = signal.lfilter([1 - p], [1, -p], rng.normal(size=n + 64))[64:]
        noise = np.diff(noise, prepend=noise[0])                 # no DC: a pressure pulse averages 0
        noise /= np.sqrt(np.mean(noise ** 2)) + 1e-12
        r = max(float(np.linalg.norm(np.asarray(ex.position, float) - mic)), R_MIN)
        burst = CRUSH_PA_PER_N * factor * force / r * env * noise * np.sqrt(2) / FULL_SCALE_PA
        start = max(i0 - self._base, 0)
        if len(self._direct) < start + n:
            self._direct = np.pad(self._direct, (0, start + n - len(self._direct)))
        self._direct[start:start + n] += burst

    def _slide(self, ex: Excitation, bodies: list[_Body], mic) -> None:
        """Friction noise: unit-RMS white noise through a one-pole low-pass at
        f0 = v / max(lambda, 2 a) (roughness spacing swept at speed v, smoothed over the Hertz
        contact patch of radius a; a roughly k^-2 roughness spectrum above), RMS force
        SLIDE_COEF * mu * N * sqrt(v / V_REF) * sqrt(Ra / RA_REF): stiff contacts excite the
        modes broadly, soft ones (foam, fabric) only rumble."""
        N, v = float(ex.normal_force), abs(float(ex.tangential_speed))
        if N <= 0 or v <= 0 or ex.duration <= 0:
            return
        mats = [b.material for b in bodies] + ([get_material('table')] if len(bodies) == 1 else [])
        mu = float(np.mean([m.friction for m in mats]))
        ra = float(np.sqrt(np.sum([m.roughness ** 2 for m in mats])))
        lam = min(m.roughness_wavelength for m in mats)                   # finest texture
        e_star = 1.0 / sum(1.0 / m.contact_modulus for m in mats)
        patch = 2 * (3 * N * CONTACT_RADIUS / (4 * e_star)) ** (1 / 3)     # Hertz diameter 2a
        f0 = float(np.clip(v / max(lam, patch), 10.0, 0.4 * self.sr))
        f_rms = SLIDE_COEF * mu * N * np.sqrt(v / V_REF) * np.sqrt(ra / RA_REF)   # [N]
        p = np.exp(-2 * np.pi * f0 / self.sr)
        tau0, tau1 = ex.t * self.sr, (ex.t + ex.duration) * self.sr
        # Power-complementary fades: in over [tau0, tau0 + F], out over [tau1, tau1 + F], so
        # back-to-back segments cross-fade and nothing starts before t.
        i0, i1 = int(np.floor(tau0)), int(np.ceil(tau1 + SLIDE_FADE))
        n = np.arange(i0, i1) + 0.5
        env = np.sqrt(np.clip((n - tau0) / SLIDE_FADE, 0, 1)
                      * np.clip((tau1 + SLIDE_FADE - n) / SLIDE_FADE, 0, 1))
        warm = int(min(2048, 4 * self.sr / (2 * np.pi * f0))) + 16
        ids = [b.id + 2 for b in bodies]
        rng = np.random.default_rng([self.seed, 5, max(i0, 0), *ids])
        noise = signal.lfilter([1 - p], [1, -p], rng.normal(size=warm + len(n)))[warm:]
        noise *= np.sqrt((1 + p) / (1 - p))                                # unit RMS
        self._add_force(bodies, i0, f_rms * env * noise / self.sr, ex.position, mic)

    # ---- output
    def _noise(self, n0: int, n: int) -> np.ndarray:
        """Seeded white noise floor for absolute samples [n0, n0 + n) (block-wise, chunk-free)."""
        if self.noise_rms == 0:
            return np.zeros(n)
        B = 4096
        out = np.empty(n)
        for blk in range(n0 // B, (n0 + n - 1) // B + 1):
            if blk not in self._noise_cache:
                if len(self._noise_cache) > 4:
                    self._noise_cache.pop(min(self._noise_cache))
                rng = np.random.default_rng([self.seed, 11, blk])
                self._noise_cache[blk] = rng.normal(size=B) * self.noise_rms
            lo, hi = max(n0, blk * B), min(n0 + n, (blk + 1) * B)
            out[lo - n0:hi - n0] = self._noise_cache[blk][lo - blk * B:hi - blk * B]
        return out

    def render(self, t0: float, n: int, excitations: list[Excitation], mic_position) -> np.ndarray:
        """Render samples [t0, t0 + n / sr) -> float32 (n,) in (-1, 1).

        Pass every excitation exactly once, in the call whose span contains it or earlier
        (future ones are scheduled). Calls should be contiguous (t0 = previous t0 + n / sr)."""
        n0 = int(round(t0 * self.sr))
        if self._base is None:
            self._base = n0
        if n0 != self._base:                  # a gap or overlap: realign pending inputs
            shift = n0 - self._base
            for b in self.bodies.values():
                b.buf = b.buf[:, shift:] if shift > 0 else np.pad(b.buf, ((0, 0), (-shift, 0)))
            self._direct = self._direct[shift:] if shift > 0 else np.pad(self._direct, (-shift, 0))
            self._base = n0
        mic = np.asarray(mic_position, dtype=float).reshape(3)
        for ex in sorted(excitations, key=lambda e: e.t):
            bodies = [self.bodies[i] for i in dict.fromkeys((ex.obj, ex.other))
                      if i is not None and i in self.bodies]
            if not bodies:
                continue
            if ex.kind == 'impact':
                self._impact(ex, bodies, mic)
            elif ex.kind == 'slide':
                self._slide(ex, bodies, mic)
            else:
                raise ValueError(f'unknown excitation kind {ex.kind!r}')
        y = np.zeros(n)
        for b in self.bodies.values():
            self._ensure(b, n)
            x, b.buf = b.buf[:, :n], b.buf[:, n:]
            if not x.any():
                if np.max(np.abs(b.zi)) < 1e-12:          # silent body: skip (state ~ 0)
                    b.zi[:] = 0.0
                    continue
            for k in range(len(b.b)):
                yk, b.zi[k] = signal.lfilter(b.b[k], b.a[k], x[k], zi=b.zi[k])
                y += yk
        if len(self._direct) < n:
            self._direct = np.pad(self._direct, (0, n - len(self._direct)))
        y += self._direct[:n]
        self._direct = self._direct[n:]
        y, self.room_zi = signal.lfilter(self.ir, [1.0], y, zi=self.room_zi)
        y = y + self._noise(n0, n)
        self._base = n0 + n
        return np.clip(_soft_limit(y), -1.0, 1.0).astype(np.float32)


def synthesize(objects: dict, excitations: list[Excitation], duration: float,
               sample_rate: int = 16000, mic_position=(0.0, 0.0, 0.1), seed: int = 0,
               **kw) -> np.ndarray:
    """Offline rendering of a whole clip [0, duration) -> float32 (round(duration * sr),)."""
    synth = ModalSynth(sample_rate, objects, seed=seed, **kw)
    return synth.render(0.0, int(round(duration * sample_rate)), excitations, mic_position)
