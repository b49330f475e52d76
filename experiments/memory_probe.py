r"""What limits the object sound memory: telling the objects apart, or their sounds?

Backs the detector card's memory section (``docs/detector.md``): on the alternating validation
episodes, how often the memory decides a gap strike and how often it is right then, and how well
the nearest remembered sound names the struck object when the identities of the remembered
touches are given (ground truth: the object under each lone touch, the pair at each gap strike).

* ``breakdown``: per event kind (gap strike / lone strike) and per decider of the top candidate
  (``memory``, ``look``, ``slots``), events and share correct, for the shipped detector with its
  memory (``evaluate detector``'s ``model_memory``);
* ``oracle_identity``: each episode in time order; a lone strike remembers its sound under its
  true object, a gap strike is answered by the nearest remembered sound (cosine of the centred
  fine log-mel, as the memory compares) among the two objects of the pair, once both are
  remembered.

::

    python experiments/memory_probe.py --data data/sim/det_val_alt --cache out/det_val_alt_cache.npz
"""
from __future__ import annotations

import argparse
import collections

import numpy as np

from hearing_hands_ros.models.sound_memory import _unit


def breakdown(sel: dict, cands: list[list[dict]], correct: np.ndarray) -> dict:
    """{(event kind, decided_by): [events, correct]} of one method's answers."""
    out: dict = collections.defaultdict(lambda: [0, 0])
    for i, c in enumerate(cands):
        kind = 'gap strike' if sel['scenario'][i] == 'ambiguous' else 'lone strike'
        key = (kind, c[0].get('decided_by', 'slots') if c else 'none')
        out[key][0] += 1
        out[key][1] += int(correct[i])
    return dict(out)


def oracle_identity(sel: dict) -> tuple[int, int]:
    """(right, asked): gap strikes named by the nearest remembered sound, identities given."""
    sounds = np.asarray(sel['look_sound'], np.float32).reshape(len(sel['target']), -1)
    right = asked = 0
    for e in np.unique(sel['episode']):
        memory: dict[int, list] = {}
        for i in np.nonzero(sel['episode'] == e)[0]:
            target = int(sel['target'][i])
            if sel['scenario'][i] != 'ambiguous':
                memory.setdefault(target, []).append(_unit(sounds[i]))
                continue
            pair = {int(x) for x in np.unique(sel['look_labels'][i]) if 0 < x < 255}
            known = [o for o in memory if o in pair]
            if len(known) < 2:
                continue
            s = _unit(sounds[i])
            best = max(known, key=lambda o: max(float(v @ s) for v in memory[o]))
            right += int(best == target)
            asked += 1
    return right, asked


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', nargs='+', required=True, help='alternating episodes (rosbag2)')
    p.add_argument('--cache', default=None, help='.npz event cache')
    args = p.parse_args(argv)
    from hearing_hands_ros import runtime
    from hearing_hands_ros.data.detector_dataset import build_dataset
    from hearing_hands_ros.eval.detector import evaluate
    from hearing_hands_ros.models.detector import DetectorConfig
    from hearing_hands_ros.models.look_match import ContactRule, load_look_match
    from hearing_hands_ros.models.sound_memory import MemoryConfig
    from hearing_hands_ros.paths import model_path
    b = runtime.load_bundle(model_path('sounding_object_detector.onnx'), 'detector')
    look, weight = load_look_match(b)
    data = build_dataset(args.data, DetectorConfig.from_dict(b.meta['config']), cache=args.cache)
    metrics, extra = evaluate(data, {'model': b}, look=look, look_weight=weight,
                              contact=ContactRule.from_meta(b.meta['look_match']),
                              memory_cfg=MemoryConfig())
    sel = extra['sel']
    print('event kind    decided by   events  correct')
    for (kind, how), (n, ok) in sorted(breakdown(sel, extra['cands']['model_memory'],
                                                 metrics['model_memory']['correct']).items()):
        print(f'{kind:13s} {how:10s} {n:7d} {ok / n:8.3f}')
    right, asked = oracle_identity(sel)
    print(f'identities given: the nearest remembered sound names {right} of {asked} gap strikes')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
