r"""``hearing-hands evaluate materials``: are materials separable from the audio alone?

    hearing-hands evaluate materials --train data/sim/train --test data/sim/test \
        --json out/eval_materials.json --figure out/materials_confusion.png

A :class:`~hearing_hands_ros.eval.sound_classifier.SoundClassifier` is trained on the clean
contact sounds (one clip per ground-truth event, see ``clips_from_episode``) of the training
episodes and tested on held-out episodes (other seeds: other layouts, sizes, appearances).
Reported: accuracy, balanced accuracy, per-class accuracy, confusion matrix (rows = truth),
chance level (1 / classes), majority baseline (the most frequent training class always), the
nearest-class-mean baseline, and clip counts. ``--kind action`` does the same for action types.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from .sound_classifier import SoundClassifier, clips_from_episode

HELP = 'check that materials (or actions) are separable from the audio alone'

#: Only the audio is read from the bags (images, poses and paths are skipped).
_SKIP = '/__not_read__'


def load_clips(dirs, kind: str = 'material', **kw) -> tuple[np.ndarray, np.ndarray, dict]:
    """Clips of every episode under `dirs` (bag folders or parents) -> (X, y, info) with
    info = dict(episodes=[names], counts={summed clip counts}, episode_of=(n,) indices,
    kinds=(n,) contact kinds)."""
    from ..data.bags import TopicNames, list_episodes, read_episode
    topics = replace(TopicNames(), image=_SKIP, camera_info=_SKIP, pose=_SKIP,
                     joint_states=_SKIP, path=_SKIP)
    Xs, ys, owner, names, kinds, counts = [], [], [], [], [], Counter()
    for bag in list_episodes(dirs):
        ep = read_episode(bag, topics)
        if not ep.truth:
            continue
        X, y, meta = clips_from_episode(ep, kind=kind, **kw)
        Xs.append(X)
        ys.append(y)
        owner.append(np.full(len(y), len(names)))
        kinds.append(meta['kinds'])
        names.append(bag.name)
        counts.update(meta['counts'])
    if not names:
        raise FileNotFoundError(f'no episodes with ground truth under {list(map(str, dirs))}')
    return (np.concatenate(Xs), np.concatenate(ys),
            dict(episodes=names, counts=dict(counts), episode_of=np.concatenate(owner),
                 kinds=np.concatenate(kinds)))


def confusion(y_true, y_pred, classes) -> np.ndarray:
    """Counts (K, K): row = true class, column = predicted class."""
    idx = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(y_true, y_pred):
        if t in idx and p in idx:
            m[idx[t], idx[p]] += 1
    return m


def evaluate_material_separability(train_dirs, test_dirs, kind: str = 'material',
                                   method: str = 'logreg', model_out=None, **clip_kw) -> dict:
    """Train on `train_dirs`' episodes, test on `test_dirs`' -> metrics dict (see module doc).

    `model_out`: also save the trained classifier there (.npz / .json); `clip_kw`: options of
    ``clips_from_episode`` (window, pre, guard, min_snr_db, include_level, spectrum)."""
    Xtr, ytr, itr = load_clips(train_dirs, kind, **clip_kw)
    Xte, yte, ite = load_clips(test_dirs, kind, **clip_kw)
    if len(ytr) == 0 or len(yte) == 0:
        raise ValueError(f'not enough clips: {len(ytr)} for training, {len(yte)} for testing')
    clf = SoundClassifier(method=method, **{k: v for k, v in clip_kw.items()
                                            if k in ('window', 'pre', 'include_level', 'spectrum')})
    clf.fit(Xtr, ytr)
    if model_out:
        clf.save(model_out)
    pred = clf.predict(Xte)
    classes = sorted(set(ytr) | set(yte))
    cm = confusion(yte, pred, classes)
    per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None)
                 for i, c in enumerate(classes)}
    majority = Counter(ytr).most_common(1)[0][0]
    baseline = {}
    if method != 'ncm':
        ncm = SoundClassifier(method='ncm').fit(Xtr, ytr)
        baseline['nearest_class_mean'] = float(np.mean(ncm.predict(Xte) == yte))
    baseline['majority'] = float(np.mean(yte == majority))
    train_acc = float(np.mean(clf.predict(Xtr) == ytr))
    present = [v for v in per_class.values() if v is not None]
    return dict(
        kind=kind, method=method, accuracy=float(np.mean(pred == yte)),
        balanced_accuracy=float(np.mean(present)), train_accuracy=train_acc,
        chance=1.0 / len(set(ytr)), majority_class=majority, majority_baseline=baseline['majority'],
        baselines=baseline, classes=classes, per_class_accuracy=per_class,
        confusion=cm.tolist(),
        counts=dict(train_clips=dict(Counter(ytr.tolist())), test_clips=dict(Counter(yte.tolist())),
                    train_events=itr['counts'], test_events=ite['counts'],
                    train_episodes=len(itr['episodes']), test_episodes=len(ite['episodes'])),
        n_features=int(Xtr.shape[1]), features=dict(spectrum=clf.spectrum,
                                                    include_level=clf.include_level))


def plot_confusion(result: dict, path) -> Path:
    """Row-normalized confusion matrix with counts, accuracy and chance in the title (PNG)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cm = np.asarray(result['confusion'], float)
    classes = result['classes']
    rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k), dpi=120)
    ax.imshow(rows, cmap='Blues', vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, f'{int(cm[i, j])}', ha='center', va='center', fontsize=8,
                        color='white' if rows[i, j] > 0.5 else 'black')
    ax.set_xticks(range(k), classes, rotation=45, ha='right')
    ax.set_yticks(range(k), [f'{c} ({int(n)})' for c, n in zip(classes, cm.sum(1))])
    ax.set_xlabel('predicted')
    ax.set_ylabel('true (test clips)')
    ax.set_title(f'{result["kind"]} from audio, held-out episodes\n'
                 f'accuracy {result["accuracy"]:.2f} (balanced {result["balanced_accuracy"]:.2f}), '
                 f'chance {result["chance"]:.2f}', fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--train', nargs='+', required=True, help='training episodes (bags or folders)')
    p.add_argument('--test', nargs='+', required=True,
                   help='held-out episodes (other seeds than the training ones)')
    p.add_argument('--json', required=True, help='output JSON with the metrics')
    p.add_argument('--figure', default=None, help='confusion-matrix PNG (default: JSON name .png)')
    p.add_argument('--kind', choices=['material', 'action'], default='material',
                   help='what to classify (default: material)')
    p.add_argument('--method', choices=['logreg', 'ncm'], default='logreg',
                   help='logistic regression, or nearest class mean')
    p.add_argument('--save-model', default=None,
                   help='also save the trained classifier (.npz or .json)')
    p.add_argument('--spectrum', action=argparse.BooleanOptionalAction, default=None,
                   help='add the coarse spectral shape to the features (default: only for '
                        'actions; it depends more on object shape and size than on material)')
    p.add_argument('--level', action=argparse.BooleanOptionalAction, default=None,
                   help='add the absolute peak level (default: only for actions: a hit is '
                        'louder than a tap; materials must not be guessed from loudness)')


def run(args) -> int:
    from hearing_hands_ros.errors import UserError
    action = args.kind == 'action'
    try:
        result = evaluate_material_separability(
            args.train, args.test, kind=args.kind, method=args.method, model_out=args.save_model,
            spectrum=action if args.spectrum is None else args.spectrum,
            include_level=action if args.level is None else args.level)
    except (ValueError, FileNotFoundError) as e:     # no labelled episodes, too few clips
        raise UserError(f'cannot evaluate on these episodes: {e}') from None
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = Path(args.figure) if args.figure else out.with_suffix('.png')
    result['figure'] = str(plot_confusion(result, figure))
    out.write_text(json.dumps(result, indent=2))
    c = result['counts']
    print(f'{result["kind"]}: accuracy {result["accuracy"]:.3f} '
          f'(balanced {result["balanced_accuracy"]:.3f}, chance {result["chance"]:.3f}, '
          f'majority {result["majority_baseline"]:.3f}) on {sum(c["test_clips"].values())} clips '
          f'of {c["test_episodes"]} held-out episodes; trained on '
          f'{sum(c["train_clips"].values())} clips of {c["train_episodes"]}')
    for cls, acc in result['per_class_accuracy'].items():
        print(f'  {cls:<10} {"-" if acc is None else f"{acc:.2f}"}')
    print(f'wrote {out} and {figure}')
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='hearing-hands evaluate materials', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
