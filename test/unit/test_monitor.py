"""The execution monitor (``hearing_hands_ros/monitor.py``): the matching on constructed events
(every anomaly kind, the edges of the tolerances), and the live monitor on synthesized audio."""
import numpy as np
import pytest

from hearing_hands_ros.events import ContactEvent, HeardStream, heard_events
from hearing_hands_ros.monitor import ExecutionMonitor, MonitorConfig, PathMonitor

CFG = MonitorConfig(tolerance_s=0.05, spread_k=3.0, level_margin_db=10.0, min_probability=0.5,
                    min_confidence=0.5, near_weight=1.0)      # the matching alone


def tap(t=1.0, std=0.01, p=0.9, db=-20.0, material='wood', probs=None):
    return ContactEvent(t, std, p, db, 'impact', material, probs or {'wood': 0.8, 'metal': 0.1})


def kinds(anomalies):
    return [a.kind for a in anomalies]


def test_as_expected_reports_nothing():
    m = PathMonitor([tap()], CFG)
    assert m.heard(1.02, -21.0, 'wood') == [] and m.finish() == [] and m.done


def test_missing_is_decided_when_the_window_closes_not_before():
    m = PathMonitor([tap()], CFG)                 # window 1.0 +- (0.05 + 3 * 0.01) = +-0.08
    assert m.tick(1.079) == []
    (a,) = m.tick(1.0801)
    assert a.kind == 'MISSING' and a.expected.time == 1.0 and a.confidence == pytest.approx(0.9)
    assert a.decided_at == pytest.approx(1.0801) and m.tick(2.0) == []   # reported once


def test_the_window_edges():
    m = PathMonitor([tap()], CFG)
    assert m.heard(1.08, -20.0) == []                                   # on the edge: matched
    m = PathMonitor([tap()], CFG)
    assert m.heard(0.92, -20.0) == []                                   # the lower edge
    m = PathMonitor([tap()], CFG)
    assert kinds(m.heard(0.9195, -20.0)) == ['UNEXPECTED']              # just before it
    m = PathMonitor([tap()], CFG)
    out = m.heard(1.0805, -20.0)                                        # just past it
    assert kinds(out) == ['MISSING', 'UNEXPECTED']


def test_unexpected_contact_and_a_bounce_inside_a_matched_window():
    m = PathMonitor([tap()], CFG)
    (a,) = m.heard(0.5, -15.0, 'metal')
    assert a.kind == 'UNEXPECTED' and a.confidence == 1.0 and a.heard_db == -15.0
    assert m.heard(1.0, -20.0) == []
    assert m.heard(1.03, -30.0) == []       # a bounce inside the matched window: P(no contact) 0.1


def test_louder_and_quieter_beyond_the_margin_only():
    assert kinds(PathMonitor([tap()], CFG).heard(1.0, -11.0)) == []             # +9 dB
    (a,) = PathMonitor([tap()], CFG).heard(1.0, -4.0)                           # +16 dB
    assert a.kind == 'LOUDER' and a.confidence == pytest.approx(0.9 * 0.6)
    (a,) = PathMonitor([tap()], CFG).heard(1.0, -45.0)                          # -25 dB: sure
    assert a.kind == 'QUIETER' and a.confidence == pytest.approx(0.9)
    assert PathMonitor([tap()], CFG).heard(1.0, -9.0) == []     # +11 dB: confidence 0.09 < 0.5


def test_wrong_material_with_its_confidence():
    (a,) = PathMonitor([tap()], CFG).heard(1.0, -20.0, 'metal')
    assert a.kind == 'WRONG_MATERIAL' and a.confidence == pytest.approx(0.9 * (1 - 0.1))
    assert PathMonitor([tap()], CFG).heard(1.0, -20.0, 'wood') == []
    assert PathMonitor([tap()], CFG).heard(1.0, -20.0) == []           # no classifier: no verdict


def test_unlikely_expectations_and_low_confidence_are_not_reported():
    m = PathMonitor([tap(p=0.3)], CFG)
    assert m.finish() == []                                            # not required
    m = PathMonitor([tap(p=0.6)], CFG)
    (a,) = m.heard(1.0, -20.0, 'metal')                                # 0.6 * 0.9 = 0.54
    assert a.kind == 'WRONG_MATERIAL'
    m = PathMonitor([tap(p=0.6, probs={'wood': 0.5, 'metal': 0.3})], CFG)
    assert m.heard(1.0, -20.0, 'metal') == []                          # 0.6 * 0.7 = 0.42 < 0.5


def test_two_close_contacts_match_one_onset_each():
    m = PathMonitor([tap(1.0), tap(1.1)], CFG)
    assert m.heard(1.01, -20.0) == [] and m.heard(1.09, -20.0) == []
    assert m.finish() == []
    m = PathMonitor([tap(1.0), tap(1.1)], CFG)
    assert m.heard(1.05, -20.0) == []                                  # the nearer one (1.0)
    (a,) = m.finish()
    assert a.kind == 'MISSING' and a.expected.time == 1.1


def test_evidence_weight_near_the_other_side():
    """An UNEXPECTED far from any expected contact keeps its confidence, one next to an expected
    contact (a timing error, more likely) is weighted down; a MISSING while an onset near it
    matched another expected contact (the path sounds as planned) is weighted down, one after an
    early unmatched onset (an obstacle struck before the planned contact) is not."""
    cfg = MonitorConfig(tolerance_s=0.05, spread_k=0.0, min_confidence=0.0, near_s=0.3,
                        near_weight=0.3)
    m = PathMonitor([tap(1.0, p=0.9), tap(1.2, p=0.9), tap(2.0, p=0.9)], cfg)
    (far,) = m.heard(0.5, -20.0)                                       # 0.45 s from anything due
    assert far.kind == 'UNEXPECTED' and far.confidence == pytest.approx(1.0)
    assert m.heard(1.0, -20.0) == []                                   # the 1st, on time
    missed, early = m.heard(1.8, -20.0)                                # 0.15 s before the 3rd
    assert missed.kind == 'MISSING' and missed.expected.time == 1.2
    assert missed.confidence == pytest.approx(0.27)                    # 1.0 matched, 0.2 s away
    assert early.kind == 'UNEXPECTED' and early.confidence == pytest.approx(0.3)
    (blocked,) = m.finish()                                            # the 3rd never came
    assert blocked.kind == 'MISSING' and blocked.confidence == pytest.approx(0.9)


def test_a_silent_path_adds_up_its_missed_contacts():
    """While nothing at all is heard, each MISSING carries every miss so far: 1 - prod(1 - p)."""
    cfg = MonitorConfig(tolerance_s=0.05, spread_k=0.0, min_confidence=0.0)
    m = PathMonitor([tap(0.5, p=0.6), tap(1.0, p=0.6), tap(1.5, p=0.6)], cfg)
    assert [a.confidence for a in m.finish()] == pytest.approx([0.6, 0.84, 0.936])
    m = PathMonitor([tap(0.5, p=0.6), tap(1.0, p=0.6), tap(1.5, p=0.6)], cfg)
    (first,) = m.heard(1.0, -20.0)                                     # the 2nd is heard
    assert first.expected.time == 0.5 and first.confidence == pytest.approx(0.6)
    (last,) = m.finish()                                               # no longer silent
    assert last.expected.time == 1.5 and last.confidence == pytest.approx(0.6 * cfg.near_weight)


def test_events_of_the_next_path_are_not_required():
    m = PathMonitor([tap(0.5), tap(1.5)], CFG)
    m.drop_after(1.0)
    assert kinds(m.finish()) == ['MISSING'] and m.done


# --- on a live microphone: ExecutionMonitor over synthesized audio --------------------------
SR = 16000
T0 = 1_767_225_600 * 1_000_000_000


def _clicks(seconds: float, at: list, level: float = 0.3, seed: int = 0) -> np.ndarray:
    """Quiet noise with decaying 2 kHz clicks at ``at`` [s]."""
    rng = np.random.default_rng(seed)
    x = (1e-3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    n = np.arange(int(0.05 * SR))
    click = level * np.sin(2 * np.pi * 2000 * n / SR) * np.exp(-n / (0.005 * SR))
    for t in at:
        k = int(t * SR)
        x[k:k + len(n)] += click[:len(x) - k]
    return x


def _run(mon: ExecutionMonitor, x: np.ndarray, start: int = 0):
    found, done = [], []
    for k in range(0, len(x), 512):
        a, d = mon.push_audio(T0 + (start + k) * 1_000_000_000 // SR, x[k:k + 512])
        found += a
        done += d
    return found, done


def test_heard_stream_reports_onsets_within_a_chunk_and_matches_offline():
    x = _clicks(3.0, [0.5, 1.2, 2.0], level=0.2)
    stream = HeardStream(SR)
    told = []
    for k in range(0, len(x), 512):
        for ev in stream.push(T0 + k * 1_000_000_000 // SR, x[k:k + 512]):
            told.append((ev.time - T0 / 1e9, (k + 512) / SR))
    offline = [e.time for e in heard_events(x, SR, floor_margin_db=6.0)]
    assert [round(t, 3) for t, _ in told] == [round(t, 3) for t in offline] and len(told) == 3
    for t, when in told:                            # told in the chunk that holds the onset or the next
        assert abs(t - [0.5, 1.2, 2.0][told.index((t, when))]) < 0.003 and when - t < 0.032 + 0.005


def test_execution_monitor_missing_unexpected_and_outcomes():
    mon = ExecutionMonitor(SR, MonitorConfig(tolerance_s=0.05, spread_k=0.0))
    # path A [0.2, 1.2] s expects a contact at 0.5 s from its start (0.7 s): none comes
    # path B [1.2, 2.2] s expects nothing: a click at 1.6 s is UNEXPECTED
    # path C [2.2, 3.0] s expects a contact at 0.3 s (2.5 s): it comes
    s = lambda t: T0 + int(t * 1e9)  # noqa: E731
    assert mon.add_path('A', s(0.2), s(1.2), [tap(0.5)]) == []
    mon.add_path('B', s(1.2), s(2.2), [])
    mon.add_path('C', s(2.2), s(3.0), [tap(0.3, db=-15.0)])
    found, done = _run(mon, _clicks(4.0, [1.6, 2.5]))
    kinds = [(key, a.kind) for key, a in found]
    assert ('A', 'MISSING') in kinds and ('B', 'UNEXPECTED') in kinds
    assert not [k for k in kinds if k[0] == 'C' and k[1] in ('MISSING', 'UNEXPECTED')]
    missing = next(a for key, a in found if a.kind == 'MISSING')
    assert 0.55 < missing.decided_at < 0.55 + 0.04        # the first chunk past the window
    unexpected = next(a for key, a in found if a.kind == 'UNEXPECTED')
    assert abs(unexpected.heard_time - 0.4) < 0.003 and unexpected.decided_at - 0.4 < 0.04
    assert [o.key for o in done] == ['A', 'B', 'C'] and [o.ok for o in done][:2] == [False, False]
    assert len(done[2].heard) == 1 and abs(done[2].heard[0].time - 0.3) < 0.003


def test_execution_monitor_late_path_gets_onsets_heard_before_it_arrived():
    mon = ExecutionMonitor(SR, MonitorConfig(tolerance_s=0.05, spread_k=0.0))
    x = _clicks(2.0, [0.6])
    found, _ = _run(mon, x[:int(1.0 * SR)])                # audio first: no path yet
    assert found == [] and mon.unattributed == 1
    late = mon.add_path('P', T0 + int(0.5e9), T0 + int(1.5e9), [tap(0.1)])
    assert late == []                                      # the onset at 0.6 s was its contact
    _, done = _run(mon, x[int(1.0 * SR):], start=int(1.0 * SR))
    assert done[0].ok and len(done[0].heard) == 1


def test_execution_monitor_asks_the_classifier_once_it_has_heard_enough():
    asked = []

    def classify(x):                        # the 0.42 s from 20 ms before the onset
        asked.append(len(x))
        return {'metal': 0.8, 'wood': 0.2}

    mon = ExecutionMonitor(SR, MonitorConfig(tolerance_s=0.05, spread_k=0.0, min_confidence=0.5),
                           classify=classify)
    mon.add_path('P', T0, T0 + int(1.0e9), [tap(0.5, probs={'wood': 0.9, 'metal': 0.05})])
    found, done = _run(mon, _clicks(2.0, [0.5]))
    (a,) = [a for _, a in found]
    assert a.kind == 'WRONG_MATERIAL' and a.heard_material == 'metal'
    assert a.confidence == pytest.approx(0.9 * 0.95 * 0.8)
    assert 0.9 <= a.decided_at < 0.9 + 0.04 and asked == [int(0.42 * SR)]
    assert done and done[0].anomalies == [a]


def test_evaluation_counts_an_action_per_trial_and_the_actions_gone_otherwise():
    """``evaluate monitor``'s scoring on a constructed episode: a faulty action with a confident
    MISSING is a hit with its latency; a normal action with an alarm is a false alarm, and one
    whose truth shows an approach brushing another object is left out of the clean rate."""
    from hearing_hands_ros.eval.monitor import Decision, Replay, action_trials, summarize, went_otherwise
    ns = 1_000_000_000
    t0 = 10 * ns
    truth = {'start_time_ns': t0, 'faults': [{'action': 0, 'kind': 'removed', 'time': 0.5,
                                              'effect_time': 0.8}],
             'actions': [dict(index=0, type='tap', start=0.0, end=2.0, contact_start=0.5, target=1),
                         dict(index=1, type='tap', start=2.0, end=4.0, contact_start=2.5, target=2),
                         dict(index=2, type='idle', start=4.0, end=6.0, contact_start=None, target=0)],
             'contacts': [dict(time=2.2, objects=[3, -1], gripper=True, action=1),     # approach
                          dict(time=2.8, objects=[2, -1], gripper=True, action=1)]}
    assert went_otherwise(truth, truth['actions'][1]) == ['approach contact', 'other object']
    assert went_otherwise(truth, truth['actions'][2]) == []
    rep = Replay(paths=[(t0, t0 + 2 * ns), (t0 + 2 * ns, t0 + 4 * ns), (t0 + 4 * ns, t0 + 6 * ns)],
                 decisions=[Decision(t0, 'MISSING', 0.9, t0 + int(0.9 * ns), t0 + int(0.85 * ns)),
                            Decision(t0 + 2 * ns, 'UNEXPECTED', 1.0, t0 + int(2.25 * ns))])
    trials = action_trials(truth, rep, 0.8)
    assert [(t['fault'], t['alarm']) for t in trials] == [('removed', True), (None, True), (None, False)]
    assert trials[0]['latency_ms'] == pytest.approx(100.0) and trials[0]['after_window_ms'] == pytest.approx(50.0)
    out = summarize([trials], n_boot=0)
    assert out['recall'] == 1.0 and out['false_alarms_per_100_actions'] == pytest.approx(50.0)
    assert out['false_alarms_per_100_clean_actions'] == 0.0 and out['normal_actions_gone_otherwise'] == 1
