"""``hearing-hands export look-match``: attach a trained look match to a detector bundle.

    hearing-hands export look-match --checkpoint runs/look_match/best.pt \
        --detector models/sounding_object_detector.onnx

Writes the ``look_match`` bundle beside the detector (``<detector>_look.onnx`` + ``.json`` +
``.pt``) and names it, with the weight chosen on validation, in the detector's metadata
(``look_match: {bundle, weight}``); everything else in that metadata stays as it was. The node and
``evaluate detector`` load it with the detector.
"""
from __future__ import annotations

import argparse
import json

from ..models.look_match import export_onnx, load_checkpoint
from ..paths import model_path

HELP = 'attach a trained look match to a detector bundle (ONNX + metadata)'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--checkpoint', required=True, help='look-match checkpoint (RUN/best.pt)')
    p.add_argument('--detector', default=str(model_path('sounding_object_detector.onnx')),
                   help='detector bundle (.onnx) to attach it to')
    p.add_argument('--weight', type=float, default=None,
                   help='look-match weight (default: the one chosen on validation)')


def run(args) -> int:
    from ..runtime import bundle_paths, read_metadata
    onnx_path, meta_path = bundle_paths(args.detector)
    meta = read_metadata(onnx_path)
    net, ck = load_checkpoint(args.checkpoint)
    weight = float(args.weight if args.weight is not None else ck.get('weight', 1.0))
    look_path = onnx_path.with_name(onnx_path.stem + '_look.onnx')
    export_onnx(net, look_path, validation=ck.get('validation', {}))
    meta['look_match'] = {'bundle': look_path.name, 'weight': weight}
    meta_path.write_text(json.dumps(meta, indent=2) + '\n')
    print(f'wrote {look_path} (+ .json, .pt) and named it in {meta_path} (weight {weight:g})')
    return 0
