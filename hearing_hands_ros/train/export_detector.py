"""``hearing-hands export detector``: checkpoint -> ONNX bundle (``name.onnx`` + ``.json`` + ``.pt``).

    hearing-hands export detector --checkpoint runs/detector/last.pt --out models/sounding_object_detector.onnx

The JSON carries everything the node validates on load (sample rate, mel layout, window, image
size, slots) plus the training summary and, with ``--metrics eval.json``, the evaluation figures.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..models.detector import export_onnx, load_checkpoint
from ..paths import model_path

DEFAULT_MODEL = model_path('sounding_object_detector.onnx')


HELP = 'export a detector checkpoint to an ONNX bundle (+ metadata) for the node'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--checkpoint', required=True, help='training checkpoint (RUN/last.pt)')
    p.add_argument('--out', default=str(DEFAULT_MODEL), help='bundle path (.onnx)')
    p.add_argument('--metrics', default=None, help='evaluation JSON to embed as metrics_at_export')


def run(args) -> int:
    net, ck = load_checkpoint(args.checkpoint)
    extra = {'training': ck.get('training', {})}
    if args.metrics:
        extra['metrics_at_export'] = json.loads(Path(args.metrics).read_text())
    path = export_onnx(net, args.out, **extra)
    print(f'wrote {path} (+ .json, .pt), variant {net.cfg.variant}')
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
