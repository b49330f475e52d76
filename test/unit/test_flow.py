"""Rectified flow: straight paths, logit-normal times, CFG, Euler sampling, reflow to one step."""
import math

import pytest
import torch
from torch import nn

from hearing_hands_ros.models import flow

POINTS = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])     # two-point data set: the blur test


def exact_velocity(x, t, drop):
    """Exact rectified-flow velocity for data uniform on POINTS: (E[x1 | x_t] - x) / (1 - t)."""
    t = t[:, None]
    d2 = ((x[:, None, :] - t[:, :, None] * POINTS[None]) ** 2).sum(-1)          # (B, 2)
    w = torch.softmax(-d2 / (2 * (1 - t).clamp_min(1e-3) ** 2), dim=1)
    return (w @ POINTS - x) / (1 - t).clamp_min(1e-3)


def test_interpolation_and_target():
    x0, x1 = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    assert torch.equal(flow.interpolate(x0, x1, torch.zeros(4)), x0)
    assert torch.allclose(flow.interpolate(x0, x1, torch.ones(4)), x1)
    xt = flow.interpolate(x0, x1, torch.full((4,), 0.25))
    assert torch.allclose(xt, 0.75 * x0 + 0.25 * x1)
    assert torch.allclose(flow.velocity_target(x0, x1), x1 - x0)


def test_logit_normal_times_and_dropout():
    g = torch.Generator().manual_seed(0)
    t = flow.sample_t(20000, generator=g)
    assert 0 < t.min() and t.max() < 1
    assert abs(t.median().item() - 0.5) < 0.02
    logit = torch.log(t / (1 - t))
    assert abs(logit.std().item() - 1.0) < 0.03
    d = flow.condition_dropout(20000, 0.1, generator=g)
    assert set(d.unique().tolist()) <= {0.0, 1.0} and abs(d.mean().item() - 0.1) < 0.01


def test_shifted_times_with_a_uniform_share_train_the_noise_end():
    g = torch.Generator().manual_seed(0)
    base = flow.sample_t(20000, generator=g)
    t = flow.sample_t(20000, mean=-0.8, uniform=0.25, generator=g)
    assert 0 <= t.min() and t.max() <= 1
    # P(t < 0.1): 1.4 % for logit-normal(0, 1); 0.75 * 8.1 % + 0.25 * 10 % = 8.6 % here
    assert (base < 0.1).float().mean() < 0.02
    assert abs((t < 0.1).float().mean().item() - 0.086) < 0.008
    assert (t > 0.9).float().mean() > 0.02           # the uniform share keeps the data end (2.6 %)


def test_guidance_mixes_conditional_and_unconditional():
    calls = []

    def v(x, t, drop):
        calls.append(len(x))
        return torch.where(drop[:, None] > 0, torch.zeros_like(x), torch.ones_like(x))
    x, t = torch.zeros(3, 2), torch.zeros(3)
    assert torch.allclose(flow.guided_velocity(v, x, t, 4.5), torch.full((3, 2), 4.5))
    assert torch.allclose(flow.guided_velocity(v, x, t, 1.0), torch.ones(3, 2))
    assert calls == [6, 3]
    assert flow.network_evaluations(25, 4.5) == 50 and flow.network_evaluations(2, 1.0) == 2


def test_guidance_rescale_keeps_the_conditional_spread():
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(3, 4, 6, generator=g), torch.tensor([0.0, 0.25, 0.5])
    v_c, v_u = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    plain = flow.combine_guidance(v_c, v_u, x, t, 4.5)
    assert torch.allclose(plain, v_u + 4.5 * (v_c - v_u))
    assert torch.allclose(flow.combine_guidance(v_c, v_u, x, t, 4.5, rescale=0.0), plain)
    assert torch.allclose(flow.combine_guidance(v_c, v_u, x, t, 1.0, rescale=1.0), v_c)

    def estimate(v):                                   # data estimate x + (1 - t) v, (B, N)
        return (x + (1 - t)[:, None, None] * v).reshape(3, -1)
    full = flow.combine_guidance(v_c, v_u, x, t, 4.5, rescale=1.0)
    # per sample: the guided estimate's spread is the conditional one's, its direction the CFG one
    assert torch.allclose(estimate(full).std(1, unbiased=False), estimate(v_c).std(1, unbiased=False),
                          rtol=1e-4)
    assert torch.allclose(torch.cosine_similarity(estimate(full), estimate(plain), dim=1),
                          torch.ones(3), atol=1e-5)
    half = flow.combine_guidance(v_c, v_u, x, t, 4.5, rescale=0.5)
    assert torch.allclose(estimate(half), 0.5 * (estimate(full) + estimate(plain)), atol=1e-5)
    # the planner runs it on numpy arrays
    as_np = flow.combine_guidance(v_c.numpy(), v_u.numpy(), x.numpy(), t.numpy(), 4.5, 1.0)
    assert torch.allclose(torch.from_numpy(as_np), full, atol=1e-5)


def test_euler_with_exact_field_reaches_the_data_but_one_step_blurs():
    x0 = torch.randn(512, 2, generator=torch.Generator().manual_seed(1))
    many = flow.euler_sample(exact_velocity, x0, steps=50)
    nearest = torch.cdist(many, POINTS).min(1).values
    assert nearest.mean() < 0.15
    one = flow.euler_sample(exact_velocity, x0, steps=1)           # = E[x1] = the blur
    assert torch.cdist(one, POINTS).min(1).values.mean() > 1.5
    with pytest.raises(ValueError):
        flow.euler_sample(exact_velocity, x0, steps=0)


def test_reflow_student_is_sharp_in_one_step():
    torch.manual_seed(0)
    x0, x1 = flow.reflow_pairs(exact_velocity, torch.randn(2048, 2), steps=50, guidance=1.0)
    net = nn.Sequential(nn.Linear(3, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2))
    student = lambda x, t, drop: net(torch.cat([x, t[:, None]], 1))  # noqa: E731
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(800):
        i = torch.randint(0, len(x0), (256,))
        loss = flow.flow_loss(student, x1[i], x0=x0[i], p_drop=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test0 = torch.randn(512, 2)
    one = flow.euler_sample(student, test0, steps=1)
    blur = flow.euler_sample(exact_velocity, test0, steps=1)
    d_one, d_blur = (torch.cdist(s, POINTS).min(1).values.median() for s in (one, blur))
    assert d_one < 0.6 and d_blur > 1.5                                # sharp, not the blur
    assert flow.straightness(student, test0) < flow.straightness(exact_velocity, test0)


def test_masked_loss_ignores_padding():
    x1 = torch.zeros(2, 1, 4)
    mask = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]]).expand(2, 1, 4)
    v = lambda x, t, d: torch.cat([-torch.ones_like(x[..., :2]), torch.full_like(x[..., 2:], 1e6)], -1)  # noqa: E731
    loss = flow.flow_loss(v, x1, x0=torch.ones_like(x1), mask=mask)
    assert math.isfinite(loss.item()) and loss.item() < 1e-10
