"""The look match: look statistics, the cross-event InfoNCE, ONNX parity, and the candidates the
node publishes and the evaluation scores (automatic segments scored by slots, then by look)."""
import numpy as np
import pytest
import torch

from hearing_hands_ros.models.look_match import (N_LOOK, LookConfig, LookMatch, candidate_looks,
                                                 export_onnx, info_nce, look_features, pair_accuracy,
                                                 rescore, segment_candidates, sound_features,
                                                 sounding_candidates, torch_loader)
from hearing_hands_ros.runtime import load_bundle


def striped(h=64, w=64, period=4, c0=(200, 60, 50), c1=(120, 30, 20)):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = c0
    img[:, (np.arange(w) // (period // 2)) % 2 == 1] = c1
    return img


def test_look_features_see_colour_and_texture():
    mask = np.zeros((64, 64), bool)
    mask[10:50, 10:50] = True
    plain = np.zeros((64, 64, 3), np.uint8)
    plain[:] = (200, 60, 50)
    f_plain, f_stripes = look_features(plain, mask), look_features(striped(), mask)
    assert f_plain.shape == (N_LOOK,) and f_plain.dtype == np.float32
    assert np.allclose(f_plain[:3], np.array([200, 60, 50]) / 255, atol=1e-6)   # mean colour
    assert np.allclose(f_plain[3:6], 0, atol=1e-4)                             # no spread
    lap = slice(6, 9)                                                          # Laplacian mean
    assert (f_stripes[lap] > 0.05).all() and np.allclose(f_plain[lap], 0, atol=1e-4)
    coherence = f_stripes[-3]            # stripes: every gradient along one axis
    assert coherence > 0.9
    assert look_features(plain, np.zeros((64, 64), bool)) is None


def test_sound_features_layout():
    cfg = LookConfig()
    win = np.random.default_rng(0).normal(0, 0.1, int(0.048 * cfg.sample_rate)).astype(np.float32)
    m = sound_features(win, cfg)
    assert m.shape == (cfg.n_mels, cfg.frames) and m.size == cfg.n_sound
    assert sound_features(win[:100], cfg).shape == m.shape         # short windows are padded


def toy_events(n, rng, k=6):
    """Sounds and looks that share a hidden 'material' k: sound = material code + noise (60 dims),
    look = another code of it + noise (N_LOOK dims)."""
    cfg = LookConfig()
    mat = rng.integers(0, k, n)
    a_code, v_code = rng.normal(0, 1, (k, cfg.n_sound)), rng.normal(0, 1, (k, N_LOOK))
    sounds = (a_code[mat] + 0.5 * rng.normal(0, 1, (n, cfg.n_sound))).astype(np.float32)
    looks = (v_code[mat] + 0.5 * rng.normal(0, 1, (n, N_LOOK))).astype(np.float32)
    return mat, sounds, looks, a_code, v_code


def test_info_nce_learns_which_look_goes_with_which_sound():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    _, sounds, looks, a_code, v_code = toy_events(512, rng)
    net = LookMatch(LookConfig())
    net.set_stats(sounds, looks)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    S, V = torch.from_numpy(sounds), torch.from_numpy(looks)
    for _ in range(150):
        idx = torch.randint(0, len(S), (64,))
        loss = info_nce(net, S[idx], V[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    # held-out pairs of two objects of different materials: the sound's own material must win
    mat = rng.integers(0, 6, (200, 2))
    mat[:, 1] = (mat[:, 0] + 1 + rng.integers(0, 5, 200)) % 6
    test_s = (a_code[mat[:, 0]] + 0.5 * rng.normal(0, 1, (200, a_code.shape[1]))).astype(np.float32)
    test_v = (v_code[mat] + 0.5 * rng.normal(0, 1, (200, 2, N_LOOK))).astype(np.float32)
    assert pair_accuracy(net, test_s, test_v) > 0.9
    assert loss.item() < np.log(64)


def toy_net(seed):
    """An untrained LookMatch with its input statistics set from 64 toy events, and the events."""
    torch.manual_seed(0)
    _, sounds, looks, _, _ = toy_events(64, np.random.default_rng(seed))
    net = LookMatch(LookConfig())
    net.set_stats(sounds, looks)
    return net, sounds, looks


def test_onnx_bundle_matches_torch(tmp_path):
    net, sounds, looks = toy_net(1)
    path = export_onnx(net.eval(), tmp_path / 'look.onnx')
    feeds = {'sound': sounds[:1], 'looks': looks[:5]}
    onnx_out = load_bundle(path, 'look_match', backend='cpu').run(feeds)['logits']
    torch_out = load_bundle(path, 'look_match', backend='torch', torch_loader=torch_loader).run(feeds)['logits']
    with torch.no_grad():
        want = net(torch.from_numpy(sounds[:1]), torch.from_numpy(looks[None, :5]))[0].numpy()
    assert onnx_out.shape == (5,)
    assert np.allclose(onnx_out, want, atol=1e-4) and np.allclose(torch_out, want, atol=1e-5)


def two_segments(size=64):
    seg = np.zeros((size, size), np.uint8)
    seg[10:30, 5:25] = 1            # left object
    seg[10:30, 40:60] = 2           # right object
    return seg


def test_segments_are_scored_by_the_slot_mass_on_their_pixels():
    seg = two_segments()
    masks = np.zeros((3, 32, 32), np.float32)     # slot masks at the detector's size
    masks[0, :, :16] = 1                           # slot 0: left half
    masks[1, :, 16:] = 1                           # slot 1: right half
    cands = segment_candidates(np.array([0.2, 0.7, 0.1]), masks, seg)
    assert [c['slot'] for c in cands] == [2, 1]
    assert cands[0]['score'] == pytest.approx(0.7, abs=0.02) and cands[1]['score'] == pytest.approx(0.2, abs=0.02)
    assert cands[0]['bbox'] == (40, 10, 60, 30)
    big = np.ones((64, 64), np.uint8)              # a "segment" of the whole frame: table model failed
    assert segment_candidates(np.array([0.2, 0.7, 0.1]), masks, big) == []


def test_the_look_match_can_overturn_the_slots_and_a_frame_without_segments_falls_back():
    seg = two_segments()
    masks = np.zeros((2, 32, 32), np.float32)
    masks[0, :, :16] = 1
    masks[1, :, 16:] = 1
    scores = np.array([0.4, 0.6])
    cands = segment_candidates(scores, masks, seg)
    out = rescore(cands, np.array([-2.0, 3.0]), 1.0)     # logits in cands' order: right, left
    assert [c['slot'] for c in out] == [1, 2]
    assert sum(c['score'] for c in out) == pytest.approx(1.0)
    assert rescore(cands, np.array([-2.0, 3.0]), 0.0)[0]['slot'] == 2    # weight 0: slots decide
    rgb = np.zeros((64, 64, 3), np.uint8)
    kept, looks = candidate_looks(rgb, cands)
    assert looks.shape == (2, N_LOOK) and len(kept) == 2
    # no segment at all: the slots' own object-sized regions (hard masks), best first
    small = np.zeros((3, 32, 32), np.float32)
    small[2] = 1                                   # slot 2: the rest (too large: background)
    small[0, :16, :8], small[1, :16, 24:], small[2, :16, :8], small[2, :16, 24:] = 1, 1, 0, 0
    fallback = sounding_candidates(np.array([0.3, 0.6, 0.1]), small, np.zeros((64, 64), np.uint8), rgb)
    assert [c['slot'] for c in fallback] == [1, 0] and fallback[0]['mask'].shape == (64, 64)


def test_sounding_candidates_run_the_look_bundle(tmp_path):
    net, sounds, _ = toy_net(2)
    look = load_bundle(export_onnx(net.eval(), tmp_path / 'look.onnx'), 'look_match', backend='cpu')
    seg = two_segments()
    rgb = striped()
    masks = np.full((2, 32, 32), 0.5, np.float32)
    got = sounding_candidates(np.array([0.5, 0.5]), masks, seg, rgb, sounds[0], look, weight=1.0)
    kept, f = candidate_looks(rgb, segment_candidates(np.array([0.5, 0.5]), masks, seg))
    logits = look.run({'sound': sounds[:1], 'looks': f})['logits']
    assert got[0]['slot'] == kept[int(np.argmax(logits))]['slot']
