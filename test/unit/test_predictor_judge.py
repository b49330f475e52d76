"""The predictor evaluation's per-contact judge: fitted on recorded contacts of training windows,
it names the material of the sound at a window's target contact (the nearest generated onset)."""
from types import SimpleNamespace

import numpy as np

from hearing_hands_ros.eval.contact_judge import (contact_accuracy, fit_contact_judge, judge_contacts,
                                                  target_contact_time)

SR = 16000


def _ring(t_hit: float, decay_s: float, freq: float, rng, seconds: float = 1.5) -> np.ndarray:
    """A struck mode at t_hit: 'glass' rings long, 'foam' dies fast."""
    t = np.arange(int(seconds * SR)) / SR
    x = 1e-3 * rng.standard_normal(len(t))
    on = t >= t_hit
    tt = t[on] - t_hit
    x[on] += 0.5 * np.exp(-tt / decay_s) * np.sin(2 * np.pi * freq * tt)
    return x.astype(np.float32)


def _windows(n: int, seed: int):
    rng = np.random.default_rng(seed)
    clips, meta = [], []
    for i in range(n):
        mat = ('glass', 'foam')[i % 2]
        t_hit = float(rng.uniform(0.2, 0.8))
        clips.append(_ring(t_hit, 0.4 if mat == 'glass' else 0.008, rng.uniform(800, 3000), rng))
        meta.append(dict(material=mat, contacts=[
            dict(time=0.05, materials=['table', 'gripper']),             # not the target
            dict(time=t_hit, materials=['gripper', mat])]))
    return SimpleNamespace(meta=meta, valid=np.full(n, 150),
                           audio_float=lambda i, frames=None: clips[i]), clips, meta


def test_contact_time_and_judge_separates_ringing_from_dead_sounds():
    train, _, _ = _windows(24, 0)
    assert target_contact_time(train.meta[1]) == train.meta[1]['contacts'][1]['time']
    assert target_contact_time(dict(material='wood', contacts=[])) is None
    clf = fit_contact_judge(train, SR)
    _, clips, meta = _windows(10, 1)
    named = judge_contacts(clf, clips, meta, SR)
    assert contact_accuracy(named, meta) == 1.0
    # the same sounds 60 ms late are still judged at their own onset (within the 100 ms search)
    late = [np.concatenate([np.zeros(int(0.06 * SR), np.float32), c]) for c in clips]
    assert contact_accuracy(judge_contacts(clf, late, meta, SR), meta) == 1.0
    # a window without a target contact is not judged
    assert judge_contacts(clf, clips[:1], [dict(material='foam', contacts=[])], SR) == [None]
