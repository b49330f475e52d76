"""Rectified flow (Liu et al. 2023; Esser et al. 2024 for logit-normal times), model-agnostic.

Convention: ``t = 0`` is Gaussian noise ``x0``, ``t = 1`` is data ``x1``; the straight path is
``x_t = (1 - t) x0 + t x1`` and the network predicts its constant velocity ``x1 - x0``.
Sampling integrates ``dx/dt = v(x, t)`` from 0 to 1 with Euler steps. Classifier-free guidance
(Ho & Salimans 2022) mixes conditional and unconditional velocities,
``v = v_u + g (v_c - v_u)``; the network learns both by seeing its condition dropped at random.
Guidance rescale (Lin et al. 2024, *Common diffusion noise schedules and sample steps are
flawed*) scales the guided data estimate ``x + (1 - t) v`` back to the spread of the conditional
one, per sample: strong guidance then sharpens *which* sound without making it louder.

Few-step sampling: :func:`reflow_pairs` draws couplings ``(x0, x1_hat)`` from a teacher sampled
with many guided steps; training a student on the straight lines between those pairs
(:func:`flow_loss` with ``x0`` given) both straightens its paths (reflow) and bakes the guidance in
(distillation), so 1-4 unguided steps (1 network evaluation each) replace 25 guided steps (50).

A *velocity function* here is ``fn(x, t, drop) -> v`` with ``x`` ``(B, ...)``, ``t`` ``(B,)`` in
[0, 1] and ``drop`` ``(B,)`` float (1 = condition dropped); the condition is bound inside ``fn``.
"""
from __future__ import annotations

from typing import Callable

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Point on the straight path at time ``t`` (B,): ``(1 - t) x0 + t x1``."""
    t = t.reshape(-1, *([1] * (x1.dim() - 1)))
    return (1 - t) * x0 + t * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The straight path's velocity ``x1 - x0``."""
    return x1 - x0


def sample_t(n: int, mean: float = 0.0, std: float = 1.0, uniform: float = 0.0, generator=None,
             device=None) -> torch.Tensor:
    """Flow times (B,): logit-normal ``sigmoid(N(mean, std))`` (SD3's choice: more weight on the
    middle of the path, where the velocity is hardest to predict), with a share ``uniform`` of
    the batch drawn uniformly on [0, 1] instead so both ends keep being trained. A negative
    ``mean`` weights the noise end, where a sampler's first steps decide *where* the sound
    events go."""
    t = torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))
    if uniform > 0:
        u = torch.rand(n, generator=generator, device=device)
        pick = torch.rand(n, generator=generator, device=device) < uniform
        t = torch.where(pick, u, t)
    return t


def condition_dropout(n: int, p: float, generator=None, device=None) -> torch.Tensor:
    """(B,) float mask, 1 with probability ``p``: drop the condition for classifier-free guidance."""
    return (torch.rand(n, generator=generator, device=device) < p).float()


def flow_loss(velocity: VelocityFn, x1: torch.Tensor, x0: torch.Tensor | None = None,
              p_drop: float = 0.1, mask: torch.Tensor | None = None,
              t: torch.Tensor | None = None, t_mean: float = 0.0, t_std: float = 1.0,
              t_uniform: float = 0.0) -> torch.Tensor:
    """Rectified-flow loss ``|v(x_t, t) - (x1 - x0)|^2``.

    ``x0`` defaults to fresh noise (training) or is the teacher's coupling (reflow).
    ``mask`` (B, 1, T) or broadcastable weights valid frames (padding excluded).
    """
    b = x1.shape[0]
    x0 = torch.randn_like(x1) if x0 is None else x0
    t = sample_t(b, t_mean, t_std, t_uniform, device=x1.device) if t is None else t
    drop = condition_dropout(b, p_drop, device=x1.device)
    err = (velocity(interpolate(x0, x1, t), t, drop) - velocity_target(x0, x1)) ** 2
    if mask is None:
        return err.mean()
    mask = mask.expand_as(err)
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


RESCALE_RANGE = (0.0, 1.0)          # guidance rescale: 0 plain CFG .. 1 the conditional spread


def combine_guidance(v_c, v_u, x, t, guidance: float, rescale: float = 0.0):
    """CFG velocity from the conditional and unconditional ones, ``v_u + g (v_c - v_u)``; with
    ``rescale`` r in (0, 1] the guided data estimate ``d_g = x + (1 - t) v`` becomes
    ``r d_g std(d_c) / std(d_g) + (1 - r) d_g`` (std per sample; ``d_c`` the conditional
    estimate). Works on torch tensors and numpy arrays alike (the planner's ONNX loop); ``t`` (B,)."""
    v = v_u + guidance * (v_c - v_u)
    if rescale <= 0 or guidance == 1.0:
        return v
    b = x.shape[0]
    s = (1 - t).reshape(b, *([1] * (x.ndim - 1)))              # (B, 1, ...) time left
    d_c, d_g = (x + s * v_c).reshape(b, -1), (x + s * v).reshape(b, -1)

    def std(a):                                                 # (B,)
        return (((a - a.mean(1)[:, None]) ** 2).mean(1)) ** 0.5
    k = rescale * std(d_c) / (std(d_g) + 1e-8) + (1 - rescale)
    d = d_g.reshape(x.shape) * k.reshape(s.shape)
    return (d - x) / s


def guided_velocity(velocity: VelocityFn, x: torch.Tensor, t: torch.Tensor,
                    guidance: float, rescale: float = 0.0) -> torch.Tensor:
    """CFG velocity (:func:`combine_guidance`); one batched network call of size 2B when
    ``guidance != 1``, else B."""
    b = x.shape[0]
    if guidance == 1.0:
        return velocity(x, t, torch.zeros(b, device=x.device))
    drop = torch.cat([torch.zeros(b, device=x.device), torch.ones(b, device=x.device)])
    v = velocity(torch.cat([x, x]), torch.cat([t, t]), drop)
    return combine_guidance(v[:b], v[b:], x, t, guidance, rescale)


def time_grid(steps: int) -> list[float]:
    """Uniform Euler grid ``[0, 1/steps, ..., 1]``."""
    return [i / steps for i in range(steps + 1)]


def network_evaluations(steps: int, guidance: float) -> int:
    """Network evaluations per sample: one per step, two with guidance."""
    return steps * (1 if guidance == 1.0 else 2)


@torch.no_grad()
def euler_sample(velocity: VelocityFn, x0: torch.Tensor, steps: int = 2,
                 guidance: float = 1.0, rescale: float = 0.0) -> torch.Tensor:
    """Integrate from noise ``x0`` (t=0) to data (t=1) with ``steps`` Euler steps."""
    if steps < 1:
        raise ValueError('steps must be >= 1')
    x = x0
    ts = time_grid(steps)
    for t_a, t_b in zip(ts[:-1], ts[1:]):
        t = torch.full((x.shape[0],), t_a, device=x.device, dtype=x.dtype)
        x = x + (t_b - t_a) * guided_velocity(velocity, x, t, guidance, rescale)
    return x


@torch.no_grad()
def reflow_pairs(velocity: VelocityFn, x0: torch.Tensor, steps: int = 25,
                 guidance: float = 4.5, rescale: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A teacher's coupling: noise ``x0`` and the sample ``x1_hat`` it integrates to."""
    return x0, euler_sample(velocity, x0, steps, guidance, rescale)


def straightness(velocity: VelocityFn, x0: torch.Tensor, steps: int = 8) -> float:
    """Mean ``|v(x_t, t) - (x1 - x0)|^2 / |x1 - x0|^2`` along an Euler path (0 = straight)."""
    with torch.no_grad():
        x, ts, vs = x0, time_grid(steps), []
        for t_a, t_b in zip(ts[:-1], ts[1:]):
            t = torch.full((x.shape[0],), t_a, dtype=x.dtype)
            v = velocity(x, t, torch.zeros(x.shape[0]))
            vs.append(v)
            x = x + (t_b - t_a) * v
        chord = x - x0
        return float(torch.stack([((v - chord) ** 2).mean() for v in vs]).mean()
                     / (chord ** 2).mean().clamp_min(1e-12))
