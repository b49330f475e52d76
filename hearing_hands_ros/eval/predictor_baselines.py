"""The predictor evaluation's baselines: nearest-neighbour retrieval, and the torch nets of a run.

``retrieval`` answers with the recorded audio of the training window whose trajectory features are
nearest; ``model_25step_cfg`` samples the run's flow teacher (Euler steps, classifier-free
guidance); ``regression`` is the same network trained by direct regression. Each runs when the
files allow it (``missing_nets``): the run's nets for the last two, training bags for retrieval.
"""
from __future__ import annotations

import numpy as np
import torch

from hearing_hands_ros.models import flow
from hearing_hands_ros.models.predictor import bind, regression_predict


def retrieval_features(data, i: int, frames: int | None = None) -> np.ndarray:
    """Trajectory descriptor for nearest-neighbour retrieval: standardised-free summary of the
    features at 10 frames/s over the first 8 s (padded with the last row)."""
    t = data.traj[i, :frames or int(data.valid[i])]
    t = t[::10]
    out = np.zeros((81, t.shape[1]), np.float32)
    out[:len(t)] = t
    out[len(t):] = t[-1]
    return out.reshape(-1)


def retrieve(train, test, test_idx) -> list[int]:
    """Index of the nearest training window (L2 on standardised descriptors) per test window."""
    a = np.stack([retrieval_features(train, i) for i in range(len(train))])
    mu, sd = a.mean(0), a.std(0) + 1e-3
    a = (a - mu) / sd
    out = []
    for i in test_idx:
        q = (retrieval_features(test, i) - mu) / sd
        out.append(int(np.argmin(((a - q) ** 2).sum(1))))
    return out


#: the run checkpoint's nets each baseline needs
NEEDS = {'model_25step_cfg': ('teacher', 'vocoder'), 'regression': ('regression', 'vocoder')}
NET_NAMES = {'teacher': 'flow teacher', 'regression': 'regression net', 'vocoder': 'vocoder'}


def missing_nets(nets: dict, run_path, needs=NEEDS) -> dict[str, str]:
    """Why each entry of ``needs`` cannot run with the nets of ``run_path`` (none: all can)."""
    out = {}
    for method, names in needs.items():
        lacks = [NET_NAMES[k] for k in names if nets.get(k) is None]
        if lacks:
            out[method] = (f'the run checkpoint {run_path} holds no {" or ".join(lacks)} (pass '
                           '--run RUN/predictor.pt from a training run, or export with '
                           '--with-baselines)')
    return out


@torch.no_grad()
def sample_torch(net, vocoder, batch, steps: int, guidance: float, seed: int) -> np.ndarray:
    """Audio (B, N) from a torch velocity net (flow) with Euler steps and CFG."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch['mel'].shape, generator=g)
    vel = bind(net, batch['traj'], batch['image'], batch['crops'], batch.get('looks'))
    x1 = flow.euler_sample(vel, x0, steps, guidance)
    return vocoder(net.denormalize_mel(x1)).numpy()


@torch.no_grad()
def regress_torch(net, vocoder, batch) -> np.ndarray:
    """Audio (B, N) of the regression baseline: one call of the net, through the vocoder."""
    return vocoder(net.denormalize_mel(regression_predict(net, batch))).numpy()
