"""Sound classifier (eval/sound_classifier.py) and material separability (eval/materials.py).

Clips are synthesized directly with the modal synth (fast, many objects); one test runs the
whole path: simulated episodes -> rosbag2 -> clips -> classifier -> JSON + confusion figure."""
import argparse
import json
import types

import numpy as np
import pytest

from hearing_hands_ros.eval import materials
from hearing_hands_ros.eval.sound_classifier import (PRE, SoundClassifier, clip_features,
                                                     clips_from_episode, feature_names)
from hearing_hands_ros.sim.materials import OBJECT_MATERIALS
from hearing_hands_ros.sim.modal import SHAPES, Excitation, ObjectSound, synthesize

SR = 16000


def _hit(seed: int, material: str) -> np.ndarray:
    """A 0.5 s clip: a random object of `material` struck (mostly by the gripper) at t = 0.05 s."""
    rng = np.random.default_rng([seed, OBJECT_MATERIALS.index(material)])
    obj = ObjectSound(material, str(rng.choice(SHAPES)), tuple(rng.uniform(0.04, 0.12, 3)))
    J = float(np.exp(rng.uniform(np.log(0.02), np.log(0.3))))
    other = -1 if rng.random() < 0.7 else 0
    ex = Excitation(0.05, 1, 'impact', normal_impulse=J, position=(0.0, 0.0, 0.0), other=other)
    return synthesize({1: obj}, [ex], 0.5, SR, (0.0, 0.0, rng.uniform(0.08, 0.3)), seed=seed)


def _dataset(seeds):
    clips, y = [], []
    for s in seeds:
        for m in OBJECT_MATERIALS:
            clips.append(_hit(s, m))
            y.append(m)
    X = np.stack([clip_features(c, SR, 0.05) for c in clips])
    return X, np.array(y), clips


@pytest.fixture(scope='module')
def data():
    """Train on objects of seeds 0..23, test on other objects (seeds 100..109)."""
    Xtr, ytr, _ = _dataset(range(24))
    Xte, yte, clips = _dataset(range(100, 110))
    return Xtr, ytr, Xte, yte, clips


@pytest.fixture(scope='module')
def clf(data):
    return SoundClassifier().fit(data[0], data[1])


def test_features_shape_and_names():
    x = _hit(0, 'wood')
    f = clip_features(x, SR, 0.05)
    assert f.shape == (len(feature_names()),) and f.dtype == np.float32 and np.all(np.isfinite(f))
    assert clip_features(x, SR, 0.05, include_level=True).shape == (len(feature_names(True)),)
    silent = clip_features(np.zeros(SR), SR, 0.3)              # silence / outside: still finite
    assert np.all(np.isfinite(silent))
    assert np.all(np.isfinite(clip_features(x, SR, 10.0)))


def test_material_accuracy_on_held_out_objects(data, clf):
    Xtr, ytr, Xte, yte, _ = data
    chance = 1 / len(OBJECT_MATERIALS)
    acc = np.mean(clf.predict(Xte) == yte)
    assert acc > 3.5 * chance, acc
    ncm = SoundClassifier(method='ncm').fit(Xtr, ytr)
    assert np.mean(ncm.predict(Xte) == yte) > 2 * chance
    P = clf.predict_proba(Xte)
    assert P.shape == (len(yte), len(OBJECT_MATERIALS)) and np.allclose(P.sum(1), 1)
    assert list(clf.classes_) == sorted(OBJECT_MATERIALS)


def test_gain_invariance(data, clf):
    """The same clip at half (or a tenth of) the volume has the same features and material."""
    clips = data[4]
    for c in clips[:16]:
        f = clip_features(c, SR, 0.05)
        for g in (0.5, 0.1):
            np.testing.assert_allclose(clip_features(g * c, SR, 0.05), f, atol=1e-4)
        lv = clip_features(c, SR, 0.05, include_level=True)
        lv2 = clip_features(0.5 * c, SR, 0.05, include_level=True)
        assert lv2[-1] == pytest.approx(lv[-1] - 0.602, abs=1e-3)   # level feature = dB / 10
    half = [clf.predict_audio(0.5 * c, SR, 0.05)[0] for c in clips]
    full = [clf.predict_audio(c, SR, 0.05)[0] for c in clips]
    assert half == full


@pytest.mark.parametrize('suffix', ['.npz', '.json'])
def test_save_load_round_trip(tmp_path, data, clf, suffix):
    path = clf.save(tmp_path / f'material{suffix}')
    assert path.stat().st_size < 100_000
    back = SoundClassifier.load(path)
    Xte = data[2]
    assert np.array_equal(back.predict(Xte), clf.predict(Xte))
    np.testing.assert_allclose(back.predict_proba(Xte), clf.predict_proba(Xte), rtol=0, atol=1e-12)
    assert (back.window, back.pre, back.method) == (clf.window, clf.pre, clf.method)
    ncm = SoundClassifier(method='ncm').fit(data[0], data[1])
    assert np.array_equal(SoundClassifier.load(ncm.save(tmp_path / f'ncm{suffix}')).predict(Xte),
                          ncm.predict(Xte))


def test_predict_audio_default_offset(clf):
    """A generated clip whose sound starts PRE into it (the default offset)."""
    x = _hit(7, 'metal')[int((0.05 - PRE) * SR):]
    assert clf.predict_audio(x, SR).shape == (1,)
    assert np.array_equal(clf.predict_audio(x, SR), clf.predict(clip_features(x, SR, PRE)[None]))


def _contact(t, objects, materials, action, kind='impact', duration=0.0):
    return dict(time=t, objects=objects, materials=materials, kind=kind, impulse=0.1,
                duration=duration, action=action)


def test_clips_from_episode_selection():
    """Labels, and which events are skipped: overlapped, merged, unlabelled, inaudible, outside."""
    objs = {1: ObjectSound('wood', 'box', (0.05, 0.05, 0.05)),
            2: ObjectSound('metal', 'cup', (0.07, 0.07, 0.09)),
            3: ObjectSound('glass', 'bowl', (0.12, 0.12, 0.05))}
    hits = [(0.5, 1, -1, 0.1), (1.5, 2, 0, 0.1), (3.0, 1, -1, 0.1), (3.1, 3, -1, 0.1),
            (5.0, 3, -1, 0.1), (5.1, 3, 0, 0.05), (6.0, -1, 0, 0.1), (7.0, 1, -1, 1e-6),
            (7.9, 2, -1, 0.1)]
    ex = [Excitation(t, a, 'impact', normal_impulse=J, other=b) for t, a, b, J in hits]
    start_ns = 10 ** 18
    audio = synthesize(objs, ex, 8.0, SR, (0.0, 0.0, 0.15), seed=3)
    mat = {1: 'wood', 2: 'metal', 3: 'glass', 0: 'table', -1: 'gripper'}
    contacts = [_contact(t, [a, b], [mat[a], mat[b]], action=i % 2)
                for i, (t, a, b, _) in enumerate(hits)]
    truth = dict(start_time_ns=start_ns, contacts=contacts,
                 actions=[dict(index=0, type='tap'), dict(index=1, type='drop')])
    ep = types.SimpleNamespace(audio=audio, audio_start_ns=start_ns, sample_rate=SR, truth=truth)
    X, y, meta = clips_from_episode(ep)
    assert list(y) == ['wood', 'metal', 'glass']
    assert list(meta['times']) == [0.5, 1.5, 5.0] and list(meta['index']) == [0, 1, 4]
    assert meta['counts'] == dict(events=9, used=3, overlapped=2, merged=1, no_label=1,
                                  inaudible=1, outside=1)
    assert X.shape == (3, len(feature_names()))
    # the audio may start later than the episode: times shift, the same clips come out
    late = types.SimpleNamespace(audio=audio[SR // 10:], audio_start_ns=start_ns + 10 ** 8,
                                 sample_rate=SR, truth=truth)
    X2, y2, _ = clips_from_episode(late)
    assert list(y2) == list(y) and np.allclose(X2, X, atol=1e-5)
    _, ya, _ = clips_from_episode(ep, kind='action')
    assert list(ya) == ['tap', 'drop', 'tap']   # 6.0 (gripper on table) has an action label


def test_evaluate_materials_cli_on_simulated_bags(tmp_path):
    """Simulate -> rosbag2 -> evaluate: JSON with the metrics and a confusion-matrix PNG."""
    from hearing_hands_ros.data.bags import write_episode
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld
    for name, seed in (('train', 2), ('test', 1)):
        world = SoundWorld(SimConfig(seed=seed, n_actions=2, width=32, height=32))
        write_episode(world, tmp_path / name, 'episode_0000')
    p = argparse.ArgumentParser()
    materials.add_arguments(p)
    out = tmp_path / 'out'
    args = p.parse_args(['--train', str(tmp_path / 'train'), '--test', str(tmp_path / 'test'),
                         '--json', str(out / 'm.json'), '--figure', str(out / 'm.png'),
                         '--save-model', str(out / 'm.npz')])
    assert materials.run(args) == 0
    res = json.loads((out / 'm.json').read_text())
    for key in ('accuracy', 'balanced_accuracy', 'chance', 'majority_baseline', 'confusion',
                'per_class_accuracy', 'counts', 'classes'):
        assert key in res
    k = len(res['classes'])
    assert np.array(res['confusion']).shape == (k, k)
    assert np.array(res['confusion']).sum() == sum(res['counts']['test_clips'].values())
    assert (out / 'm.png').read_bytes()[:4] == b'\x89PNG'
    assert SoundClassifier.load(out / 'm.npz').classes_.size >= 1
