"""The sound world's audio agrees with its ground truth: audible contacts are where the truth
says (onsets within 10 ms), and away from every contact there is only the noise floor."""
import numpy as np
import pytest

from hearing_hands_ros.audio import detect_onsets
from hearing_hands_ros.sim.world import SimConfig, SoundWorld

SR = 16000


def _level_db(x):
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12)


def _simulate(seed):
    w = SoundWorld(SimConfig(seed=seed, n_actions=4, width=32, height=32))
    audio = np.concatenate([e.samples for e in w.run() if e.kind == 'audio'])
    return audio, w.truth


@pytest.fixture(scope='module')
def episodes():
    return [_simulate(seed) for seed in (3, 8, 11)]


def test_onsets_within_10ms_of_audible_impacts(episodes):
    found, audible = 0, 0
    for audio, truth in episodes:
        f, a = _match_impacts(audio, truth)
        found, audible = found + f, audible + a
    assert audible >= 4
    assert found / audible >= 0.9, (found, audible)


def _match_impacts(audio, truth):
    """(impacts with an onset within 10 ms, audible isolated impacts)."""
    onsets = detect_onsets(audio, SR)
    times = np.array([c['time'] for c in truth['contacts']])
    found, audible = 0, 0
    for c in truth['contacts']:
        others = times[np.abs(times - c['time']) > 1e-9]
        if c['kind'] != 'impact' or (len(others) and np.min(np.abs(others - c['time'])) < 0.05):
            continue                                       # overlapped: not attributable
        k = int(round(c['time'] * SR))
        if _level_db(audio[k:k + 320]) - _level_db(audio[max(k - 320, 0):k]) < 6:
            continue                                       # masked or below the floor
        audible += 1
        found += bool(len(onsets)) and np.min(np.abs(onsets - c['time'])) <= 0.010
    return found, audible


@pytest.mark.parametrize('i', range(3))
def test_silence_away_from_contacts(episodes, i):
    audio, truth = episodes[i]
    busy = np.zeros(len(audio), bool)
    for c in truth['contacts']:       # a contact sounds from its start to ~1 s after its end
        a = int(c['time'] * SR)
        busy[max(a - SR // 10, 0):a + int((c['duration'] + 1.0) * SR)] = True
    quiet = audio[~busy]
    assert len(quiet) > SR                                 # at least a second of quiet
    blocks = quiet[:len(quiet) // 1600 * 1600].reshape(-1, 1600)
    levels = [_level_db(b) for b in blocks]
    assert max(levels) < -60 + 3, max(levels)              # the -60 dBFS floor, nothing else
