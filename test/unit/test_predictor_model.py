"""Predictor network, vocoder and their ONNX graph: shapes, exactness, parity, scene inputs."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.audio import log_mel
from hearing_hands_ros.images import intrinsics
from hearing_hands_ros.models import predictor as P
from hearing_hands_ros.models.vocoder import ISTFT, MelSpectrogram, Vocoder, griffin_lim

TINY = dict(channels=(16, 24, 32), blocks=1, cond_dim=16, vis_dim=8)


def inputs(cfg, b, t_len, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = P.n_views(t_len, cfg)
    return (torch.randn(b, cfg.n_mels, t_len, generator=g), torch.rand(b, generator=g),
            (torch.arange(b) % 2).float(), torch.randn(b, t_len, cfg.traj_dim, generator=g),
            torch.rand(b, 3, cfg.image_size, cfg.image_size, generator=g),
            torch.rand(b, k, 3, cfg.crop_size, cfg.crop_size, generator=g))


@pytest.mark.parametrize('t_len', [37, 80, 801])
def test_velocity_shapes_any_length(t_len):
    cfg = P.PredictorConfig(**TINY)
    net = P.VelocityNet(cfg)
    v = net(*inputs(cfg, 2, t_len))
    assert v.shape == (2, cfg.n_mels, t_len)


def test_dropped_condition_ignores_the_condition():
    cfg = P.PredictorConfig(**TINY)
    net = P.VelocityNet(cfg)
    for p in net.parameters():
        p.data += 0.05 * torch.randn_like(p)
    x, t, _, traj, img, crops = inputs(cfg, 2, 40)
    drop = torch.ones(2)
    a = net(x, t, drop, traj, img, crops)
    b = net(x, t, drop, traj * 3 + 1, 1 - img, crops * 0)
    assert torch.allclose(a, b, atol=1e-5)
    c = net(x, t, torch.zeros(2), traj * 3 + 1, img, crops)
    assert not torch.allclose(a, c, atol=1e-3)


def test_istft_and_mel_match_references():
    x = torch.randn(2, 8000)
    spec = torch.stft(x, 512, 160, window=torch.hann_window(512), center=True, return_complex=True)
    y = ISTFT(512, 160)(torch.cat([spec.real, spec.imag], 1))
    assert y.shape == (2, (spec.shape[-1] - 1) * 160)
    assert torch.allclose(y, x[:, :y.shape[1]], atol=1e-5)
    m = MelSpectrogram()(x[:1])[0].numpy()
    np.testing.assert_allclose(m, log_mel(x[0].numpy(), 16000), atol=1e-3)


def test_vocoder_length_and_griffin_lim_reference():
    voc = Vocoder(dim=16, blocks=1)
    mel = torch.randn(3, 64, 51) - 8
    assert voc(mel).shape == (3, 50 * 160)
    sr = 16000
    t = np.arange(sr // 2) / sr
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t) * np.exp(-4 * t)).astype(np.float32)
    lm = log_mel(tone, sr)
    y = griffin_lim(lm, n_iter=16)
    assert y.shape == ((lm.shape[1] - 1) * 160,)
    err = np.abs(log_mel(y, sr)[:, 5:-5] - lm[:, 5:-5])[lm[:, 5:-5] > -6].mean()
    assert err < 1.0


def test_onnx_graph_matches_torch_and_accepts_empty_halves(tmp_path):
    cfg = P.PredictorConfig(**TINY)
    net, voc = P.VelocityNet(cfg).eval(), Vocoder(dim=16, blocks=1).eval()
    for p in net.parameters():
        p.data += 0.05 * torch.randn_like(p)
    layout = P.export_onnx(net, voc, tmp_path / 'p.onnx')
    assert set(layout) == set(P.ONNX_INPUTS)
    sess = ort.InferenceSession(str(tmp_path / 'p.onnx'), providers=['CPUExecutionProvider'])
    for t_len in (45, 120):
        args = inputs(cfg, 3, t_len, seed=t_len) + (torch.randn(2, cfg.n_mels, t_len),)
        with torch.no_grad():
            v, a = P.ExportGraph(net, voc)(*args)
        out = sess.run(None, {n: x.numpy() for n, x in zip(P.ONNX_INPUTS, args)})
        np.testing.assert_allclose(out[0], v.numpy(), atol=1e-4)
        np.testing.assert_allclose(out[1], a.numpy(), atol=1e-4)
    feeds = {n: x.numpy() for n, x in zip(P.ONNX_INPUTS, inputs(cfg, 2, 50) + (torch.zeros(0, 64, 50),))}
    v, a = sess.run(None, feeds)
    assert v.shape == (2, 64, 50) and a.shape[0] == 0
    feeds = {n: x[:0] for n, x in feeds.items()}
    feeds['mel'] = np.zeros((1, 64, 50), np.float32)
    v, a = sess.run(None, feeds)
    assert v.shape[0] == 0 and a.shape == (1, 49 * 160)


def test_local_views_follow_the_path_into_the_image():
    cfg = P.PredictorConfig()
    w = h = 128
    K = intrinsics(w, h)
    # camera looking straight down from the TCP (identity TCP, camera 5 cm above, rotated x by 180)
    T_tcp_cam = (np.array([0.0, 0.0, 0.05]), np.array([1.0, 0.0, 0.0, 0.0]))
    times = np.array([0.0, 1.0])
    pos = np.array([[0.0, 0.0, 0.4], [0.1, 0.0, 0.05]])
    quat = np.array([[0, 0, 0, 1.0], [0, 0, 0, 1.0]])
    traj = tr.validate(tr.Trajectory(times, pos, quat))
    f = tr.features(traj, 120)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, 64:] = 255                                      # right half white (x > 0 at depth)
    crops, uv = P.local_views(rgb, f, K, T_tcp_cam, cfg)
    assert crops.shape == (P.n_views(120, cfg), 3, 16, 16) and uv.shape == (6, 2)
    assert uv[0] == pytest.approx([64.0, 64.0])            # starts at the image centre
    assert uv[-1][0] > uv[1][0] > 64                       # moves right as the path goes +x
    assert crops[-1].mean() > 0.9 and 0.3 < crops[0].mean() < 0.7
    g = P.global_view(rgb, cfg)
    assert g.shape == (3, 64, 64) and g.dtype == np.float32
    K2 = P.scale_intrinsics(K, (128, 128), (64, 64))
    assert K2[0, 0] == pytest.approx(K[0, 0] / 2) and K2[1, 2] == pytest.approx(32)


def test_a_look_model_uses_its_looks_and_its_onnx_graph_matches_torch(tmp_path):
    cfg = P.PredictorConfig(**TINY, look_dim=P.N_VIEW_LOOK)
    net, voc = P.VelocityNet(cfg).eval(), Vocoder(dim=16, blocks=1).eval()
    for p in net.parameters():
        p.data += 0.05 * torch.randn_like(p)
    t_len = 45
    base = inputs(cfg, 2, t_len)
    looks = torch.rand(2, P.n_views(t_len, cfg), P.N_VIEW_LOOK)
    looks[..., 0] = 1.0
    with torch.no_grad():
        a = net(*base, looks)
        b = net(*base, looks * 0.5)                    # another segment's look: another sound
        c = net(*base[:2], torch.ones(2), *base[3:], looks * 0.5)   # dropped: looks ignored
        d = net(*base[:2], torch.ones(2), *base[3:], looks)
    assert not torch.allclose(a, b, atol=1e-4)
    assert torch.allclose(c, d, atol=1e-5)
    layout = P.export_onnx(net, voc, tmp_path / 'p.onnx')
    assert set(layout) == set(P.onnx_inputs(cfg)) == set(P.ONNX_INPUTS) | {'looks'}
    assert layout['looks'] == ['batch', 'views', P.N_VIEW_LOOK]
    sess = ort.InferenceSession(str(tmp_path / 'p.onnx'), providers=['CPUExecutionProvider'])
    mel = torch.randn(1, cfg.n_mels, t_len)
    with torch.no_grad():
        v, au = P.ExportGraph(net, voc)(*base, mel, looks)
    feeds = {n: x.numpy() for n, x in zip(P.ONNX_INPUTS, base + (mel,))} | {'looks': looks.numpy()}
    out = sess.run(None, feeds)
    np.testing.assert_allclose(out[0], v.numpy(), atol=1e-4)
    np.testing.assert_allclose(out[1], au.numpy(), atol=1e-4)


def test_view_looks_name_the_segment_each_view_points_at():
    """Two coloured blocks on a grey table, the camera looking straight down from the TCP: the
    views over the red block get the red block's look, the view far off any block finds none."""
    cfg = P.PredictorConfig()
    w = h = 256
    K = intrinsics(w, h)
    T_tcp_cam = (np.array([0.0, 0.06, 0.05]), np.array([1.0, 0.0, 0.0, 0.0]))   # beside the fingers
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal(120, 4, (h, w, 3)), 0, 255).astype(np.uint8)       # table
    rgb[40:90, 150:200] = (200, 30, 30)                                          # red block
    rgb[170:220, 40:90] = (30, 60, 200)                                          # blue block
    times = np.array([0.0, 1.0])
    quat = np.array([[0, 0, 0, 1.0], [0, 0, 0, 1.0]])
    traj = tr.validate(tr.Trajectory(times, np.array([[0.0, 0.0, 0.3], [0.0, 0.0, 0.25]]), quat))
    f = tr.features(traj, 60)
    scene = P.scene_segments(rgb, f, K, T_tcp_cam, cfg)
    assert scene[1].max() == 2                                                   # two segments
    # views centred on the red block, the blue one, the bare table corner and off the image
    uv = np.array([[175.0, 65.0], [65.0, 195.0], [250.0, 250.0], [-5.0, 10.0]])
    looks = P.view_looks(scene, uv, (w, h))
    assert looks.shape == (4, P.N_VIEW_LOOK)
    assert looks[0, 0] == 1 and looks[1, 0] == 1 and looks[2, 0] == 0 and looks[3, 0] == 0
    assert looks[0, 1] < 0.01 and looks[2, 1] == 1                               # on the block; none
    red, blue = looks[0, 2:5], looks[1, 2:5]                                     # mean RGB
    assert red[0] > 0.7 and red[2] < 0.2 and blue[2] > 0.7 and blue[0] < 0.2


def test_velocity_skip_makes_the_first_step_the_networks_data_estimate(tmp_path):
    """With ``velocity_skip`` the velocity is output - x: one Euler step from t = 0 lands on the
    network output whatever the noise (a fresh net's zero output: exactly 0), and the ONNX graph
    carries the skip."""
    cfg = P.PredictorConfig(**TINY, velocity_skip=True)
    net, voc = P.VelocityNet(cfg).eval(), Vocoder(dim=16, blocks=1).eval()
    x, _, drop, traj, img, crops = inputs(cfg, 2, 41)
    t0 = torch.zeros(2)
    with torch.no_grad():
        torch.testing.assert_close(x + net(x, t0, drop, traj, img, crops), torch.zeros_like(x))
        for p in net.parameters():
            p.data += 0.05 * torch.randn_like(p)
        plain = P.VelocityNet(P.PredictorConfig(**TINY)).eval()
        plain.load_state_dict(net.state_dict())
        torch.testing.assert_close(net(x, t0, drop, traj, img, crops),
                                   plain(x, t0, drop, traj, img, crops) - x)
    assert P.PredictorConfig.from_dict(cfg.to_dict()).velocity_skip
    assert not P.PredictorConfig.from_dict({}).velocity_skip      # older bundles: no skip
    P.export_onnx(net, voc, tmp_path / 'p.onnx')
    sess = ort.InferenceSession(str(tmp_path / 'p.onnx'), providers=['CPUExecutionProvider'])
    base = (x, t0, drop, traj, img, crops)
    mel = torch.randn(1, cfg.n_mels, 41)
    with torch.no_grad():
        v, _ = P.ExportGraph(net, voc)(*base, mel)
    out = sess.run(None, {n: a.numpy() for n, a in zip(P.ONNX_INPUTS, base + (mel,))})
    np.testing.assert_allclose(out[0], v.numpy(), atol=1e-4)


def test_a_prior_model_starts_as_its_regression_net_and_exports_whole(tmp_path):
    """``prior``: a frozen regression net's mel is an input and the start of the output
    (CorrDiff-style). A fresh flow net (zero output layer) is then exactly the regression at t = 0;
    with the condition dropped it sees no prior; the ONNX graph holds both nets."""
    cfg = P.PredictorConfig(**TINY, velocity_skip=True, prior=True)
    reg = P.VelocityNet(cfg.plain()).eval()
    for p in reg.parameters():
        p.data += 0.05 * torch.randn_like(p)
    net, voc = P.VelocityNet(cfg).eval(), Vocoder(dim=16, blocks=1).eval()
    net.prior_net.load_state_dict(reg.state_dict())
    assert not any(p.requires_grad for p in net.prior_net.parameters())
    x, _, _, traj, img, crops = inputs(cfg, 2, 43)
    t0, keep, drop = torch.zeros(2), torch.zeros(2), torch.ones(2)
    with torch.no_grad():
        mu = P.regress(reg, traj, img, crops)
        torch.testing.assert_close(x + net(x, t0, keep, traj, img, crops), mu)
        torch.testing.assert_close(x + net(x, t0, drop, traj, img, crops), torch.zeros_like(x))
        for p in net.parameters():
            p.data += 0.05 * torch.randn_like(p)
        base = (x, torch.rand(2), torch.tensor([0.0, 1.0]), traj, img, crops)
        mel = torch.randn(1, cfg.n_mels, 43)
        v, _ = P.ExportGraph(net, voc)(*base, mel)
    P.export_onnx(net, voc, tmp_path / 'p.onnx')
    sess = ort.InferenceSession(str(tmp_path / 'p.onnx'), providers=['CPUExecutionProvider'])
    out = sess.run(None, {n: a.numpy() for n, a in zip(P.ONNX_INPUTS, base + (mel,))})
    np.testing.assert_allclose(out[0], v.numpy(), atol=1e-4)
