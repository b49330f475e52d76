"""Planner API on a real (tiny, untrained) exported bundle: batching, outputs, ranking, backends."""
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.models import predictor as P
from hearing_hands_ros.models.events import MATERIALS
from hearing_hands_ros.planner import (Planner, Prediction, build_prototypes, nearest_prototype,
                                       rank_by_material, rank_contact_by, rank_quietest,
                                       sound_descriptor)
from hearing_hands_ros.runtime import ModelError


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    return tiny_bundle(tmp_path_factory.mktemp('model') / 'contact_sound_predictor')


def tap_path(duration=1.0, depth=0.1, n=30, x=0.0):
    t = np.linspace(0, duration, n)
    z = 0.15 - depth * np.sin(np.pi * t / duration)
    pos = np.stack([np.full(n, x), np.zeros(n), z], 1)
    quat = np.tile(Rotation.from_euler('x', np.pi).as_quat(), (n, 1))
    return tr.Trajectory(t + 5.0, pos, quat)


def scene(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (96, 128, 3), dtype=np.uint8)


def test_batched_prediction_shapes_and_determinism(bundle):
    planner = Planner(bundle, backend='cpu')
    assert planner.steps == 2 and planner.network_evaluations == 2
    paths = [tap_path(1.0), tap_path(2.5, x=0.05), tap_path(0.4)]
    preds = planner.predict(paths, scene())
    assert len(preds) == 3 and all(isinstance(p, Prediction) for p in preds)
    for p, path in zip(preds, paths):
        frames = tr.n_frames_for(path.duration, 0.5)
        assert p.sample_rate == 16000 and p.audio.dtype == np.float32
        assert len(p.audio) == (frames - 1) * 160
        assert np.isfinite(p.audio).all() and np.abs(p.audio).max() <= 1.0
        assert p.contact_positions.shape == (len(p.onsets), 3) and len(p.onset_levels_db) == len(p.onsets)
        # the tiny bundle has an events bundle beside it: the material comes from its events
        assert p.events is not None and p.material in MATERIALS and p.action in ('tap', 'scrape')
        assert np.isfinite(p.peak_db)
    again = planner.predict(paths, scene())
    np.testing.assert_allclose(again[0].audio, preds[0].audio, atol=1e-6)  # same seed, same sound
    other = planner.predict(paths[:1], scene(), seed=1)[0]
    assert not np.allclose(other.audio, preds[0].audio)


def test_in_view_tells_when_the_path_leaves_the_camera_view(bundle):
    """With the sim rig (tool z up, camera behind and above the fingers): a tap straight down
    stays in the plan-start view; a 60 cm sweep leaves it."""
    planner = Planner(bundle, backend='cpu')
    n = 60
    t = np.linspace(0, 2.0, n)
    up = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    down = tr.Trajectory(t + 5.0, np.stack([np.zeros(n), np.zeros(n),
                                            0.15 - 0.05 * np.sin(np.pi * t / 2.0)], 1), up)
    sweep = tr.Trajectory(t + 5.0, np.stack([np.linspace(0, 0.6, n), np.zeros(n), np.full(n, 0.15)], 1), up)
    tap, away = planner.predict([down, sweep], scene())
    assert tap.in_view == 1.0
    assert 0.0 < away.in_view < 0.5


def test_looks_name_the_object_the_path_comes_down_on(bundle):
    """The planner hands the model the look of the object segment each local view points at:
    paint a red or a blue block where the tap's lowest point projects, and the views there carry
    that block's colour; the sound changes with it, the path being the same."""
    planner = Planner(bundle, backend='cpu')
    n = 30                                                  # the sim rig: tool z up
    t = np.linspace(0, 1.0, n)
    path = tr.Trajectory(t + 5.0, np.stack([np.zeros(n), np.zeros(n), 0.15 - 0.08 * np.sin(np.pi * t)], 1),
                         np.tile([0.0, 0.0, 0.0, 1.0], (n, 1)))
    h, w = 96, 128
    K = P.scale_intrinsics(planner.K, planner.camera_size, (w, h))
    feats = tr.features(tr.validate(path), tr.n_frames_for(path.duration, 0.5))
    _, uv = P.local_views(np.zeros((h, w, 3), np.uint8), feats, K, planner.T_tcp_camera, planner.cfg)
    k = 2                                                   # the view at 0.4-0.6 s: the lowest point
    u, v = np.round(uv[k]).astype(int)
    out = []
    for colour in ((200, 30, 30), (30, 60, 200)):
        rgb = np.full((h, w, 3), 120, np.uint8)             # a plain grey table
        rgb[max(v - 8, 0):v + 8, max(u - 8, 0):u + 8] = colour
        looks = planner.prepare([path], rgb)[5]
        assert looks.shape == (1, P.n_views(feats.shape[0], planner.cfg), P.N_VIEW_LOOK)
        assert looks[0, k, 0] == 1.0                        # found the block
        np.testing.assert_allclose(looks[0, k, 2:5], np.array(colour) / 255, atol=0.05)
        out.append(planner.predict([path], rgb)[0].audio)
    assert not np.allclose(out[0], out[1])


def test_guided_sampling_and_torch_backend_agree_with_onnx(bundle):
    onnx = Planner(bundle, backend='cpu', steps=3, guidance=2.0)
    assert onnx.network_evaluations == 6
    torch_planner = Planner(bundle, backend='torch', steps=3, guidance=2.0)
    a = onnx.predict([tap_path()], scene())[0].audio
    b = torch_planner.predict([tap_path()], scene())[0].audio
    assert np.abs(a - b).max() < 2e-2 * max(1e-3, np.abs(a).max()) + 1e-3      # fp16 checkpoint


def test_temperature_scales_the_start_noise(bundle):
    """Temperature 0 starts every sample at the mean of the noise, so the seed stops mattering;
    the metadata's default is used unless the caller overrides it; out of range is refused."""
    planner = Planner(bundle, backend='cpu')
    assert planner.temperature == 1.0                                  # tiny bundle: default
    prep = planner.prepare([tap_path()], scene())
    args, kw = prep[:3], dict(looks=prep[5])
    x1 = planner.sample_mel(*args, seed=0, **kw)
    assert not np.allclose(x1, planner.sample_mel(*args, seed=1, **kw))
    cold = Planner(bundle, backend='cpu', temperature=0.0)
    np.testing.assert_allclose(cold.sample_mel(*args, seed=0, **kw), cold.sample_mel(*args, seed=1, **kw),
                               atol=1e-6)
    half = planner.sample_mel(*args, seed=0, temperature=0.5, **kw)
    assert not np.allclose(half, x1)
    meta = json.loads(bundle.with_suffix('.json').read_text())
    for value, ok in ((0.5, True), (3.0, False)):
        target = bundle.parent / f'temp_{value}'
        target.with_suffix('.onnx').write_bytes(bundle.read_bytes())
        target.with_suffix('.json').write_text(json.dumps({**meta, 'temperature': value}))
        if ok:
            p = Planner(target, backend='cpu')
            assert p.temperature == 0.5
            np.testing.assert_allclose(p.sample_mel(*args, seed=0, **kw), half, atol=1e-6)
        else:
            with pytest.raises(ModelError, match='temperature'):
                Planner(target, backend='cpu')


def test_bad_paths_name_the_candidate(bundle):
    planner = Planner(bundle, backend='cpu')
    bad = tap_path()
    bad.times = bad.times[::-1].copy()
    with pytest.raises(tr.TrajectoryError, match='path 1: .*not sorted'):
        planner.predict([tap_path(), bad], scene())
    with pytest.raises(tr.TrajectoryError, match='longer than the limit'):
        planner.predict([tap_path(duration=9.0)], scene())
    with pytest.raises(ValueError, match='RGB image'):
        planner.predict([tap_path()], None)


def test_guidance_rescale_from_the_metadata_matches_the_torch_sampler(bundle, tmp_path):
    """A bundle's ``guidance_rescale`` applies when it is sampled with CFG; the ONNX loop equals
    ``flow.euler_sample`` with the same rescale on the run's torch net."""
    import torch

    from hearing_hands_ros.models import flow
    from hearing_hands_ros.models.predictor_run import load_run
    meta = json.loads(bundle.with_suffix('.json').read_text())
    assert meta['guidance_rescale'] == 0.0
    target = tmp_path / 'rescaled'
    target.with_suffix('.onnx').write_bytes(bundle.read_bytes())
    target.with_suffix('.json').write_text(json.dumps({**meta, 'guidance_rescale': 1.0}))
    plain, rescaled = Planner(bundle, backend='cpu', guidance=3.0), Planner(target, backend='cpu', guidance=3.0)
    assert rescaled.guidance_rescale == 1.0
    prep = plain.prepare([tap_path()], scene())
    traj, image, crops, looks = prep[0], prep[1], prep[2], prep[5]
    x_plain = plain.sample_mel(traj, image, crops, seed=3, steps=3, looks=looks)
    x_resc = rescaled.sample_mel(traj, image, crops, seed=3, steps=3, looks=looks)
    assert not np.allclose(x_plain, x_resc, atol=1e-3)
    net = load_run(bundle.with_suffix('.pt'))['student']
    x0 = np.random.default_rng(3).standard_normal(
        (plain.cfg.n_mels, max(traj.shape[1], plain.cfg.max_frames))).astype(np.float32)
    x0 = torch.from_numpy(x0[None, :, :traj.shape[1]].copy())
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))          # noqa: E731
    vel = P.bind(net, t(traj), t(image), t(crops), t(looks))
    with torch.no_grad():
        for rescale, got in ((0.0, x_plain), (1.0, x_resc)):
            ref = flow.euler_sample(vel, x0, 3, 3.0, rescale).numpy()
            assert np.abs(got - ref).max() < 3e-2 * np.abs(ref).max()         # fp16 checkpoint
    bad = tmp_path / 'bad_rescale'
    bad.with_suffix('.onnx').write_bytes(bundle.read_bytes())
    bad.with_suffix('.json').write_text(json.dumps({**meta, 'guidance_rescale': 1.5}))
    with pytest.raises(ModelError, match='guidance_rescale'):
        Planner(bad, backend='cpu')


def test_metadata_mismatch_is_refused(bundle, tmp_path):
    for key, value, message in (('feature_layout', ['pos_x'], 'feature_layout'),
                                ('kind', 'detector', "expected a 'predictor'"),
                                ('steps', None, 'lacks steps')):
        meta = json.loads(bundle.with_suffix('.json').read_text())
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
        target = tmp_path / f'm_{key}'
        target.with_suffix('.onnx').write_bytes(bundle.read_bytes())
        target.with_suffix('.json').write_text(json.dumps(meta))
        with pytest.raises(ModelError, match=message):
            Planner(target, backend='cpu')


def fake(peak, onsets, material='wood'):
    return Prediction(np.zeros(10, np.float32), 16000, np.asarray(onsets, float),
                      np.zeros((len(onsets), 3)), np.zeros(len(onsets)), peak, material, 'tap')


def test_ranking_helpers():
    preds = [fake(-10, [0.8]), fake(-30, []), fake(-20, [0.3, 0.9], 'glass')]
    assert rank_quietest(preds) == [1, 2, 0]
    assert rank_contact_by(preds, 0.5) == [2, 0, 1]
    assert rank_by_material(preds, 'glass')[0] == 2


def test_descriptors_pick_the_nearest_prototype():
    rng = np.random.default_rng(0)
    low = np.full((64, 200), -12.0)
    low[:20, 50:60] = 0.0                        # a low-frequency knock
    high = np.full((64, 200), -12.0)
    high[40:, 50:150] = -3.0                     # a long bright scrape
    d_low, d_high = sound_descriptor(low), sound_descriptor(high)
    protos = {'scale': np.ones(67).tolist(), 'material': {'wood': d_low.tolist(), 'glass': d_high.tolist()}}
    assert nearest_prototype(d_low + 0.01 * rng.normal(size=67), protos, 'material') == 'wood'
    assert nearest_prototype(d_high, protos, 'material') == 'glass'
    assert nearest_prototype(d_high, protos, 'action') == ''

    class Data:
        mel = np.stack([low, high]).astype(np.float16)
        valid = np.array([200, 200])
        meta = [dict(material='wood', action='tap'), dict(material='glass', action='scrape')]
    built = build_prototypes(Data)
    assert set(built['material']) == {'wood', 'glass'} and len(built['scale']) == 67
