"""Randomized MuJoCo scenes for the sound world: table, 2-6 rigid objects, a parallel-jaw gripper.

Frames and units: world frame z up, table top at z = 0, metres, kilograms, seconds.

The table top collides as an (infinite) plane, which keeps resting contacts few and stable
(box-box table contacts jittered); it is drawn as a 1.2 m slab. Objects cannot fall off; they
can leave the gripper's reach (the planner then skips them). Solver: PGS with pyramidal friction
cones and no-slip iterations (Newton occasionally kicked resting composite objects; soft
friction made light pushed objects rock).

The gripper is a chain of actuated joints fixed in the world: slide x, slide y, slide z, hinge yaw
(position actuators with damping, gravity compensated), then two capsule fingers on slide
joints. The tool-centre point (TCP) is the midpoint between the finger tips; the TCP frame is
the world frame rotated by `yaw` about z (x = finger closing direction, z up along the wrist).
Joint positions are therefore directly the TCP pose: qpos[gx, gy, gz, gyaw] = (x, y, z, yaw);
the aperture is the gap between the inner finger faces (= q_left + q_right).

Object ids (used in labels, contacts and the synthesizer): k >= 1 object, 0 table, -1 gripper.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import materials as mat

SHAPES = ('box', 'cylinder', 'cup', 'bowl', 'plate', 'sphere', 'stick')
# The ambiguous pair: shapes with a flat top or a rim, upright, side by side with a small gap
# (the closed finger pair, 28 mm long, bridges it and lands on the taller one's edge). The two
# heights differ by only a few millimetres, which of the two is taller is random, so the wrist
# camera cannot tell which one the fingers will strike: only the sound can.
SCENARIOS = ('mixed', 'ambiguous', 'alternating')   # alternating: the ambiguous pair, struck alone
#                                                    and at the gap in turn (sim.actions.schedule)
PAIR_SHAPES = ('box', 'cylinder', 'cup', 'bowl')
PAIR_GAP = (0.004, 0.010)     # gap between the facing surfaces [m]
PAIR_DZ = (0.0015, 0.004)     # height difference of the pair [m]

TABLE_ID, GRIPPER_ID, IGNORE_ID = 0, -1, -2          # sound ids of non-object geoms
GRIPPER_LABEL = 255                                   # label-image value of the gripper

FINGER_LEN = 0.07            # finger length below the palm [m]
FINGER_HALF = (0.007, 0.007)  # capsule fingers: radius along x (closing dir) and y [m]
MAX_APERTURE = 0.10          # [m]
WORKSPACE_R = 0.16           # objects are placed within this radius of the origin [m]
REACH = 0.32                 # |x|, |y| reachable by the gripper [m]
GRIPPER_HOME = (0.0, -0.10, 0.22)
# Fault obstacle when not in use: inside the 4 cm visual table slab (hidden, collisions off; within
# the model's extent, so the renderer's clip planes stay as without it)
OBSTACLE_PARK = (0.0, 0.0, -0.02)
MIC_OFFSET_TCP = (0.0, -0.03, FINGER_LEN + 0.02)   # wrist microphone, TCP frame [m]
# Wrist camera in the TCP frame: behind and above the fingers, looking down/forward at the tips.
CAM_POS_TCP = np.array([0.0, -0.075, 0.068])
CAM_LOOKAT_TCP = np.array([0.0, 0.03, -0.035])
CAM_FOVY = 70.0              # vertical field of view [deg]
MAX_MASS, MIN_MASS = 0.45, 0.015   # objects heavier/lighter are treated as hollow/filled [kg]

# Builtin MuJoCo texture recipes (texture names from `materials.sample_appearance`
# are mapped onto these; unknown names are hashed onto one).
_TEXTURES = {
    'plain': dict(builtin='flat', mark='none'),
    'grain': dict(builtin='gradient', mark='random', random='0.08'),
    'checker': dict(builtin='checker', mark='none'),
    'gradient': dict(builtin='gradient', mark='none'),
    'noise': dict(builtin='flat', mark='random', random='0.25'),
    'stripes': dict(builtin='flat', mark='edge'),
}


@dataclass
class ObjectSpec:
    """One rigid object. Body frame at the centre of its bounding box, upright."""

    id: int
    shape: str
    material: str
    size: np.ndarray             # (3,) full bounding-box extents in the body frame [m]
    position: np.ndarray         # (3,) initial body position in world [m]
    yaw: float                   # initial rotation about z [rad]
    rgba: list
    texture: str
    geoms: list = field(default_factory=list)   # dicts: type, size, pos, quat (wxyz)
    mass: float = 0.0            # [kg]
    finish: tuple = (0.3, 0.3, 0.0)   # (specular, shininess, reflectance) of the surface

    @property
    def name(self) -> str:
        return f'object_{self.id}'

    @property
    def footprint_radius(self) -> float:
        return 0.5 * float(np.hypot(self.size[0], self.size[1]))

    def describe(self) -> dict:
        """Ground-truth description (contract `objects[]`)."""
        return dict(id=self.id, name=self.name, shape=self.shape, material=self.material,
                    size=[round(float(s), 5) for s in self.size], mass=round(float(self.mass), 5),
                    rgba=[round(float(c), 4) for c in self.rgba], texture=self.texture,
                    initial_position=[round(float(p), 5) for p in self.position])


@dataclass
class Scene:
    """A generated scene: MJCF text plus the object descriptions."""

    xml: str
    objects: list                # list[ObjectSpec]
    seed: int
    scenario: str
    pair: tuple = ()             # ambiguous scenario: ids of the two close objects

    def describe(self) -> list:
        return [o.describe() for o in self.objects]


# ---------------------------------------------------------------------------------------------
# geometry helpers

def _quat_axis_angle(axis, angle) -> np.ndarray:
    """Quaternion (w, x, y, z) for a rotation of `angle` rad about `axis`."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.r_[np.cos(angle / 2), np.sin(angle / 2) * axis]


def _quat_mul(a, b) -> np.ndarray:
    """Hamilton product of (w, x, y, z) quaternions."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def _geom_volume(g: dict) -> float:
    s = g['size']
    if g['type'] == 'box':
        return 8.0 * s[0] * s[1] * s[2]
    if g['type'] == 'cylinder':
        return np.pi * s[0] ** 2 * 2 * s[1]
    if g['type'] == 'sphere':
        return 4.0 / 3.0 * np.pi * s[0] ** 3
    if g['type'] == 'capsule':
        return np.pi * s[0] ** 2 * 2 * s[1] + 4.0 / 3.0 * np.pi * s[0] ** 3
    raise ValueError(g['type'])


def _surface_area(shape: str, size) -> float:
    """Outer surface area [m^2] of a closed shape with full extents `size`."""
    sx, sy, sz = size
    if shape == 'box':
        return 2.0 * (sx * sy + sy * sz + sz * sx)
    if shape == 'cylinder':
        r = sx / 2
        return 2 * np.pi * r ** 2 + 2 * np.pi * r * sz
    if shape == 'sphere':
        return 4 * np.pi * (sx / 2) ** 2
    if shape == 'stick':
        r = sy / 2
        return 2 * np.pi * r * (sx - 2 * r) + 4 * np.pi * r ** 2
    raise ValueError(shape)


def _ring(n, r_bottom, r_top, z0, z1, thickness, phase=0.0) -> list:
    """`n` box staves forming a (possibly flared) ring wall between heights z0 and z1."""
    geoms = []
    h = z1 - z0
    tilt = np.arctan2(r_top - r_bottom, h)            # outward lean [rad]
    slant = np.hypot(h, r_top - r_bottom)
    r_mid = 0.5 * (r_bottom + r_top)
    half_chord = r_mid * np.tan(np.pi / n) * 1.08     # slight overlap closes the gaps
    for i in range(n):
        phi = phase + 2 * np.pi * i / n
        q = _quat_mul(_quat_axis_angle([0, 0, 1], phi), _quat_axis_angle([0, 1, 0], tilt))
        pos = [r_mid * np.cos(phi), r_mid * np.sin(phi), 0.5 * (z0 + z1)]
        geoms.append(dict(type='box', size=[thickness / 2, half_chord, slant / 2], pos=pos, quat=q))
    return geoms


def _shape_geoms(shape: str, rng: np.random.Generator):
    """Sample dimensions of a shape. Returns (geoms in the body frame, full size (3,))."""
    u = rng.uniform
    if shape == 'box':
        sx, sy, sz = u(0.03, 0.075), u(0.03, 0.075), u(0.02, 0.07)
        g = dict(type='box', size=[sx / 2, sy / 2, sz / 2], pos=[0, 0, 0])
        return [g], np.array([sx, sy, sz])
    if shape == 'cylinder':
        r, h = u(0.015, 0.035), u(0.025, 0.09)
        return [dict(type='cylinder', size=[r, h / 2], pos=[0, 0, 0])], np.array([2 * r, 2 * r, h])
    if shape == 'sphere':
        r = u(0.015, 0.03)
        return [dict(type='sphere', size=[r], pos=[0, 0, 0])], np.array([2 * r] * 3)
    if shape == 'plate':
        r, h = u(0.045, 0.075), u(0.008, 0.014)
        return [dict(type='cylinder', size=[r, h / 2], pos=[0, 0, 0])], np.array([2 * r, 2 * r, h])
    if shape == 'stick':
        length, r = u(0.08, 0.15), u(0.006, 0.011)
        g = dict(type='capsule', size=[r, length / 2 - r], pos=[0, 0, 0],
                 quat=_quat_axis_angle([0, 1, 0], np.pi / 2))   # lying along body x
        return [g], np.array([length, 2 * r, 2 * r])
    if shape == 'cup':
        r, h, t = u(0.028, 0.04), u(0.06, 0.095), u(0.003, 0.005)
        base_h = 0.006
        geoms = [dict(type='cylinder', size=[r, base_h / 2], pos=[0, 0, -h / 2 + base_h / 2])]
        # staves start just above the table: only the base touches it (few resting contacts)
        geoms += _ring(10, r - t / 2, r - t / 2, -h / 2 + 0.0015, h / 2, t)
        return geoms, np.array([2 * r, 2 * r, h])
    if shape == 'bowl':
        r_top, h, t = u(0.05, 0.07), u(0.03, 0.05), u(0.004, 0.006)
        r_bot = r_top * u(0.5, 0.65)
        base_h = 0.006
        geoms = [dict(type='cylinder', size=[r_bot, base_h / 2], pos=[0, 0, -h / 2 + base_h / 2])]
        geoms += _ring(12, r_bot - t / 2, r_top - t / 2, -h / 2 + 0.0015, h / 2, t)
        return geoms, np.array([2 * r_top, 2 * r_top, h])
    raise ValueError(f'unknown shape {shape!r}')


# ---------------------------------------------------------------------------------------------
# sampling

def _sample_object(k: int, rng, shape=None, material=None) -> ObjectSpec:
    shape = shape or str(rng.choice(SHAPES))
    material = material or str(rng.choice(mat.OBJECT_MATERIALS))
    geoms, size = _shape_geoms(shape, rng)
    app = mat.sample_appearance(material, rng)
    spec = ObjectSpec(id=k, shape=shape, material=material, size=size, position=np.zeros(3),
                      yaw=float(rng.uniform(-np.pi, np.pi)), rgba=list(map(float, app['rgba'])),
                      texture=str(app.get('texture', 'flat')), geoms=geoms,
                      finish=(app['specular'], app['shininess'], app['reflectance']))
    # Mass: solid objects from density x volume; closed shapes of `hollow` materials (tins, glass
    # jars, plastic and cardboard boxes) as thin shells: density x wall x surface area. Results
    # outside [MIN_MASS, MAX_MASS] are clipped so objects stay graspable and simulable.
    m_mat = mat.MATERIALS[material]
    vol = sum(_geom_volume(g) for g in geoms)
    if m_mat.hollow and shape in ('box', 'cylinder', 'sphere', 'stick'):
        m = m_mat.density * m_mat.wall * _surface_area(shape, size)
    else:
        m = m_mat.density * vol
    spec.mass = float(np.clip(m, MIN_MASS, MAX_MASS))
    for g in geoms:
        g['density'] = spec.mass / vol
    return spec


def _place(objs: list, rng, fixed: list) -> bool:
    """Rejection-sample non-overlapping positions in the workspace for `objs` (in place)."""
    placed = list(fixed)
    for o in objs:
        for _ in range(200):
            xy = rng.uniform(-WORKSPACE_R, WORKSPACE_R, 2)
            if np.hypot(*xy) > WORKSPACE_R:
                continue
            if all(np.hypot(*(xy - p.position[:2]))
                   > o.footprint_radius + p.footprint_radius + 0.025 for p in placed):
                o.position = np.array([xy[0], xy[1], o.size[2] / 2])
                placed.append(o)
                break
        else:
            return False
    return True


def sample_objects(rng: np.random.Generator, scenario: str):
    """Sample the objects of a scenario. Returns (objects, pair ids)."""
    if scenario == 'mixed':
        while True:
            n = int(rng.integers(2, 7))
            objs = [_sample_object(k + 1, rng) for k in range(n)]
            if _place(objs, rng, []):
                return objs, ()
    if scenario in ('ambiguous', 'alternating'):
        # Two different materials side by side, nearly equally tall; which one is taller (the one
        # the gripper strikes) is random, so both materials are heard as targets across episodes.
        while True:
            m_a, m_b = rng.choice(mat.OBJECT_MATERIALS, size=2, replace=False)
            a, b = (_sample_object(k, rng, shape=str(rng.choice(PAIR_SHAPES)), material=str(m))
                    for k, m in ((1, m_a), (2, m_b)))
            if not PAIR_DZ[0] <= abs(a.size[2] - b.size[2]) <= PAIR_DZ[1]:
                continue
            gap = rng.uniform(*PAIR_GAP)
            direction = rng.uniform(-np.pi, np.pi)
            u = np.array([np.cos(direction), np.sin(direction)])
            # Body x along the gap direction: a box face, or the middle of a cup/bowl stave (a
            # flat face; staves stick out at their corners), faces the gap, so the gap is exact.
            for o in (a, b):
                o.yaw = direction
            ha, hb = a.size[0] / 2, b.size[0] / 2                # half extents along u
            centre = rng.uniform(-0.04, 0.04, 2)
            a.position = np.r_[centre - u * (ha + gap / 2), a.size[2] / 2]
            b.position = np.r_[centre + u * (hb + gap / 2), b.size[2] / 2]
            n_extra = int(rng.integers(0, 3))
            extras = [_sample_object(k + 3, rng) for k in range(n_extra)]
            if _place(extras, rng, [a, b]):
                return [a, b] + extras, (1, 2)
    raise ValueError(f'unknown scenario {scenario!r}')


# ---------------------------------------------------------------------------------------------
# MJCF

def _fmt(v) -> str:
    return ' '.join(f'{float(x):.6g}' for x in np.atleast_1d(v))


def _texture_xml(name: str, tex: str, rgba, rng) -> str:
    recipe = _TEXTURES.get(tex) or list(_TEXTURES.values())[sum(map(ord, tex)) % len(_TEXTURES)]
    rgb1 = np.clip(np.asarray(rgba[:3]), 0, 1)
    rgb2 = np.clip(rgb1 * rng.uniform(0.55, 0.85), 0, 1)
    attrs = ' '.join(f'{k}="{v}"' for k, v in recipe.items() if k != 'mark')
    mark = recipe.get('mark', 'none')
    markrgb = np.clip(rgb1 * rng.uniform(0.3, 0.7), 0, 1)
    return (f'<texture name="{name}" type="2d" {attrs} mark="{mark}" rgb1="{_fmt(rgb1)}" '
            f'rgb2="{_fmt(rgb2)}" markrgb="{_fmt(markrgb)}" width="64" height="64"/>')


def _texrepeat(tex: str, u) -> str:
    """Texture repeats per metre (texuniform): stripes are one-directional."""
    if tex == 'stripes':
        return f'{u(40, 90):.3g} 1'
    return f'{u(10, 40):.3g} {u(10, 40):.3g}'


def _contact_params(material: str) -> str:
    """Per-geom friction and contact softness from the material table.

    Contacts are critically damped (dampratio 1): MuJoCo's soft contacts cannot reproduce a
    coefficient of restitution faithfully, and under-damped ones made light objects chatter.
    Soft materials get longer contact time constants (they yield). Restitution enters the sound
    through the synthesizer instead."""
    m = mat.MATERIALS[material]
    timeconst = {'foam': 0.02, 'fabric': 0.015, 'cardboard': 0.008}.get(material, 0.004)
    return (f'friction="{float(m.friction):.3g} 0.005 0.0005" solref="{timeconst} 1" '
            f'solimp="0.9 0.97 0.001"')


def _camera_xyaxes() -> tuple:
    """MuJoCo camera axes (x right, y up; it looks along -z) in the TCP frame."""
    f = CAM_LOOKAT_TCP - CAM_POS_TCP
    f = f / np.linalg.norm(f)
    x = np.array([1.0, 0.0, 0.0])
    x = x - f * (x @ f)
    x /= np.linalg.norm(x)
    y = np.cross(-f, x)          # y = z × x with z = -f
    return x, y


def build_mjcf(objects: list, rng: np.random.Generator, timestep: float = 0.001) -> str:
    """MJCF text of the scene: table, objects, gripper with wrist camera and mic, lights."""
    u = rng.uniform
    assets, bodies = [], []
    table_app = mat.sample_appearance('table', rng)
    assets.append(_texture_xml('tex_table', str(rng.choice(['grain', 'plain', 'noise'])),
                               table_app['rgba'], rng))
    assets.append('<material name="mat_table" texture="tex_table" texrepeat="4 4" texuniform="true"/>')
    for o in objects:
        assets.append(_texture_xml(f'tex_{o.id}', o.texture, o.rgba, rng))
        assets.append(f'<material name="mat_{o.id}" texture="tex_{o.id}" texuniform="true" '
                      f'texrepeat="{_texrepeat(o.texture, u)}" specular="{o.finish[0]:.2f}" '
                      f'shininess="{o.finish[1]:.2f}" reflectance="{o.finish[2]:.2f}" '
                      f'rgba="1 1 1 {o.rgba[3]:.3g}"/>')
        q_body = _quat_axis_angle([0, 0, 1], o.yaw)
        geoms = []
        contact = _contact_params(o.material)
        cond = 'condim="6"' if o.shape in ('sphere', 'stick') else 'condim="3"'
        if o.shape in ('sphere', 'stick'):   # rolling resistance so round things come to rest
            contact = contact.replace('0.0005"', '0.002"', 1)
        for j, g in enumerate(o.geoms):
            quat = f' quat="{_fmt(g["quat"])}"' if 'quat' in g else ''
            geoms.append(f'<geom name="{o.name}_g{j}" type="{g["type"]}" size="{_fmt(g["size"])}" '
                         f'pos="{_fmt(g["pos"])}"{quat} density="{g["density"]:.6g}" '
                         f'material="mat_{o.id}" {contact} {cond}/>')
        bodies.append(f'<body name="{o.name}" pos="{_fmt(o.position)}" quat="{_fmt(q_body)}">'
                      f'<freejoint name="{o.name}_free"/>' + ''.join(geoms) + '</body>')

    # Gripper: x/y/z slides, yaw hinge, two fingers. Position servos with damping (kv).
    fl, (ft, _) = FINGER_LEN, FINGER_HALF
    cx, cy = _camera_xyaxes()
    mic = MIC_OFFSET_TCP
    gripper = f"""
    <body name="gripper_x" pos="0 0 0" gravcomp="1">
      <joint name="gx" type="slide" axis="1 0 0" range="{-REACH} {REACH}" armature="0.05" damping="2"/>
      <inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>
      <body name="gripper_y" gravcomp="1">
        <joint name="gy" type="slide" axis="0 1 0" range="{-REACH} {REACH}" armature="0.05" damping="2"/>
        <inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>
        <body name="gripper_z" gravcomp="1">
          <joint name="gz" type="slide" axis="0 0 1" range="-0.05 0.45" armature="0.05" damping="2"/>
          <inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>
          <body name="gripper" gravcomp="1">
            <joint name="gyaw" type="hinge" axis="0 0 1" armature="0.002" damping="0.05"/>
            <geom name="gripper_palm" type="box" size="0.06 0.022 0.012" pos="0 0 {fl + 0.012}"
                  rgba=".22 .22 .25 1" density="1500" friction="0.8 0.005 0.0005"/>
            <geom name="gripper_wrist" type="cylinder" size="0.03 0.04" pos="0 0 {fl + 0.064}"
                  rgba=".6 .6 .62 1" density="1500"/>
            <geom name="gripper_cammount" type="box" size="0.014 0.016 0.007"
                  pos="0 {CAM_POS_TCP[1] - 0.004} {CAM_POS_TCP[2] + 0.011}" rgba=".15 .15 .15 1" density="800"/>
            <camera name="wrist_camera" pos="{_fmt(CAM_POS_TCP)}" xyaxes="{_fmt(cx)} {_fmt(cy)}" fovy="{CAM_FOVY}"/>
            <site name="tcp" pos="0 0 0" size="0.004" group="5"/>
            <site name="wrist_mic" pos="{_fmt(mic)}" size="0.004" group="5"/>
            <body name="finger_r" gravcomp="1">
              <joint name="finger_r" type="slide" axis="1 0 0" range="0 {MAX_APERTURE / 2}" armature="0.01" damping="1"
                     solreflimit="0.004 1"/>
              <geom name="gripper_finger_r" type="capsule" size="{ft} {fl / 2 - ft}" pos="{ft} 0 {fl / 2}"
                    rgba=".75 .75 .78 1" density="2700" condim="3" {_contact_params('gripper').replace('0.005 0.0005', '0.01 0.001')}/>
            </body>
            <body name="finger_l" gravcomp="1">
              <joint name="finger_l" type="slide" axis="-1 0 0" range="0 {MAX_APERTURE / 2}" armature="0.01" damping="1"
                     solreflimit="0.004 1"/>
              <geom name="gripper_finger_l" type="capsule" size="{ft} {fl / 2 - ft}" pos="{-ft} 0 {fl / 2}"
                    rgba=".75 .75 .78 1" density="2700" condim="3" {_contact_params('gripper').replace('0.005 0.0005', '0.01 0.001')}/>
            </body>
          </body>
        </body>
      </body>
    </body>"""
    light_dir = np.array([u(-0.4, 0.4), u(-0.4, 0.4), -1.0])
    return f"""<mujoco model="sound_world">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="pyramidal" solver="PGS" noslip_iterations="10"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <map znear="0.005" zfar="20"/>
    <headlight ambient="{u(0.15, 0.3):.2f} {u(0.15, 0.3):.2f} {u(0.15, 0.3):.2f}" diffuse=".35 .35 .35" specular=".1 .1 .1"/>
  </visual>
  <asset>
    {chr(10).join('    ' + a for a in assets)}
  </asset>
  <worldbody>
    <light name="key" pos="{_fmt(-light_dir * 1.5)}" dir="{_fmt(light_dir)}" diffuse="{u(0.5, 0.8):.2f} {u(0.5, 0.8):.2f} {u(0.5, 0.8):.2f}" castshadow="true"/>
    <geom name="table" type="plane" size="0.6 0.6 0.01" pos="0 0 0" material="mat_table"
          {_contact_params('table')}/>
    <geom name="table_body" type="box" size="0.6 0.6 0.02" pos="0 0 -0.0201" material="mat_table"
          contype="0" conaffinity="0"/>
    {gripper}
    {chr(10).join('    ' + b for b in bodies)}
  </worldbody>
  <contact>
    <exclude body1="finger_l" body2="finger_r"/>
  </contact>
  <actuator>
    <position name="ax" joint="gx" kp="3000" kv="90" forcerange="-60 60"/>
    <position name="ay" joint="gy" kp="3000" kv="90" forcerange="-60 60"/>
    <position name="az" joint="gz" kp="3000" kv="90" forcerange="-30 30"/>
    <position name="ayaw" joint="gyaw" kp="20" kv="0.6" forcerange="-3 3"/>
    <position name="afr" joint="finger_r" kp="400" kv="8" forcerange="-12 12"/>
    <position name="afl" joint="finger_l" kp="400" kv="8" forcerange="-12 12"/>
  </actuator>
</mujoco>"""


def sample_obstacle(k: int, rng: np.random.Generator) -> ObjectSpec:
    """The fault obstacle (sim/faults.py) as object id k: a small plate of a random object material,
    24 +- 5 mm square, 4-6 mm thick (full extents; its body is a mocap body placed at run time)."""
    material = str(rng.choice(mat.OBJECT_MATERIALS))
    a, t = rng.uniform(0.019, 0.029), rng.uniform(0.004, 0.006)
    app = mat.sample_appearance(material, rng)
    geoms = [dict(type='box', size=[a / 2, a / 2, t / 2], pos=[0, 0, 0])]
    spec = ObjectSpec(id=k, shape='box', material=material, size=np.array([a, a, t]),
                      position=np.array(OBSTACLE_PARK), yaw=0.0, rgba=list(map(float, app['rgba'])),
                      texture=str(app.get('texture', 'flat')), geoms=geoms,
                      finish=(app['specular'], app['shininess'], app['reflectance']))
    spec.mass = float(mat.MATERIALS[material].density * a * a * t)
    return spec


def add_obstacle(xml: str, spec: ObjectSpec, rng: np.random.Generator) -> str:
    """The scene's MJCF with the obstacle `spec` as a mocap body parked inside the (visual) table
    slab, its collisions off (contype = conaffinity = 0) until a fault places it."""
    g = spec.geoms[0]
    asset = (_texture_xml(f'tex_{spec.id}', spec.texture, spec.rgba, rng)
             + f'<material name="mat_{spec.id}" texture="tex_{spec.id}" texuniform="true" '
               f'texrepeat="20 20" specular="{spec.finish[0]:.2f}" shininess="{spec.finish[1]:.2f}" '
               f'reflectance="{spec.finish[2]:.2f}" rgba="1 1 1 {spec.rgba[3]:.3g}"/>')
    body = (f'<body name="{spec.name}" mocap="true" pos="{_fmt(spec.position)}">'
            f'<geom name="{spec.name}_g0" type="box" size="{_fmt(g["size"])}" '
            f'material="mat_{spec.id}" {_contact_params(spec.material)} condim="3" contype="0" '
            f'conaffinity="0"/></body>')
    return xml.replace('  </asset>', f'    {asset}\n  </asset>', 1).replace(
        '  </worldbody>', f'    {body}\n  </worldbody>', 1)


def generate_scene(seed: int, scenario: str = 'mixed', timestep: float = 0.001) -> Scene:
    """Sample a scene for `seed` and `scenario` (one of ``SCENARIOS``)."""
    rng = np.random.default_rng([seed, 0x5CE7E])
    objects, pair = sample_objects(rng, scenario)
    xml = build_mjcf(objects, rng, timestep)
    return Scene(xml=xml, objects=objects, seed=seed, scenario=scenario, pair=pair)


def geom_sound_ids(model, objects: list) -> np.ndarray:
    """(ngeom,) int: the sound id of each geom (k object, 0 table, -1 gripper, -2 ignored)."""
    import mujoco
    ids = np.full(model.ngeom, IGNORE_ID, dtype=np.int64)
    body_of = model.geom_bodyid
    names = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b): b for b in range(model.nbody)}
    gripper_bodies = {names[n] for n in ('gripper_x', 'gripper_y', 'gripper_z', 'gripper',
                                         'finger_l', 'finger_r')}
    for g in range(model.ngeom):
        if body_of[g] in gripper_bodies:
            ids[g] = GRIPPER_ID
    ids[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, 'table')] = TABLE_ID
    for o in objects:
        ids[body_of == names[o.name]] = o.id
    return ids


def label_lut(sound_ids: np.ndarray) -> np.ndarray:
    """(ngeom + 1,) uint8 look-up table geom id + 1 -> label (index 0 = background)."""
    lut = np.zeros(len(sound_ids) + 1, np.uint8)
    lab = np.where(sound_ids >= 1, sound_ids, 0)
    lab = np.where(sound_ids == GRIPPER_ID, GRIPPER_LABEL, lab)
    lut[1:] = lab.astype(np.uint8)
    return lut
