"""Event metrics on constructed event lists, and the kinematic baseline on synthetic paths."""
import json

import numpy as np
import pytest

from hearing_hands_ros import trajectory as T
from hearing_hands_ros.eval import event_metrics as M
from hearing_hands_ros.models.kinematic_events import kinematic_events, kinematic_predictions
from hearing_hands_ros.events import ContactEvent, HeardEvent


def pred(t, p=0.9, db=-20.0, kind='impact', material='wood', duration=0.0):
    return ContactEvent(time=t, time_std=0.01, probability=p, peak_db=db, kind=kind,
                        material=material, duration=duration)


def heard(t, db=-20.0, kind='impact', duration=0.0):
    return HeardEvent(time=t, peak_db=db, kind=kind, duration=duration)


# --- matching and F1 ---------------------------------------------------------------------------
def test_impact_tolerance_is_inclusive_at_25_ms_and_excludes_26():
    assert M.event_f1([([pred(0.125)], [heard(0.100)], None, 0)]) == 1.0
    assert M.event_f1([([pred(0.126)], [heard(0.100)], None, 0)]) == 0.0
    assert M.event_f1([([pred(0.074)], [heard(0.100)], None, 0)]) == 0.0


def test_impacts_match_one_to_one():
    # Two predictions near one heard impact: one hit, one false positive; F1 = 2*1/(2+1).
    w = [([pred(0.10), pred(0.11)], [heard(0.105)], None, 0)]
    assert M.event_f1(w) == pytest.approx(2 / 3)


def test_slide_counts_inside_its_interval_with_tolerance():
    s = heard(0.2, kind='slide', duration=0.5)                  # sounds over [0.2, 0.7]
    for t, hit in ((0.175, True), (0.45, True), (0.725, True), (0.174, False), (0.726, False)):
        assert M.event_f1([([pred(t, kind='slide')], [s], None, 0)]) == (1.0 if hit else 0.0), t


def test_one_predicted_slide_per_heard_slide_and_kinds_stay_apart():
    s = heard(0.2, kind='slide', duration=0.5)
    two = [([pred(0.3, kind='slide'), pred(0.5, kind='slide')], [s], None, 0)]
    assert M.event_f1(two) == pytest.approx(2 / 3)
    # An impact inside a heard slide, or a slide at a heard impact, is no match.
    assert M.event_f1([([pred(0.3)], [s], None, 0)]) == 0.0
    assert M.event_f1([([pred(0.3, kind='slide')], [heard(0.3)], None, 0)]) == 0.0


def test_threshold_and_empty_windows():
    w = [([pred(0.1, p=0.4)], [heard(0.1)], None, 0), ([], [], None, 1)]
    assert M.event_f1(w) == 0.0                                 # below 0.5: not predicted
    assert M.event_f1(w, threshold=0.3) == 1.0
    assert M.event_f1([([], [], None, 0)]) is None              # nothing either side
    assert M.onset_error_ms([([], [heard(0.1)], None, 0)]) is None


def test_event_ap_ranks_by_probability():
    w = [([pred(0.1, p=0.9), pred(0.5, p=0.8)], [heard(0.1), heard(0.9)], None, 0)]
    assert M.event_ap(w) == pytest.approx(0.5)                  # 1 of 2 found, at precision 1
    w = [([pred(0.5, p=0.9), pred(0.1, p=0.8)], [heard(0.1)], None, 0)]
    assert M.event_ap(w) == pytest.approx(0.5)                  # found second: precision 1/2
    # A low-probability event still counts for AP though it is below the F1 threshold.
    assert M.event_ap([([pred(0.1, p=0.1)], [heard(0.1)], None, 0)]) == pytest.approx(1.0)
    assert M.event_ap([([pred(0.1)], [], None, 0)]) is None     # nothing heard


# --- timing, loudness, material ------------------------------------------------------------------
def test_onset_errors():
    w = [([pred(0.110), pred(0.5, kind='slide')], [heard(0.100), heard(0.3, kind='slide', duration=0.4)],
          None, 0),
         ([pred(0.220)], [heard(0.200)], None, 1),
         ([pred(0.9)], [heard(0.4)], None, 2)]                  # 500 ms off: unmatched
    assert M.onset_error_ms(w) == pytest.approx(15.0)           # impacts only: 10 and 20 ms
    # first predicted vs first heard onset per window: 10, 20, 500 ms
    assert M.first_onset_error_ms(w) == pytest.approx(20.0)


def test_loudness_spearman_over_audible_windows():
    w = [([pred(0.1, db=d)], [heard(0.1, db=d + 3)], None, i) for i, d in enumerate((-40, -30, -20, -10))]
    w.append(([pred(0.1, db=0.0)], [], None, 9))                # silent window: not counted
    assert M.loudness_spearman(w) == pytest.approx(1.0)
    w[0] = ([pred(0.1, db=0.0)], [heard(0.1, db=-37)], None, 0)
    assert M.loudness_spearman(w) == pytest.approx(-0.2)        # ranks 4,1,2,3 vs 1,2,3,4
    assert M.loudness_spearman(w[:2]) is None                   # too few pairs


def test_level_error_and_material_accuracy():
    w = [([pred(0.1, db=-20, material='wood')], [heard(0.1, db=-22)], 'wood', 0),
         ([pred(0.1, db=-20, material='wood')], [heard(0.1, db=-26)], 'metal', 1),
         ([pred(0.1, db=-20, material='wood')], [heard(0.1, db=-21)], 'wood', 2),
         ([pred(0.1, db=-20, material='glass')], [heard(0.1)], None, 3)]   # material unknown
    assert M.event_level_error_db(w) == pytest.approx(1.5)      # |2|, |6|, |1|, |0|
    assert M.material_accuracy(w) == pytest.approx(2 / 3)
    assert M.majority_material_rate(w) == pytest.approx(2 / 3)
    named_none = [([pred(0.1, material='')], [heard(0.1)], 'wood', 0)]
    assert M.material_accuracy(named_none) is None              # the method names no material


def test_audio_onset_f1_takes_two_heard_event_lists():
    rendered = [heard(0.1), heard(0.5, kind='slide', duration=0.2)]
    recorded = [heard(0.12), heard(0.9)]
    assert M.audio_onset_f1(rendered, recorded) == pytest.approx(0.5)
    assert M.audio_onset_f1([rendered, []], [recorded, [heard(0.3)]]) == pytest.approx(2 / 5)


# --- contact AUC -------------------------------------------------------------------------------
def test_contact_auc():
    w = [([pred(0.1, p=0.9)], [heard(0.1)], None, 0), ([pred(0.1, p=0.2)], [], None, 1),
         ([], [], None, 2), ([pred(0.1, p=0.6)], [heard(0.5)], None, 3)]
    assert M.contact_auc(w) == pytest.approx(1.0)
    w.append(([pred(0.1, p=0.95)], [], None, 4))
    assert M.contact_auc(w) == pytest.approx(4 / 6)             # each positive beats 2 of 3
    assert M.contact_auc([([pred(0.1)], [heard(0.1)], None, 0)]) is None   # no silent window
    assert M.contact_auc([([], [], None, 0)]) is None                      # no audible window


# --- bootstrap and summary ---------------------------------------------------------------------
def test_bootstrap_resamples_whole_episodes():
    # Episode 0: three perfect windows; episode 1: one missed window. By window the F1 would vary
    # in many steps; by episode a resample holds 0, 1 or 2 copies of each episode's windows.
    good = [([pred(0.1)], [heard(0.1)], None, 'ep0')] * 3
    bad = [([pred(0.5)], [heard(0.1)], None, 'ep1')]
    values = set()

    def f1(ws):
        v = M.event_f1(ws)
        values.add(round(v, 6))
        return v

    lo, hi = M.episode_bootstrap(good + bad, f1, n=300, seed=1)
    assert values <= {0.0, round(3 / 4, 6), 1.0}
    assert lo == 0.0 and hi == 1.0
    assert M.episode_bootstrap(good, f1, n=50) == (1.0, 1.0)
    assert M.episode_bootstrap([([], [], None, 0)], M.event_f1, n=20) is None
    assert M.episode_bootstrap([], M.event_f1) is None


def test_summarize_reports_every_metric_with_intervals():
    w = [([pred(0.1 + 0.002 * i, p=0.5 + 0.04 * i, db=-30 + i)], [heard(0.1, db=-31 + i)], 'wood', i // 2)
         for i in range(10)] + [([pred(0.3, p=0.1)], [], None, 5), ([], [], None, 6)]
    rendered = [[heard(0.1)]] * len(w)
    out = M.summarize(w, rendered=rendered, n_boot=100)
    assert set(M.METRICS) <= set(out)
    assert out['contact_auc'] == 1.0 and out['event_f1'] == 1.0
    assert out['onset_error_ms'] == pytest.approx(9.0)
    assert out['loudness_spearman'] == pytest.approx(1.0)
    assert out['material_accuracy'] == 1.0 and out['majority_material_rate'] == 1.0
    assert out['audio_onset_f1'] == pytest.approx(2 * 10 / (12 + 10))
    assert out['counts'] == dict(windows=12, audible_windows=10, episodes=7, predicted=10, heard=10,
                                 matched=10)
    lo, hi = out['ci95']['onset_error_ms']
    assert lo <= out['onset_error_ms'] <= hi
    json.dumps(out)                                             # plain floats, lists and None
    assert M.summarize(w, n_boot=0)['audio_onset_f1'] is None
    assert M.summarize(w, n_boot=0)['ci95']['event_f1'] is None


class _Data:
    """What ``windows_from_data`` reads of ``PredictorData``: 1 s recordings, the first with a
    click at 0.5 s, the second silent, the third with a click after its path ended at 0.3 s; the
    second window has no target."""

    meta = [dict(material='wood', episode='a'), dict(material='none', episode='b'),
            dict(material='wood', episode='b')]
    valid = np.array([100, 100, 100])

    def __init__(self):
        self.traj = np.zeros((3, 100, T.N_FEATURES), np.float32)
        self.traj[:, :, T.FEATURE_LAYOUT.index('active')] = 1.0
        self.traj[2, 30:, T.FEATURE_LAYOUT.index('active')] = 0.0

    def __len__(self):
        return 3

    def audio_float(self, i):
        x = np.random.default_rng(i).normal(0, 1e-4, 16000).astype(np.float32)
        if i != 1:
            n = np.arange(1600)
            x[8000:9600] += 0.5 * np.sin(2 * np.pi * 1200 * n / 16000) * np.exp(-n / 160.0)
        return x


def test_windows_from_data_hears_each_path_in_its_recording():
    w = M.windows_from_data(_Data(), [[pred(0.5)], [], []])
    assert [len(x.heard) for x in w] == [1, 0, 0]              # the third path ended at 0.3 s
    assert w[0].heard[0].time == pytest.approx(0.5, abs=0.005) and w[0].heard[0].kind == 'impact'
    assert [x.material for x in w] == ['wood', None, 'wood'] and [x.episode for x in w] == ['a', 'b', 'b']
    assert M.event_f1(w) == 1.0
    assert [len(x.heard) for x in M.windows_from_data(_Data(), [[]] * 3, after_path_s=None)] == [1, 0, 1]
    assert M.path_end_s(_Data().traj[2], 100) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        M.windows_from_data(_Data(), [[]])


# --- the kinematic baseline --------------------------------------------------------------------
def _min_jerk(keys, hz=50.0):
    """Path (times, positions[, aperture]) through keyframes [(t, x, y, z[, aperture])] with
    min-jerk segments."""
    keys = np.asarray(keys, float)
    t = np.arange(keys[0, 0], keys[-1, 0] + 1e-9, 1 / hz)
    k = np.clip(np.searchsorted(keys[:, 0], t, side='right') - 1, 0, len(keys) - 2)
    tau = (t - keys[k, 0]) / (keys[k + 1, 0] - keys[k, 0])
    s = 10 * tau ** 3 - 15 * tau ** 4 + 6 * tau ** 5
    return t, keys[k, 1:] + (keys[k + 1, 1:] - keys[k, 1:]) * s[:, None]


def _features(keys):
    t, p = _min_jerk(keys)
    q = np.tile([0.0, 0.0, 0.0, 1.0], (len(t), 1))
    ap = p[:, 3] if p.shape[1] > 3 else None
    return T.features(T.validate(T.Trajectory(t, p[:, :3], q, ap)))


def test_kinematic_finds_one_impact_near_the_bottom_of_a_tap():
    # Hover 35 mm above a surface at z = 0.05, strike 4 mm below it, hold, back up.
    surface, depth = 0.05, 0.004
    keys = [(0.0, 0.1, 0.0, surface + 0.035), (0.1, 0.1, 0.0, surface + 0.035),
            (0.35, 0.1, 0.0, surface - depth), (0.39, 0.1, 0.0, surface - depth),
            (0.6, 0.1, 0.0, surface + 0.035)]
    feats = _features(keys)
    events = kinematic_events(feats, len(feats))
    assert [e.kind for e in events] == ['impact']
    e = events[0]
    t, p = _min_jerk(keys, hz=1000.0)
    crossing = t[np.argmax(p[:, 2] < surface)]                  # when the TCP reaches the surface
    assert abs(e.time - crossing) < 0.005
    assert 0.1 < e.time < 0.35 and 0.5 < e.probability < 1.0
    assert e.position[2] == pytest.approx(surface, abs=0.003)
    assert e.time_std > 0 and -60.0 < e.peak_db < 0.0


def test_kinematic_louder_for_a_faster_strike():
    def strike(t_down):
        keys = [(0.0, 0.0, 0.0, 0.1), (t_down, 0.0, 0.0, 0.05), (t_down + 0.05, 0.0, 0.0, 0.05),
                (t_down + 0.3, 0.0, 0.0, 0.1)]
        return kinematic_events(_features(keys))[0]
    fast, slow = strike(0.2), strike(0.6)
    assert fast.peak_db > slow.peak_db and fast.probability > slow.probability


def test_kinematic_finds_nothing_on_a_transit_at_constant_height():
    feats = _features([(0.0, -0.1, 0.0, 0.12), (0.8, 0.1, 0.05, 0.12), (1.0, 0.1, 0.05, 0.12)])
    assert kinematic_events(feats, len(feats)) == []
    assert kinematic_predictions(np.stack([feats, feats]), np.array([len(feats), 10])) == [[], []]


def test_kinematic_approach_that_stops_low_is_no_contact():
    feats = _features([(0.0, 0.0, 0.0, 0.12), (0.5, 0.0, 0.0, 0.05)])
    assert kinematic_events(feats, len(feats)) == []


def test_kinematic_slide_along_the_lowest_height():
    # Press down onto a top, drag 6 cm sideways at that height, lift.
    keys = [(0.0, 0.0, 0.0, 0.07), (0.35, 0.0, 0.0, 0.048), (0.45, 0.0, 0.0, 0.048),
            (1.45, 0.06, 0.0, 0.048), (1.5, 0.06, 0.0, 0.048), (1.8, 0.06, 0.0, 0.08)]
    events = kinematic_events(_features(keys))
    slides = [e for e in events if e.kind == 'slide']
    assert len(slides) == 1
    s = slides[0]
    assert 0.45 <= s.time < 0.6 and 0.7 < s.duration <= 1.0
    assert [e.kind for e in events] == ['impact', 'slide']      # the touch-down, then the drag


def test_kinematic_grasp_sounds_where_the_fingers_stop_and_a_drop_where_it_lands():
    # Down to 3 cm with open fingers, close on a 3 cm object (stopped there), lift 10 cm, open.
    keys = [(0.0, 0.0, 0.0, 0.08, 0.07), (0.5, 0.0, 0.0, 0.03, 0.07), (0.55, 0.0, 0.0, 0.03, 0.07),
            (0.75, 0.0, 0.0, 0.03, 0.03), (0.9, 0.0, 0.0, 0.03, 0.03), (1.4, 0.0, 0.0, 0.13, 0.03),
            (1.5, 0.0, 0.0, 0.13, 0.03), (1.58, 0.0, 0.0, 0.13, 0.07), (2.0, 0.0, 0.0, 0.13, 0.07)]
    events = kinematic_events(_features(keys))
    assert [e.kind for e in events] == ['impact', 'impact']
    grasp, drop = events
    assert 0.7 <= grasp.time <= 0.76                            # the closing ends, not the descent
    fall = np.sqrt(2 * 0.1 / 9.81)
    assert drop.time == pytest.approx(1.5 + fall, abs=0.02)
    assert drop.probability > grasp.probability


def test_kinematic_place_is_one_impact_not_a_drop():
    # Carry a grasped object down onto the table, open there, leave upwards.
    keys = [(0.0, 0.0, 0.0, 0.12, 0.03), (0.5, 0.0, 0.0, 0.04, 0.03), (0.6, 0.0, 0.0, 0.04, 0.03),
            (0.8, 0.0, 0.0, 0.04, 0.07), (1.1, 0.0, 0.0, 0.12, 0.07)]
    events = kinematic_events(_features(keys))
    assert len(events) == 1 and 0.3 < events[0].time < 0.5
