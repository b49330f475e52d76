"""Detector network: shapes, losses of every variant, candidates, ONNX export parity vs torch."""
import numpy as np
import pytest
import torch

from hearing_hands_ros import runtime
from hearing_hands_ros.models.detector import (VARIANTS, DetectorConfig, SoundingObjectDetector,
                                               detector_loss, export_onnx, extract_candidates,
                                               load_checkpoint, segment_loss, torch_loader)
from hearing_hands_ros.models.slot_attention import SlotAttention

SMALL = dict(image_size=32, num_slots=4, dim=32, embed=16, decoder_size=16, n_mels=32,
             window_pre_s=0.01, window_post_s=0.2)


def _batch(cfg, b=4):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(b, 3, cfg.image_size, cfg.image_size, generator=g)
    mel = torch.randn(b, 1, cfg.n_mels, cfg.frames, generator=g)
    am = torch.zeros(b, cfg.image_size, cfg.image_size)
    am[:, 8:20, 10:24] = 1
    return img, mel, am


def test_slot_attention_shapes_and_competition():
    sa = SlotAttention(num_slots=5, dim=16, iters=3)
    slots, attn = sa(torch.randn(2, 49, 16))
    assert slots.shape == (2, 5, 16) and attn.shape == (2, 5, 49)
    torch.testing.assert_close(attn.sum(1), torch.ones(2, 49), atol=1e-4, rtol=0)


def test_gaussian_slots_are_sampled_in_training_and_fixed_in_evaluation():
    torch.manual_seed(0)
    sa = SlotAttention(num_slots=4, dim=16, init='gaussian')
    x = torch.randn(2, 25, 16)
    assert not torch.allclose(sa(x)[0], sa(x)[0])                       # fresh draws
    sa.eval()
    torch.testing.assert_close(sa(x)[0], sa(x)[0])                      # one stored draw
    with pytest.raises(ValueError):
        SlotAttention(init='random')


@pytest.mark.parametrize('variant', VARIANTS)
def test_variants_forward_loss_backward(variant):
    torch.manual_seed(0)
    cfg = DetectorConfig(variant=variant, **SMALL)
    net = SoundingObjectDetector(cfg)
    img, mel, am = _batch(cfg)
    out = net(img, mel)
    loss, parts = detector_loss(net, out, img, am, torch.tensor([True, True, True, False]))
    loss.backward()
    assert torch.isfinite(loss)
    assert ('nce' in parts) == (variant != 'vision_only')
    assert ('rec' in parts) == (variant != 'global_av')
    assert all(p.grad is not None for p in net.encoder.parameters())
    scores, masks = net.infer(img, mel)
    k = 1 if variant == 'global_av' else cfg.num_slots
    assert scores.shape == (4, k) and masks.shape == (4, k, cfg.image_size, cfg.image_size)
    if variant != 'global_av':
        torch.testing.assert_close(scores.sum(1), torch.ones(4))
        torch.testing.assert_close(masks.sum(1), torch.ones(4, cfg.image_size, cfg.image_size),
                                   atol=1e-4, rtol=0)


def test_term_dropout_trains_each_term_alone():
    """match_dropout=1 scores every event by the visual prior alone, prior_dropout=1 by the
    audio-visual match alone; the gradient then reaches only that term's head."""
    torch.manual_seed(0)
    cfg = DetectorConfig(**SMALL)
    net = SoundingObjectDetector(cfg)
    img, mel, am = _batch(cfg)
    valid = torch.ones(4, dtype=torch.bool)
    for kw, used, unused in ((dict(match_dropout=1.0), net.prior_head, net.audio),
                             (dict(prior_dropout=1.0), net.audio, net.prior_head)):
        net.zero_grad()
        out = net(img, mel)
        loss, _ = detector_loss(net, out, img, am, valid, weights={'rec': 0, 'mask': 0, 'nce': 0},
                                **kw)
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in used.parameters())
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in unused.parameters())


def test_segment_loss_rewards_one_slot_per_segment():
    """Slots that are the segments score 0; one slot spread over two segments scores far worse
    (the second segment is matched to an empty slot); the term is on only with a 'seg' weight."""
    seg = torch.zeros(1, 2, 8, 8)
    seg[0, 0, :, :4], seg[0, 1, :, 4:] = 1, 1
    split = torch.zeros(1, 3, 8, 8)
    split[0, 0, :, :4], split[0, 1, :, 4:] = 1, 1
    merged = torch.zeros(1, 3, 8, 8)
    merged[0, 0] = 1
    assert float(segment_loss(split, seg)) == pytest.approx(0.0, abs=1e-6)
    assert float(segment_loss(merged, seg)) > 4.0               # (0 + 13.8 + 0) / 3 terms
    assert float(segment_loss(split, torch.zeros(1, 2, 8, 8))) == 0.0      # no segment: no loss
    cfg = DetectorConfig(**SMALL)
    net = SoundingObjectDetector(cfg)
    img, mel, am = _batch(cfg)
    segs = am[:, None].repeat(1, 2, 1, 1)
    valid = torch.ones(4, dtype=torch.bool)
    _, off = detector_loss(net, net(img, mel), img, am, valid, segments=segs)
    _, on = detector_loss(net, net(img, mel), img, am, valid, weights={'seg': 2.0}, segments=segs)
    assert 'seg' not in off and 0 < on['seg'] < 10


def test_audio_changes_scores_only_with_audio():
    cfg = DetectorConfig(variant='vision_only', **SMALL)
    net = SoundingObjectDetector(cfg).eval()
    img, mel, _ = _batch(cfg, 1)
    s1, _ = net.infer(img, mel)
    s2, _ = net.infer(img, mel * 3 + 1)
    torch.testing.assert_close(s1, s2)


def test_slot_logits_are_visual_prior_plus_audio_match():
    """The model = the vision-only scorer (prior) + an audio-visual match term; with an
    init from the model the vision-only variant reproduces the prior exactly."""
    torch.manual_seed(2)
    cfg = DetectorConfig(variant='slots', **SMALL)
    net = SoundingObjectDetector(cfg).eval()
    img, mel, _ = _batch(cfg, 2)
    with torch.no_grad():
        out = net(img, mel)
        torch.testing.assert_close(out['logits'], out['prior'] + out['match'])
        vo = SoundingObjectDetector(DetectorConfig(variant='vision_only', **SMALL)).eval()
        missing, unexpected = vo.load_state_dict(net.state_dict(), strict=False)
        assert not missing and all(k.startswith('audio.') for k in unexpected)
        torch.testing.assert_close(vo(img)['logits'], out['prior'])


def test_candidates_from_masks():
    masks = np.zeros((3, 20, 20), np.float32)
    masks[0] = 1
    masks[0, 2:6, 3:9] = 0
    masks[1, 2:6, 3:9] = 1
    scores = np.array([0.1, 0.7, 0.2])
    c = extract_candidates(scores, masks, min_area=0.01, max_area=0.9)
    assert [x['slot'] for x in c] == [1]  # slot 0 covers 94% (background), slot 2 is empty
    assert c[0]['bbox'] == (3, 2, 9, 6) and c[0]['mask'].sum() == 24
    one = np.zeros((1, 20, 20), np.float32)
    one[0, 1:4, 1:4] = 0.9
    one[0, 10:15, 10:15] = 0.6
    c = extract_candidates(np.array([0.9]), one, min_area=0.01)
    assert [round(x['score'], 2) for x in c] == [0.9, 0.6]


@pytest.mark.parametrize('variant,slot_init', [('slots', 'learned'), ('slots', 'gaussian'),
                                               ('global_av', 'learned')])
def test_onnx_export_matches_torch(tmp_path, variant, slot_init):
    torch.manual_seed(1)
    cfg = DetectorConfig(variant=variant, mel_mean=-5.0, mel_std=2.0, slot_init=slot_init, **SMALL)
    net = SoundingObjectDetector(cfg).eval()
    path = export_onnx(net, tmp_path / 'det.onnx', training={'events': 0})
    img, mel, _ = _batch(cfg, 3)
    with torch.no_grad():
        ref_s, ref_m = net.infer(img, mel)
    b = runtime.load_bundle(path, 'detector', backend='cpu',
                            expect={'sample_rate': 16000, 'frames': cfg.frames})
    assert b.meta['num_slots'] == (1 if variant == 'global_av' else 4)
    out = b.run({'image': img.numpy(), 'logmel': mel.numpy()})
    np.testing.assert_allclose(out['scores'], ref_s.numpy(), atol=1e-4)
    np.testing.assert_allclose(out['masks'], ref_m.numpy(), atol=1e-4)
    tb = runtime.load_bundle(path, 'detector', backend='torch', torch_loader=torch_loader)
    np.testing.assert_allclose(tb.run({'image': img.numpy(), 'logmel': mel.numpy()})['scores'],
                               ref_s.numpy(), atol=1e-6)
    net2, _ = load_checkpoint(path.with_suffix('.pt'))
    assert net2.cfg == cfg
