"""The execution monitor's matching (``hearing_hands_ros/monitor.py``) on constructed events:
every anomaly kind, and the edges of the tolerances."""
import pytest

from hearing_hands_ros.events import ContactEvent
from hearing_hands_ros.monitor import MonitorConfig, PathMonitor

CFG = MonitorConfig(tolerance_s=0.05, spread_k=3.0, level_margin_db=10.0, min_probability=0.5,
                    min_confidence=0.5)


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
    assert kinds(PathMonitor([tap()], CFG).heard(1.0, -9.0)) == ['LOUDER']      # +11 dB
    assert kinds(PathMonitor([tap()], CFG).heard(1.0, -11.0)) == []             # +9 dB
    assert kinds(PathMonitor([tap()], CFG).heard(1.0, -31.0)) == ['QUIETER']    # -11 dB


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
