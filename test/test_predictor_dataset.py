"""predictor_dataset on one tiny simulated episode: windows, contacts, cache, hold-out split, batches.

The simulator's ground-truth ``impulse`` is (1+e)·m·v at first contact (changed scale): the dataset
only carries it through as metadata, so it must equal the truth value, unscaled."""
import json

import numpy as np

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
