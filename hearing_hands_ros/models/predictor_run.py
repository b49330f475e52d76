"""A predictor training run's checkpoint file, ``predictor.pt``: its config, summary and nets.

``train predictor`` writes it (every trained net: vocoder, teacher, student, regression, judge),
``export predictor`` keeps a float16 copy beside the bundle (``NAME.pt``: what the torch backend
and the evaluation need), and the planner's torch backend and ``evaluate predictor`` read it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from hearing_hands_ros.models.judge import AudioJudge
from hearing_hands_ros.models.predictor import PredictorConfig, VelocityNet
from hearing_hands_ros.models.vocoder import Vocoder


def save_run(path: Path, cfg: PredictorConfig, nets: dict, summary: dict, half: bool = False) -> None:
    """``predictor.pt``: config, summary and state dicts of every trained net (fp16 optional)."""
    states = {}
    for name, module in nets.items():
        if module is None:
            continue
        sd = module.state_dict()
        states[name] = {k: (v.half() if half and v.is_floating_point() else v) for k, v in sd.items()}
    extra = {name: getattr(m, 'config', None) for name, m in nets.items() if m is not None}
    torch.save(dict(version=1, config=cfg.to_dict(), states=states, module_configs=extra,
                    summary=summary), path)


def load_run(path, device='cpu') -> dict:
    """Inverse of :func:`save_run`: dict with ``cfg`` and the nets present (eval mode, fp32)."""
    ck = torch.load(path, map_location=device, weights_only=False)
    cfg = PredictorConfig.from_dict(ck['config'])
    out = {'cfg': cfg, 'summary': ck.get('summary', {})}
    makers = {'vocoder': lambda c: Vocoder(**c), 'teacher': lambda c: VelocityNet(cfg),
              'student': lambda c: VelocityNet(cfg), 'regression': lambda c: VelocityNet(cfg.plain()),
              'judge': lambda c: AudioJudge(**c)}
    for name, sd in ck['states'].items():
        module = makers[name](ck['module_configs'].get(name) or {})
        module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
        out[name] = module.to(device).eval()
    return out
