"""Contact events: heard events in recorded audio (slide-aware), the event model's network and
decoding, its targets, training and export, and the planner's events-only answer."""
import numpy as np
import pytest
import torch

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.data import event_dataset as ED
from hearing_hands_ros.events import (ContactEvent, HeardEvent, expected_peak_db, heard_events,
                                      match_times, p_contact)
from hearing_hands_ros.models import events as E

SR = 16000


def impact(t0: float, n: int, amp: float = 0.3, decay: float = 0.01, f: float = 2000.0):
    t = np.arange(n) / SR - t0
    return np.where(t >= 0, amp * np.exp(-np.maximum(t, 0) / decay) * np.sin(2 * np.pi * f * t), 0.0)


def test_heard_events_impacts_and_a_slide_without_retriggers():
    rng = np.random.default_rng(0)
    n = SR
    x = rng.normal(0, 3e-4, n) + impact(0.1, n) + impact(0.25, n, amp=0.05)
    bumpy = rng.normal(0, 0.05, n) * (1 + 0.8 * np.sin(2 * np.pi * 25 * np.arange(n) / SR))
    x += np.where((np.arange(n) >= int(0.5 * SR)) & (np.arange(n) < int(0.8 * SR)), bumpy, 0.0)
    ev = heard_events(x.astype(np.float32), SR)
    kinds = [e.kind for e in ev]
    assert kinds == ['impact', 'impact', 'slide'], ev
    assert abs(ev[0].time - 0.1) < 0.002 and abs(ev[1].time - 0.25) < 0.002
    assert ev[0].peak_db > ev[1].peak_db + 10                # 0.3 against 0.05
    assert ev[2].duration == pytest.approx(0.3, abs=0.05) and abs(ev[2].time - 0.5) < 0.005


def test_probability_algebra():
    a = ContactEvent(0.1, 0.01, 0.5, -20.0, 'impact', 'wood')
    b = ContactEvent(0.3, 0.01, 0.5, -40.0, 'impact', 'wood')
    assert p_contact([]) == 0 and p_contact([a, b]) == pytest.approx(0.75)
    # loudest first: 0.5 of -20, then 0.25 of -40, else silence
    assert expected_peak_db([a, b], -60.0) == pytest.approx(0.5 * -20 + 0.25 * -40 + 0.25 * -60)
    assert match_times(np.array([0.1, 0.2]), np.array([0.124, 0.3]), 0.025) == [(0, 0)]


def test_network_onnx_matches_torch(tmp_path):
    import onnxruntime as ort
    torch.manual_seed(0)
    net = E.EventNet(E.EventConfig(width=8, dilations=(1, 2))).eval()
    x = torch.randn(2, 37, E.N_INPUTS)
    outs = [o.detach().numpy() for o in net(x)]
    assert [o.shape for o in outs] == [(2, 37), (2, 37), (2, 37), (2, 37, len(E.MATERIALS))]
    E.export_onnx(net, tmp_path / 'e.onnx')
    sess = ort.InferenceSession(str(tmp_path / 'e.onnx'), providers=['CPUExecutionProvider'])
    got = sess.run(list(E.ONNX_OUTPUTS), {'inputs': x.numpy()})
    for a, b in zip(outs, got):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_decode_peaks_and_slides():
    cfg = E.EventConfig()
    t = 200
    onset = np.full(t, -12.0)
    onset[49:52] = [0.0, 3.0, 0.0]                          # a sure impact at frame 50
    onset[120] = -1.0                                       # a doubtful one at 1.2 s
    slide = np.full(t, -10.0)
    slide[150:180] = 5.0                                    # 0.3 s of sliding
    level = np.linspace(-50, -10, t)
    material = np.zeros((t, len(E.MATERIALS)))
    material[:, E.MATERIALS.index('glass')] = 4.0
    pos = np.tile([0.1, 0.2, 0.3], (t, 1))
    ev = E.decode(onset, slide, level, material, pos, t, cfg)
    assert [e.kind for e in ev] == ['impact', 'impact', 'slide']
    sure, doubt, sl = ev
    assert sure.time == pytest.approx(0.50, abs=0.002) and sure.probability > 0.9
    assert 0.1 < doubt.probability < 0.4 and doubt.time == pytest.approx(1.2, abs=0.01)
    assert sl.time == pytest.approx(1.5) and sl.duration == pytest.approx(0.3)
    assert sure.material == 'glass' and sum(sure.material_probs.values()) == pytest.approx(1.0)
    assert sure.peak_db == pytest.approx(level[50]) and np.allclose(sure.position, [0.1, 0.2, 0.3])
    assert E.decode(onset, slide, level, material, pos, 100, cfg)[-1].time < 1.0   # valid frames


def test_inputs_with_and_without_the_intended_contact():
    n = 120
    times = np.linspace(0, 1.0, 11)
    pos = np.stack([np.zeros(11), np.zeros(11), 0.1 - 0.08 * np.sin(np.pi * times)], 1)
    traj = tr.Trajectory(times, pos, np.tile([0, 0, 0, 1.0], (11, 1)))
    feats = tr.features(traj, n)
    cfg = E.EventConfig()
    a = E.model_inputs(feats, 101, None, None, cfg)
    b = E.model_inputs(feats, 101, None, 0.03, cfg)
    assert a.shape == (n, E.N_INPUTS) and (a[:, -2:] == 0).all()
    assert (b[:, -2] == 1).all() and b[0, -1] == pytest.approx(0.1 - 0.03, abs=1e-6)
    geo = E.geometry(feats, 101)
    assert geo[:, 1].min() == pytest.approx(0.0) and geo[50, 2] == pytest.approx(0.0, abs=0.011)


def test_rule_inputs_mark_the_kinematic_strikes():
    """With ``rule_inputs`` the kinematic rule's events are three more input columns (before the
    intended contact, which stays last)."""
    t = np.linspace(0.0, 1.0, 51)
    z = 0.1 - 0.05 * np.clip(np.sin(np.pi * t / 0.8), 0, None)           # down and back up
    traj = tr.Trajectory(t, np.stack([0 * t, 0 * t, z], 1), np.tile([0, 0, 0, 1.0], (51, 1)))
    feats = tr.features(traj, 120)
    cfg = E.EventConfig(rule_inputs=True)
    x = E.model_inputs(feats, 101, None, 0.06, cfg)
    assert x.shape == (120, E.n_inputs(cfg)) == (120, E.N_INPUTS + E.N_RULE)
    assert (x[:, -2] == 1).all()                                           # contact still last
    rule = x[:, -2 - E.N_RULE:-2]
    from hearing_hands_ros.models.kinematic_events import kinematic_events
    (strike,) = kinematic_events(feats, 101)
    assert rule[:, 0].max() == pytest.approx(strike.probability, abs=0.02)
    assert abs(int(rule[:, 0].argmax()) - strike.time * 100) <= 1
    assert E.n_inputs(E.EventConfig()) == E.N_INPUTS


def test_targets_and_window_ends():
    feats = np.zeros((100, tr.N_FEATURES), np.float32)
    feats[:, 2] = np.linspace(0.1, 0.0, 100)
    ev = [HeardEvent(0.2, -20.0, 'impact', 0.0), HeardEvent(0.5, -35.0, 'slide', 0.2),
          HeardEvent(1.5, -10.0, 'impact', 0.0)]
    onset, slide, level, cz = ED.window_targets(feats, 90, ev, 100, 100.0)
    assert int(np.argmax(onset)) == 20 and onset[20] == 1.0 and 0.5 < onset[19] < 0.7
    assert np.nonzero(onset)[0].tolist() == list(range(17, 24))           # a bump, 1 frame wide
    assert slide[50:70].all() and not slide[70:].any()
    assert level[20] == -20.0 and level[50] == -35.0 and np.isnan(level[21])
    assert cz == pytest.approx(feats[20, 2])


def test_train_export_and_plan_events_only(tmp_path, bags):
    from hearing_hands_ros import cli
    from hearing_hands_ros.planner import Planner, rank_by_material, rank_contact_by
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    run = tmp_path / 'run'
    assert cli.main(['train', 'events', '--data', str(bags), '--val', str(bags), '--out', str(run),
                     '--steps', '20', '--eval-every', '10', '--no-progress',
                     '--cache', str(tmp_path / 'cache')]) == 0
    assert (run / 'events.pt').exists() and (run / 'summary.json').exists()
    predictor = tiny_bundle(tmp_path / 'm' / 'contact_sound_predictor', events=False)
    assert cli.main(['export', 'events', '--run', str(run), '--out',
                     str(tmp_path / 'm' / 'contact_events')]) == 0
    planner = Planner(predictor, backend='cpu')
    assert planner.events is not None
    t = np.linspace(0.0, 2.0, 40)
    paths = [tr.Trajectory(t, np.stack([0.05 + 0 * t, 0 * t, 0.12 - d * np.sin(np.pi * t / 2)], 1),
                           np.tile([0, 0, 0, 1.0], (40, 1))) for d in (0.02, 0.08)]
    rgb = np.zeros((128, 128, 3), np.uint8)
    preds = planner.predict(paths, rgb, audio=False, contact_z=[0.05, None])
    for p in preds:
        assert p.audio is None and p.events is not None and 0.0 <= p.p_contact <= 1.0
        assert all(e.kind in ('impact', 'slide') and 0 <= e.time <= 2.6 for e in p.events)
        assert 0.0 <= p.p_contact_by(1.0) <= p.p_contact + 1e-9
    assert sorted(rank_contact_by(preds, 1.0)) == [0, 1] and sorted(rank_by_material(preds, 'wood')) == [0, 1]
    with_audio = planner.predict(paths[:1], rgb)[0]
    assert with_audio.audio is not None and with_audio.events is not None
    torch_planner = Planner(predictor, backend='torch')
    ev_torch = torch_planner.predict(paths[:1], rgb, audio=False)[0].events
    ev_onnx = planner.predict(paths[:1], rgb, audio=False)[0].events
    assert [round(e.time, 3) for e in ev_torch] == [round(e.time, 3) for e in ev_onnx]


def test_events_only_needs_an_events_bundle(tmp_path):
    from hearing_hands_ros.errors import ModelError
    from hearing_hands_ros.planner import Planner
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    planner = Planner(tiny_bundle(tmp_path / 'contact_sound_predictor', events=False), backend='cpu')
    t = np.linspace(0.0, 1.0, 20)
    path = tr.Trajectory(t, np.stack([0 * t, 0 * t, 0.1 - 0.05 * t], 1), np.tile([0, 0, 0, 1.0], (20, 1)))
    with pytest.raises(ModelError, match='contact_events'):
        planner.predict([path], np.zeros((128, 128, 3), np.uint8), audio=False)
    assert planner.predict([path], np.zeros((128, 128, 3), np.uint8))[0].events is None


def test_the_rule_hears_a_grasp_where_the_gripper_plan_closes_the_fingers():
    """Descend, rest while the planned fingers close (0.5-0.8 s), lift: one impact along the
    closing, at its middle with a uniform spread over it; a recorded closing that stops on the
    object sounds just before it stops; with no opening given the same path is a strike at the
    end of the descent."""
    from hearing_hands_ros.models.kinematic_events import kinematic_events
    t = np.linspace(0.0, 1.4, 141)
    z = np.interp(t, [0.0, 0.4, 1.0, 1.4], [0.10, 0.05, 0.05, 0.10])
    ap = np.interp(t, [0.0, 0.5, 0.8, 1.4], [0.08, 0.08, 0.0, 0.0])
    pos = np.stack([0 * t, 0 * t, z], 1)
    quat = np.tile([0, 0, 0, 1.0], (len(t), 1))
    planned = tr.features(tr.Trajectory(t, pos, quat, ap), 160)
    (grasp,) = kinematic_events(planned, 141)
    assert grasp.kind == 'impact' and 0.6 < grasp.time < 0.7
    assert grasp.time_std == pytest.approx(0.3 / np.sqrt(12), abs=0.02)
    (strike,) = kinematic_events(tr.features(tr.Trajectory(t, pos, quat), 160), 141)
    assert strike.time < 0.45 and strike.time_std < grasp.time_std
    stalled = np.interp(t, [0.0, 0.5, 0.6, 1.4], [0.08, 0.08, 0.05, 0.05])   # recorded: on the object
    (touch,) = kinematic_events(tr.features(tr.Trajectory(t, pos, quat, stalled), 160), 141)
    assert 0.56 < touch.time < 0.61 and touch.time_std < grasp.time_std    # just before it stops
