"""predictor_dataset on one tiny simulated episode: windows, contacts, cache, hold-out split, batches.

The simulator's ground-truth ``impulse`` is (1+e)·m·v at first contact (changed scale): the dataset
only carries it through as metadata, so it must equal the truth value, unscaled."""
import json

import numpy as np
import pytest

from hearing_hands_ros.data import predictor_dataset as D
from hearing_hands_ros.models import predictor as P


def test_windows_contacts_cache_split(bags, tmp_path):
    cfg = P.PredictorConfig()
    data = D.load_windows(bags, cfg, cache_dir=tmp_path / 'cache', progress=False)
    assert len(data) >= 1
    W, T = data.traj.shape[:2]
    assert data.mel.shape[0] == W and data.mel.shape[-1] == T and data.audio.dtype == np.int16
    assert np.isfinite(data.traj).all() and (data.valid >= 1).all() and (data.valid <= T).all()
    truth = json.loads(next(bags.glob('*.truth.json')).read_text())
    events = [(float(c['time']), float(c.get('impulse', 0.0))) for c in truth['contacts']]
    for i, m in enumerate(data.meta):
        for c in m['contacts']:
            assert 0.0 <= c['time'] < data.valid[i] / cfg.frame_rate
            t_abs = c['time'] + m['start']
            assert any(abs(t - t_abs) < 2e-3 and abs(v - c['impulse']) < 1e-6 for t, v in events)
    again = D.load_windows(bags, cfg, cache_dir=tmp_path / 'cache', progress=False)   # from cache
    np.testing.assert_array_equal(again.traj, data.traj)
    assert again.meta == data.meta
    train, held = D.split_holdout(data, data.meta[0]['episode_combos'][:1])
    assert len(train) == 0 and len(held) == len(data)              # one episode: all held out
    train, held = D.split_holdout(data, [])
    assert len(held) == 0
    b = D.full_batch(data, [0], int(data.valid[0]))
    assert b['traj'].shape[0] == 1 and b['mel'].shape[1] == cfg.n_mels


def test_action_of_splits_approach_from_contact_motion():
    truth = {'actions': [
        {'type': 'tap', 'start': 1.0, 'contact_start': 1.8, 'end': 2.5, 'target': 3},
        {'type': 'idle', 'start': 2.5, 'contact_start': None, 'end': 3.5, 'target': 0},
        {'type': 'push', 'start': 3.5, 'end': 5.0, 'target': 2}]}    # older bags: one path
    assert D._action_of(truth, 1.0) == dict(truth['actions'][0], type='idle', target=None)
    assert D._action_of(truth, 1.8) is truth['actions'][0]
    assert D._action_of(truth, 2.5)['type'] == 'idle'
    assert D._action_of(truth, 3.5) is truth['actions'][2]
    assert D._action_of(truth, 3.0) is None and D._action_of(None, 1.0) is None


def test_contact_motions_see_their_target(bags, tmp_path):
    """Each action is published as approach + contact motion: the approach window has no
    target (material 'none'); the contact motion starts where the camera sees the object, so the
    local view at its first contact is inside the image (not the zero crop of an off-image
    point)."""
    cfg = P.PredictorConfig()
    data = D.load_windows(bags, cfg, cache_dir=tmp_path / 'cache', progress=False)
    truth = json.loads(next(bags.glob('*.truth.json')).read_text())
    contact_starts = {round(a['contact_start'], 2) for a in truth['actions'] if a['contact_start']}
    assert contact_starts and len(data) == len(contact_starts) + len(truth['actions'])
    seen = 0
    for i, m in enumerate(data.meta):
        if round(m['start'], 2) not in contact_starts:
            assert m['material'] == D.NO_MATERIAL and m['action'] == 'idle'
            continue
        hit = [c for c in m['contacts'] if m['material'] in c['materials']]
        if m['material'] == D.NO_MATERIAL or not hit:
            continue
        k = min(int(hit[0]['time'] * cfg.frame_rate) // cfg.frames_per_crop, data.crops.shape[1] - 1)
        assert data.crops[i, k].max() > 0, m
        seen += 1
    assert seen >= 1


def test_gripper_plan_or_recorded_opening(bags, tmp_path):
    """``gripper='plan'`` takes the finger opening of each window from the bag's planned_gripper
    (what the nodes get), ``'recorded'`` from the joint states while the path ran; they differ
    where the fingers close on an object (the plan closes fully, the recording stops on it)."""
    from hearing_hands_ros.data.bags import list_episodes, read_episode
    from hearing_hands_ros.trajectory import FEATURE_LAYOUT
    cfg = P.PredictorConfig()
    plan = D.load_windows(bags, cfg, cache_dir=tmp_path / 'cache', progress=False, gripper='plan')
    rec = D.load_windows(bags, cfg, cache_dir=tmp_path / 'cache', progress=False)
    ep = read_episode(list_episodes(bags)[0])
    assert ep.gripper_plans and len(plan) == len(rec)
    col = FEATURE_LAYOUT.index('aperture')
    stamp, times, *_ = ep.paths[0]
    t, a = ep.gripper_plans[stamp]
    assert np.isclose(plan.traj[0, 0, col], a[0], atol=1e-3)               # the plan's opening
    assert not np.allclose(plan.traj[:, :, col], rec.traj[:, :, col])
    with pytest.raises(ValueError, match='gripper'):
        D.episode_windows(ep, cfg, gripper='executed')
