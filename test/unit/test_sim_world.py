"""The MuJoCo sound world: event stream, determinism, contact ground truth vs audio, labels."""
import json
import os

os.environ.setdefault('MUJOCO_GL', 'osmesa')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hearing_hands_ros.sim.scene import PAIR_DZ, PAIR_GAP, PAIR_SHAPES  # noqa: E402
from hearing_hands_ros.sim.world import SimConfig, SoundWorld  # noqa: E402

SR = 16000


def _run(world):
    evs = list(world.run())
    audio = np.concatenate([e.samples for e in evs if e.kind == 'audio'])
    return evs, audio


def _frame_rms(audio, hop=32):
    """RMS per 2 ms frame."""
    n = len(audio) // hop * hop
    return np.sqrt(np.mean(audio[:n].reshape(-1, hop).astype(np.float64) ** 2, axis=1))


@pytest.fixture(scope='module')
def tap_episode():
    """Seed 2: a wooden plate (1) and box (2); one tap on the plate."""
    world = SoundWorld(SimConfig(seed=2, width=64, height=64), script=[('tap', 1)])
    evs, audio = _run(world)
    return world, evs, audio


def test_stream_is_chronological_and_complete(tap_episode):
    world, evs, audio = tap_episode
    c = world.cfg
    ts = [e.t for e in evs]
    assert all(a <= b for a, b in zip(ts, ts[1:]))
    T = world.truth['duration']
    assert T > 1.0 and abs(T * SR / c.chunk_samples - round(T * SR / c.chunk_samples)) < 1e-6
    kinds = [e.kind for e in evs]
    assert kinds.count('pose') == int(np.ceil(T * c.pose_hz - 1e-9))
    assert kinds.count('image') == int(np.ceil(T * c.fps - 1e-9))
    assert kinds.count('path') == 2                          # approach, then the tap
    assert len(audio) == round(T * SR) and audio.dtype == np.float32
    chunks = [e for e in evs if e.kind == 'audio']
    assert all(len(e.samples) == c.chunk_samples for e in chunks)
    assert np.allclose([e.t for e in chunks], np.arange(len(chunks)) * c.chunk_samples / SR)
    img = next(e for e in evs if e.kind == 'image')
    assert img.rgb.shape == (64, 64, 3) and img.rgb.dtype == np.uint8
    assert img.labels.shape == (64, 64) and img.labels.dtype == np.uint8
    approach, strike = [e for e in evs if e.kind == 'path']
    act = world.truth['actions'][0]
    assert approach.t == pytest.approx(act['start'])
    assert act['start'] < act['contact_start'] < act['end']
    assert strike.t == pytest.approx(act['contact_start']) and strike.times[-1] == pytest.approx(act['end'])
    assert approach.times[-1] == pytest.approx(strike.times[0])
    for path in (approach, strike):
        assert path.positions.shape == (len(path.times), 3) and path.orientations.shape[1] == 4
        assert np.all(np.diff(path.times) > 0) and path.times[0] == pytest.approx(path.t)
    assert np.allclose(approach.positions[-1], strike.positions[0])   # one continuous motion
    # the contact motion (tap straight down) starts above the plate: no approach in it
    assert np.ptp(strike.positions[:, :2], axis=0).max() < 1e-6
    json.dumps(world.truth)                                  # serializable as is


def test_tap_impact_and_audio_onset(tap_episode):
    world, evs, audio = tap_episode
    truth = world.truth
    taps = [c for c in truth['contacts'] if c['kind'] == 'impact' and c['gripper']]
    assert taps, truth['contacts']
    assert any(c['objects'] == [1, -1] and c['materials'] == ['wood', 'gripper']
               and c['action'] == 0 for c in taps)
    for c in truth['contacts']:
        assert c['stamp_ns'] == truth['start_time_ns'] + round(c['time'] * 1e9)
    rms = _frame_rms(audio)
    floor = np.median(rms[:int(0.2 * SR / 32)])               # lead-in: nothing touches
    assert 0.5e-3 < floor < 2e-3                              # the synth's -60 dBFS noise floor
    for c in taps:
        k = int(c['time'] * SR / 32)
        assert rms[k:k + 5].max() > 10 * floor                # rises within 10 ms
        assert rms[max(k - 10, 0):k - 1].max() < 3 * floor    # and not before
    # far from any contact: near the noise floor
    t_contacts = np.array([c['time'] for c in truth['contacts']])
    t = (np.arange(len(rms)) + 0.5) * 32 / SR
    far = np.array([np.all((ti < t_contacts - 0.05) | (ti > t_contacts + 1.5)) for ti in t])
    assert far.sum() > 50 and np.median(rms[far]) < 1.5 * floor


def test_deterministic_for_a_seed():
    cfg = SimConfig(seed=4, n_actions=1, width=32, height=32)
    (e1, a1), (e2, a2) = _run(w1 := SoundWorld(cfg)), _run(w2 := SoundWorld(cfg))
    assert a1.tobytes() == a2.tobytes()
    assert json.dumps(w1.truth) == json.dumps(w2.truth)
    assert [e.t for e in e1] == [e.t for e in e2]
    im1 = [e.rgb for e in e1 if e.kind == 'image']
    im2 = [e.rgb for e in e2 if e.kind == 'image']
    assert all(np.array_equal(x, y) for x, y in zip(im1, im2))


def test_idle_episode_is_silent():
    world = SoundWorld(SimConfig(seed=1, width=32, height=32), script=[('idle', 0)])
    evs, audio = _run(world)
    assert world.truth['actions'][0]['type'] == 'idle'
    assert world.truth['contacts'] == []                     # resting objects make no events
    rms = _frame_rms(audio)
    assert rms.max() < 3e-3
    poses = np.array([e.position for e in evs if e.kind == 'pose'])
    assert np.ptp(poses, axis=0).max() > 0.05                 # ... although the gripper moved


def _project(K, camera_pose, p):
    """Pixel (u, v) and depth of world point p (3,) in a camera with pose (pos, quat xyzw)."""
    pos, (x, y, z, w) = camera_pose
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    pc = R.T @ (np.asarray(p) - pos)
    return (K @ pc)[:2] / pc[2], pc[2]


@pytest.mark.parametrize('seed', [5, 11])
def test_ambiguous_strikes_only_the_taller_of_the_pair(seed):
    """Ambiguous scenario: two objects of different materials, a few millimetres apart in height,
    a small gap; every strike comes straight down over the gap and touches only the taller one,
    and at the onset the camera sees the two left and right of the fingers."""
    world = SoundWorld(SimConfig(scenario='ambiguous', seed=seed, width=48, height=48))
    evs, _ = _run(world)
    truth = world.truth
    o1, o2 = truth['objects'][:2]
    assert o1['material'] != o2['material']
    assert {o1['shape'], o2['shape']} <= set(PAIR_SHAPES)
    assert PAIR_DZ[0] <= abs(o1['size'][2] - o2['size'][2]) <= PAIR_DZ[1]
    centre = np.linalg.norm(np.subtract(o1['initial_position'][:2], o2['initial_position'][:2]))
    gap = centre - 0.5 * (o1['size'][0] + o2['size'][0])
    assert PAIR_GAP[0] - 1e-3 < gap < PAIR_GAP[1] + 1e-3
    tall, short = (1, 2) if o1['size'][2] > o2['size'][2] else (2, 1)
    actions = truth['actions']
    assert 3 <= len(actions) <= 6
    for a in actions:
        assert a['type'] in ('tap', 'hit', 'knock') and a['params']['ambiguous']
        assert a['target'] == tall and a['params']['pair'] == [tall, short]
    gripper = [c for c in truth['contacts'] if c['gripper']]
    assert {c['objects'][0] for c in gripper} == {tall}          # never the shorter one
    impacts = [c for c in gripper if c['kind'] == 'impact']
    assert {c['action'] for c in impacts} == set(range(len(actions)))   # every action strikes
    # the view at the first onset: target and other object on either side of the fingers
    K = np.array(world.camera_info()['K']).reshape(3, 3)
    images = [e for e in evs if e.kind == 'image']
    t_hit = impacts[0]['time']
    frame = min(images, key=lambda e: abs(e.t - t_hit))
    pose = min((e for e in evs if e.kind == 'pose'), key=lambda e: abs(e.t - t_hit))
    (u, _), depth = _project(K, frame.camera_pose, pose.position)
    assert depth > 0 and 0 <= u < 48
    cols = {k: np.nonzero(frame.labels == k)[1] for k in (tall, short)}
    assert all(len(c) > 20 for c in cols.values())
    assert (cols[tall].mean() - u) * (cols[short].mean() - u) < 0


def test_alternating_strikes_each_of_the_pair_alone_then_at_the_gap_in_turn():
    """Alternating scenario: the ambiguous pair; the first two actions strike each object alone
    (only it is touched), then gap strikes (the taller one, flagged ambiguous) and lone strikes
    alternate."""
    world = SoundWorld(SimConfig(scenario='alternating', seed=3, width=48, height=48, n_actions=6))
    _run(world)
    truth = world.truth
    o1, o2 = truth['objects'][:2]
    tall = 1 if o1['size'][2] > o2['size'][2] else 2
    actions = truth['actions']
    modes = [a['params'].get('mode') for a in actions]
    assert modes == ['lone', 'lone', 'gap', 'lone', 'gap', 'lone']
    assert {actions[0]['target'], actions[1]['target']} == {1, 2}
    for a in actions:
        assert a['params']['ambiguous'] == (a['params']['mode'] == 'gap')
        if a['params']['mode'] == 'gap':
            assert a['target'] == tall
    for c in truth['contacts']:
        if c['gripper'] and c['kind'] == 'impact':
            assert c['objects'][0] == actions[c['action']]['target']   # the struck one only
    struck = {c['action'] for c in truth['contacts'] if c['gripper'] and c['kind'] == 'impact'}
    assert struck == set(range(len(actions)))


def test_labels_match_visible_objects(tap_episode):
    world, evs, _ = tap_episode
    ids = {o['id'] for o in world.truth['objects']}
    images = [e for e in evs if e.kind == 'image']
    seen = set()
    for e in images:
        u = set(np.unique(e.labels).tolist())
        assert u <= ids | {0, 255}
        assert 255 in u                                       # the fingers are always in view
        seen |= u
    assert 1 in seen
    # Project the tap point with K and the camera pose: it is labelled as the target just
    # before contact (checks intrinsics, optical-frame convention and label mapping together).
    K = np.array(world.camera_info()['K']).reshape(3, 3)
    t_hit = min(c['time'] for c in world.truth['contacts'] if c['gripper'])
    frame = max((e for e in images if e.t < t_hit - 0.1), key=lambda e: e.t)
    p = np.array(world.truth['actions'][0]['params']['point']) - [0, 0, 0.002]
    (u, v), depth = _project(K, frame.camera_pose, p)
    assert depth > 0
    r, c = int(round(v)), int(round(u))
    assert 0 <= r < 64 and 0 <= c < 64
    assert 1 in frame.labels[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]


def test_ambiguous_strike_side_is_random():
    """The struck object of the ambiguous pair is left or right of the fingers in the wrist view
    with equal chance (the wrist yaw faces the gap from either side), whatever the previous yaw."""
    from hearing_hands_ros.sim.actions import ObjState, _Builder, plan_ambiguous
    eye = np.eye(3)

    def box(i, x, h):
        size = np.array([0.04, 0.04, h])
        pos = np.array([x, 0.0, h / 2])
        return ObjState(i, 'box', size, pos, eye, pos - size / 2, pos + size / 2)
    o, other = box(1, -0.0235, 0.05), box(2, 0.0235, 0.047)    # 7 mm gap, o 3 mm taller
    rng = np.random.default_rng(0)
    sides = []
    for _ in range(40):
        b = _Builder(0.0, [0.0, -0.1, 0.2, 0.3, 0.0], 0.09)
        plan_ambiguous(b, o, other, rng)
        sides.append(np.sign(np.cos(np.array(b.q)[-1, 3])))    # tool x towards other (+1) or o
    assert 10 < sides.count(1.0) < 30
