"""Contact-sound synthesis of the sound world (sim/materials.py, sim/modal.py): fast, numpy only."""
import numpy as np
import pytest

from hearing_hands_ros.sim.materials import (MATERIALS, OBJECT_MATERIALS, TEXTURES,
                                             appearance_distribution, sample_appearance)
from hearing_hands_ros.sim.modal import (SHAPES, Excitation, ModalSynth, ObjectSound,
                                         hertz_contact_duration, object_modes, synthesize)

SR = 16000
MIC = (0.0, 0.0, 0.10)          # 10 cm above the contact point (origin)


def hit(t=0.05, J=0.1, obj=1, other=-1, pos=(0.0, 0.0, 0.0)):
    return Excitation(t=t, obj=obj, kind='impact', normal_impulse=J, position=pos, other=other)


def render(spec, exs, dur=0.4, seed=0, **kw):
    return synthesize({1: spec}, exs, dur, SR, MIC, seed, **kw).astype(float)


def features(y, t_hit):
    """(log spectral centroid, log time to 90 % of the energy) after the hit."""
    x = y[int(t_hit * SR):]
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    e = np.cumsum(x ** 2)
    t90 = (np.searchsorted(e, 0.9 * e[-1]) + 1) / SR
    return np.array([np.log((f * p).sum() / p.sum()), np.log(t90)])


def test_material_table():
    assert len(OBJECT_MATERIALS) == 8 and set(OBJECT_MATERIALS) < set(MATERIALS)
    assert {'table', 'gripper'} < set(MATERIALS)
    for m in MATERIALS.values():
        assert m.density > 0 and m.youngs > 0 and 0 < m.poisson < 0.5
        assert 0 < m.friction and 0 <= m.restitution <= 1 and m.loss_factor > 0
    # ordering facts the sounds rely on
    M = MATERIALS
    eta = [M[m].loss_factor for m in ('metal', 'glass', 'wood', 'foam')]
    assert eta == sorted(eta)
    assert M['metal'].plate_speed > M['plastic'].plate_speed > M['foam'].plate_speed
    assert hertz_contact_duration('metal', 'gripper', 0.2, 1.0, 0.05) < 3e-4
    assert hertz_contact_duration('foam', 'gripper', 0.02, 1.0, 0.01) > 3e-3


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('material', OBJECT_MATERIALS)
def test_modes_valid(material, shape):
    rng = np.random.default_rng(0)
    md = object_modes(material, shape, (0.08, 0.07, 0.1), rng, SR)
    assert 8 <= len(md) <= 32
    assert np.all(np.diff(md.freqs) >= 0) and md.freqs[0] >= 30 and md.freqs[-1] < SR / 2
    assert np.all(md.decays > 0) and np.all(md.gains >= 0)


def test_materials_are_distinguishable_by_sound():
    """Nearest-centroid on log (spectral centroid, decay time) separates wood blocks, steel cups
    and glass cups."""
    def make(mat, rng):
        if mat == 'wood':
            return ObjectSound('wood', 'box', tuple(rng.uniform(0.04, 0.09, 3)))
        d = rng.uniform(0.06, 0.09)
        return ObjectSound(mat, 'cup', (d, d, rng.uniform(0.08, 0.12)))

    def sound(spec, J, seed):       # the contact sound alone (the noise floor is seeded)
        return (render(spec, [hit(J=J)], dur=0.8, seed=seed)
                - render(spec, [], dur=0.8, seed=seed))

    rng = np.random.default_rng(1)
    feats = {m: np.array([features(sound(make(m, rng), rng.uniform(0.0075, 0.025), s), 0.05)
                          for s in range(6)])
             for m in ('wood', 'metal', 'glass')}
    # features are logs (octave-like units), compared without rescaling; train on 3, test on 3
    cents = {m: f[:3].mean(0) for m, f in feats.items()}
    for m, f in feats.items():
        for x in f[3:]:
            pred = min(cents, key=lambda c: np.sum((x - cents[c]) ** 2))
            assert pred == m, (m, pred)
    # the physics behind it: wood decays fastest, metal rings longest
    t90 = {m: np.exp(f[:, 1]).mean() for m, f in feats.items()}
    assert t90['wood'] < t90['glass'] < t90['metal']


def test_harder_strike_is_louder():
    spec = ObjectSound('metal', 'cup', (0.08, 0.08, 0.1))
    peaks, rmss = [], []
    for J in (0.00125, 0.005, 0.0125, 0.025, 0.05, 0.1):
        y = render(spec, [hit(J=J)])
        peaks.append(np.abs(y).max())
        rmss.append(np.sqrt(np.mean(y ** 2)))
    assert np.all(np.diff(peaks) > 0) and np.all(np.diff(rmss) > 0)
    assert max(peaks) < 1.0


def test_loudness_calibration():
    """A hard steel-cup hit (J = 0.05 N s, ~0.2 m/s: the simulator's impulses are collision
    momenta (1 + e) m v since the servo's push was dropped from them, hence the microphone gain
    FULL_SCALE_PA 4x higher and J 4x lower than before) 10 cm from the mic peaks near -6 dBFS."""
    y = render(ObjectSound('metal', 'cup', (0.08, 0.08, 0.1)), [hit(J=0.05)])
    assert -10.0 < 20 * np.log10(np.abs(y).max()) < -3.0


def _episode():
    objs = {1: ObjectSound('glass', 'cup', (0.07, 0.07, 0.1)),
            2: ObjectSound('wood', 'box', (0.06, 0.05, 0.04))}
    exs = [hit(t=0.0318, J=0.05),                                  # chunk boundary at 0.032
           Excitation(0.0635, 2, 'impact', normal_impulse=0.08, position=(0.05, 0, 0), other=0),
           Excitation(0.1, 2, 'impact', normal_impulse=0.005, position=(0.05, 0, 0), other=1)]
    exs += [Excitation(0.15 + i * 1e-3, 1, 'slide', normal_force=2.0, tangential_speed=0.1,
                       position=(0, 0.01, 0), other=-1) for i in range(60)]
    return objs, exs


def test_chunked_equals_one_shot():
    objs, exs = _episode()
    n, chunk = 5120, 512
    one = ModalSynth(SR, objs, seed=3).render(0.0, n, exs, MIC)
    synth = ModalSynth(SR, objs, seed=3)
    parts = []
    for c in range(n // chunk):
        t0, t1 = c * chunk / SR, (c + 1) * chunk / SR
        parts.append(synth.render(t0, chunk, [e for e in exs if t0 <= e.t < t1], MIC))
    chunked = np.concatenate(parts)
    assert np.abs(one).max() > 0.01
    np.testing.assert_allclose(chunked, one, atol=1e-5)


def test_onset_at_impact_time():
    t = 0.1003
    spec = ObjectSound('ceramic', 'bowl', (0.14, 0.14, 0.06))
    quiet = render(spec, [], dur=0.5)
    y = render(spec, [hit(t=t, J=0.05)], dur=0.5)
    i = int(np.floor(t * SR))
    np.testing.assert_array_equal(y[:i], quiet[:i])          # nothing before the contact
    onset = np.argmax(np.abs(y - quiet) > 0.01)
    assert 0 <= onset / SR - t < 1e-3
    sig = (y - quiet) ** 2
    assert sig[i:i + int(0.3 * SR)].sum() > 0.99 * sig.sum()


def test_deterministic_and_noise_floor():
    objs, exs = _episode()
    a = synthesize(objs, exs, 0.3, SR, MIC, seed=5)
    b = synthesize(objs, exs, 0.3, SR, MIC, seed=5)
    c = synthesize(objs, exs, 0.3, SR, MIC, seed=6)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4
    silence = synthesize(objs, [], 1.0, SR, MIC, seed=5).astype(float)
    dbfs = 10 * np.log10(np.mean(silence ** 2))
    assert -62.0 < dbfs < -58.0


def test_foam_quieter_and_shorter_than_glass():
    shape = ('cylinder', (0.07, 0.07, 0.1))
    noise = render(ObjectSound('glass', *shape), [], seed=2)
    out = {}
    for m in ('glass', 'foam'):
        s = render(ObjectSound(m, *shape), [hit(J=0.05)], seed=2) - noise   # signal only
        e = np.cumsum(s ** 2)
        out[m] = (np.sqrt(np.mean(s ** 2)), np.searchsorted(e, 0.9 * e[-1]) / SR)
    assert out['foam'][0] < 0.3 * out['glass'][0]                 # at least 10 dB quieter
    assert out['foam'][1] < out['glass'][1]


def test_foam_and_fabric_taps_are_audible_thuds():
    """Porous bodies barely ring, but a tap on them is still heard (air pushed out of the cells):
    the burst rises well above the noise floor and is over within ~30 ms."""
    shape = ('box', (0.06, 0.06, 0.06))
    for m in ('foam', 'fabric'):
        noise = render(ObjectSound(m, *shape), [], seed=3)
        s = render(ObjectSound(m, *shape), [hit(J=0.0125)], seed=3) - noise
        floor = np.sqrt(np.mean(noise ** 2))
        peak_rms = np.sqrt(np.max(np.convolve(s ** 2, np.ones(80) / 80, 'same')))
        assert peak_rms > 10 * floor, m                              # > 20 dB over the floor
        e = np.cumsum(s ** 2)
        assert (np.searchsorted(e, 0.9 * e[-1]) - np.argmax(e > 0.01 * e[-1])) / SR < 0.03, m


def test_slides_scale_with_force_and_speed():
    spec = ObjectSound('wood', 'box', (0.06, 0.06, 0.06))
    noise = render(spec, [])

    def level(N, v):
        exs = [Excitation(0.05 + i * 1e-3, 1, 'slide', normal_force=N, tangential_speed=v,
                          other=-1) for i in range(300)]
        return np.sqrt(np.mean((render(spec, exs) - noise) ** 2))

    assert level(1.0, 0.1) < level(3.0, 0.1)
    assert level(2.0, 0.05) < level(2.0, 0.3)


def test_appearance_suggests_but_does_not_give_away_the_material():
    """Colour families are shared (1-NN on rgb is far from perfect); the whole look (colour,
    translucency, texture) is informative, but still not decisive."""
    rng = np.random.default_rng(0)
    X, y = [], []
    for k, m in enumerate(OBJECT_MATERIALS):
        ws = [d[0] for d in appearance_distribution(m)]
        assert abs(sum(ws) - 1) < 1e-9
        for _ in range(60):
            a = sample_appearance(m, rng)
            assert len(a['rgba']) == 4 and all(0 <= c <= 1 for c in a['rgba'])
            X.append(a['rgba'] + [float(a['texture'] == t) for t in TEXTURES])
            y.append(k)
    X, y = np.array(X), np.array(y)

    def nn_accuracy(cols):
        d = ((X[:, None, cols] - X[None, :, cols]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return np.mean(y[d.argmin(1)] == y)
    assert nn_accuracy(slice(0, 3)) < 0.5
    assert 2.0 / len(OBJECT_MATERIALS) < nn_accuracy(slice(None)) < 0.9
