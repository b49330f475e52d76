"""Faults in the sound world (sim/faults.py): actions that go wrong after their paths were
published. Forced faults on short scripted episodes, the random draw, the CLI option."""
import os

os.environ.setdefault('MUJOCO_GL', 'osmesa')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hearing_hands_ros.sim import faults as flt  # noqa: E402
from hearing_hands_ros.sim.world import SimConfig, SoundWorld  # noqa: E402

SMALL = dict(width=32, height=32)


def _run(script=None, **cfg):
    world = SoundWorld(SimConfig(**{**SMALL, **cfg}), script=script)
    events = list(world.run())
    return world.truth, events


def _gripper_hits(truth, oid, after=-1.0):
    return [c for c in truth['contacts'] if c['gripper'] and c['objects'][0] == oid
            and c['time'] >= after]


@pytest.fixture(scope='module')
def tap():
    """Seed 2: a wooden plate (1) and a glass sphere (2); one tap on the plate, no fault."""
    return _run([('tap', 1)], seed=2)


def test_no_faults_is_the_episode_without_the_field(tap):
    truth, _ = tap
    again, _ = _run([('tap', 1)], seed=2, faults=0.0, fault_kinds=('slip',))
    assert again['contacts'] == truth['contacts'] and again['objects'] == truth['objects']
    assert truth['faults'] == [] and [a['fault'] for a in truth['actions']] == [None]
    assert len(_gripper_hits(truth, 1)) == 1


@pytest.mark.parametrize('kind', ['removed', 'moved'])
def test_target_moved_or_removed_is_not_touched(tap, kind):
    truth, events = _run([('tap', 1, kind)], seed=2)
    (action,) = truth['actions']
    (fault,) = truth['faults']
    assert action['fault'] == kind and fault['action'] == 0 and fault['kind'] == kind
    assert fault['time'] == pytest.approx(action['contact_start'], abs=2e-3)
    assert not _gripper_hits(truth, 1, after=action['contact_start'])
    (hit,) = _gripper_hits(tap[0], 1)                 # the fault-free tap, and its planned time
    assert fault['time'] < fault['effect_time'] == pytest.approx(hit['time'], abs=0.01)
    assert not [c for c in truth['contacts'] if 1 in c['objects'] and c['time'] > fault['time']]
    later = [e.labels for e in events if e.kind == 'image' and e.t > fault['time'] + 0.05]
    seen = np.mean([(lab == 1).any() for lab in later])
    if kind == 'removed':
        assert seen == 0                              # gone from the camera too
    else:
        assert 0.06 <= np.hypot(*fault['params']['shift']) <= 0.1 and seen > 0


def test_obstacle_on_the_idle_path_is_struck():
    truth, events = _run([('idle', 0, 'obstacle')], seed=2)
    (fault,) = truth['faults']
    obstacle = truth['objects'][-1]
    assert obstacle['obstacle'] and obstacle['id'] == fault['params']['obstacle'] == 3
    assert [o.get('obstacle', False) for o in truth['objects']] == [False, False, True]
    hits = [c for c in truth['contacts'] if c['objects'] == [3, -1]]
    assert hits and hits[0]['materials'] == [obstacle['material'], 'gripper']
    assert fault['effect_time'] == hits[0]['time'] > fault['time']
    assert abs(fault['effect_time'] - fault['params']['planned_hit']) < 0.05
    assert any((e.labels == 3).any() for e in events if e.kind == 'image')
    clean, _ = _run([('idle', 0)], seed=2)
    assert clean['contacts'] == [] and len(clean['objects']) == 2


def test_slip_drops_the_object_before_its_place():
    """Seed 0: a plastic box (1) picked and placed; the grasp opens during the lift or carry."""
    truth, events = _run([('pick_place', 1, 'slip')], seed=0)
    (fault,) = truth['faults']
    action = truth['actions'][0]
    contact_motion = [e for e in events if e.kind == 'path'][1]
    z, t = contact_motion.positions[:, 2], contact_motion.times
    top = np.argmax(z)                                # carry height; then down to the place
    t_place = t[top + np.argmax(z[top:] <= action['params']['grasp_height'])]
    falls = [c['time'] for c in truth['contacts'] if c['objects'] == [1, 0] and c['kind'] == 'impact']
    assert action['contact_start'] < fault['effect_time'] < min(falls) < t_place - 0.3
    assert not [f for f in falls if abs(f - t_place) < 0.3]
    clean, _ = _run([('pick_place', 1)], seed=0)
    clicks = [c['time'] for c in clean['contacts'] if c['objects'] == [1, 0]]
    assert clicks and abs(clicks[0] - t_place) < 0.1  # without the fault: the planned click


def test_random_draw_share_and_reproducibility():
    rng = np.random.default_rng([7, flt.FAULT_SEED])
    kinds = [flt.draw(*rng.random(2), 0.3, flt.FAULT_KINDS, 'drop') for _ in range(4000)]
    assert np.mean([k is not None for k in kinds]) == pytest.approx(0.3, abs=0.03)
    assert {k for k in kinds if k} == set(flt.FAULT_KINDS)
    assert {flt.draw(0.0, v, 1.0, flt.FAULT_KINDS, 'idle') for v in np.linspace(0, 1, 9)} == {'obstacle'}
    everything, _ = _run(seed=3, n_actions=3, faults=1.0)
    assert all(a['fault'] for a in everything['actions'])
    assert [f['action'] for f in everything['faults']] == [0, 1, 2]
    marked = []
    for seed in (4, 5, 6):
        truth, _ = _run(seed=seed, n_actions=4, faults=0.3)
        marked += [a['fault'] is not None for a in truth['actions']]
        plain = SoundWorld(SimConfig(seed=seed, **SMALL)).truth['objects']
        assert [o for o in truth['objects'] if not o.get('obstacle')] == plain   # same scene
    assert 0.1 <= np.mean(marked) <= 0.55, marked
    again, _ = _run(seed=6, n_actions=4, faults=0.3)
    assert again['faults'] == truth['faults'] and again['contacts'] == truth['contacts']


def test_config_and_script_are_checked():
    for bad in (dict(faults=1.5), dict(faults=-0.1), dict(fault_kinds=('moved', 'teleported'))):
        with pytest.raises(ValueError, match='fault'):
            SimConfig(**bad)
    with pytest.raises(ValueError, match='cannot take'):
        SoundWorld(SimConfig(seed=2, **SMALL), script=[('idle', 0, 'removed')])
    with pytest.raises(ValueError, match='fault kinds'):
        SoundWorld(SimConfig(seed=2, **SMALL), script=[('tap', 1, 'vanished')])


def test_cli_faults_option(cli_run, tmp_path):
    code, _, err = cli_run('simulate', '--out', str(tmp_path), '--faults', '1.5')
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and 'faults must be in [0, 1]' in lines[0]
    assert not any(tmp_path.iterdir())
    code, out, _ = cli_run('simulate', '--help')
    assert code == 0 and '--faults' in out
