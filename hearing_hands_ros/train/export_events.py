"""``hearing-hands export events``: a contact-event training run -> the bundle the planner loads.

    hearing-hands export events --run runs/events --out models/contact_events

Writes ``NAME.onnx`` (the network, normalisation inside), ``NAME.json`` (metadata the planner
validates: input layout, materials, frame rate, decoding settings, training summary, metrics)
and ``NAME.pt`` (the checkpoint: backend ``torch``). The planner uses a ``contact_events``
bundle beside its predictor bundle, or the one it is given.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.errors import UserError
from hearing_hands_ros.models import events as E
from hearing_hands_ros.runtime import save_metadata

HELP = 'export a trained contact-event model to ONNX + metadata'
KIND = 'events'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--run', type=Path, required=True, help='training run folder (or its events.pt)')
    p.add_argument('--out', type=Path, default=Path('models/contact_events'),
                   help='bundle path without suffix')
    p.add_argument('--metrics', type=Path, default=None, help='evaluation JSON to embed')


def metadata(net: E.EventNet, metrics: dict | None = None) -> dict:
    """The bundle's kind-specific JSON fields (``runtime.check_metadata`` kind ``events``)."""
    return dict(frame_rate=net.cfg.frame_rate, feature_layout=list(tr.FEATURE_LAYOUT),
                n_inputs=E.n_inputs(net.cfg), materials=list(E.MATERIALS), config=net.cfg.to_dict(),
                training=getattr(net, 'summary', {}), metrics=metrics or {})


def export(run: Path, out: Path, metrics: dict | None = None) -> Path:
    import shutil
    pt = run / 'events.pt' if run.is_dir() else run
    if not pt.is_file():
        raise UserError(f'training run checkpoint {pt} not found')
    net = E.load_checkpoint(pt)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx = out.with_suffix('.onnx')
    E.export_onnx(net, onnx)
    save_metadata(out, KIND, {'inputs': ['b', 't', E.n_inputs(net.cfg)]}, list(E.ONNX_OUTPUTS),
                  **metadata(net, metrics))
    if pt.resolve() != out.with_suffix('.pt').resolve():
        shutil.copyfile(pt, out.with_suffix('.pt'))
    return onnx


def tiny_events_bundle(out: Path, seed: int = 0) -> Path:
    """An untrained, tiny contact-event bundle (random weights) for tests and smoke runs."""
    import tempfile

    import torch
    torch.manual_seed(seed)
    net = E.EventNet(E.EventConfig(width=8, dilations=(1, 2)))
    net.summary = {'targets': 'none (untrained)'}
    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / 'events.pt'
        E.save_checkpoint(pt, net, net.summary)
        return export(pt, Path(out))


def run(args) -> int:
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    onnx = export(args.run, args.out, metrics)
    print(f'wrote {onnx} (+ .json, .pt)')
    return 0
