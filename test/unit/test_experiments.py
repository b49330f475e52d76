"""The scripts of ``experiments/`` import without side effects and their cores run on tiny
synthetic inputs built here: a few made-up events (two objects told apart by look and sound) and
a few made-up predictor windows. Seconds, not the figures: shapes, counts and accuracies."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / 'experiments').glob('*.py'))


def load(name: str):
    """An ``experiments/`` script as a module (importing it must do no work)."""
    path = ROOT / 'experiments' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'experiments_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda p: p.name)
def test_script_has_a_docstring_and_a_help(script, capsys):
    module = load(script.stem)
    assert module.__doc__ and 'docs/' in module.__doc__        # names the card it backs
    with pytest.raises(SystemExit) as exc:
        module.main(['--help'])
    assert exc.value.code == 0 and 'usage:' in capsys.readouterr().out


def test_every_script_is_in_the_index():
    index = (ROOT / 'experiments' / 'README.md').read_text()
    for script in SCRIPTS:
        assert f'experiments/{script.name}' in index


# --- look ablation --------------------------------------------------------------------------
TABLE, GRIPPER = (170, 150, 120), (60, 60, 60)
STRIPES = ((200, 40, 40), (120, 20, 20))            # object 1: striped red
CHECKS = ((40, 60, 200), (80, 120, 230))            # object 2: checkered blue


def tiny_frame(size: int = 32):
    """A table with two objects side by side and the fingers between them above: RGB, labels
    (1, 2 the objects, 255 the fingers), fingers mask."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = TABLE
    labels = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    one = (yy >= 12) & (yy < 24) & (xx >= 4) & (xx < 14)
    two = (yy >= 12) & (yy < 24) & (xx >= 18) & (xx < 28)
    fingers = (yy < 8) & (xx >= 13) & (xx < 19)
    img[one] = np.where((xx[one] // 2 % 2)[:, None] == 0, STRIPES[0], STRIPES[1])
    img[two] = np.where(((xx[two] + yy[two]) // 2 % 2)[:, None] == 0, CHECKS[0], CHECKS[1])
    img[fingers] = GRIPPER
    labels[one], labels[two], labels[fingers] = 1, 2, 255
    return img, labels, fingers


def tiny_cache(scenario: str, episodes: int = 2, per_episode: int = 8, seed: int = 0) -> dict:
    """A detector event cache with both image sizes' fields (32 px frames for both) whose
    sounds say which object was struck."""
    rng = np.random.default_rng(seed)
    img, labels, fingers = tiny_frame()
    n = episodes * per_episode
    struck = np.arange(n) % 2 + 1
    sound = rng.normal(0, 0.3, (n, 4, 5)) + np.where(struck == 1, 1.0, -1.0)[:, None, None]
    uv = np.array([[11.0, 18.0] if s == 1 else [21.0, 18.0] for s in struck], np.float32)
    cache = dict(episode=np.repeat(np.arange(episodes), per_episode).astype(np.int32),
                 scenario=np.array([scenario] * n), target=struck.astype(np.int16),
                 episodes=np.array([f'episode_{i:04d}' for i in range(episodes)]))
    for prefix, uv_key, sound_key in (('', 'contact_uv', 'logmel'),
                                      ('look_', 'look_uv', 'look_sound')):
        cache[f'{prefix}image'] = np.repeat(img[None], n, 0)
        cache[f'{prefix}labels'] = np.repeat(labels[None], n, 0)
        cache[f'{prefix}gripper'] = np.repeat(fingers[None], n, 0)
        cache[f'{prefix}automask'] = labels[None] == struck[:, None, None]
        cache[uv_key] = uv
        cache[sound_key] = sound.astype(np.float16)
    return cache


def test_look_ablation_pairs_and_training_on_tiny_events():
    probe = load('look_ablation_probe')
    train = probe.select(tiny_cache('mixed'), 128, 'fine')
    sounds, looks = probe.training_pairs(train)
    assert sounds.shape == (16, 20) and looks.shape == (16, 31)
    test = probe.select(tiny_cache('ambiguous', seed=1), 64, 'slots')
    gt, segments = probe.ambiguous_pairs(test)
    assert len(gt) == len(segments) == 16
    assert all(pair.shape == (2, 31) for _, pair in gt)
    assert all(looks is not None and len(hits) == 2 and sum(hits) == 1
               for _, looks, hits in segments)
    nearest, either = probe.segment_baselines(segments)
    assert nearest == 1.0 and either == 1.0              # the contact is nearest the struck object
    rows = probe.train_and_score(sounds, looks, gt, segments, seed=0, steps=200, every=100,
                                 batch=16)
    assert [r['step'] for r in rows] == [100, 200]
    for r in rows:
        assert 0.0 <= r['gt_pair'] <= 1.0 and 0.0 <= r['segments'] <= 1.0
        assert np.isfinite(r['loss'])
    assert rows[-1]['gt_pair'] == 1.0                    # look and sound tell the objects apart


def test_look_ablation_main_on_tiny_caches(tmp_path, capsys):
    probe = load('look_ablation_probe')
    for name, scenario in (('train', 'mixed'), ('test', 'ambiguous')):
        np.savez(tmp_path / f'{name}.npz', **tiny_cache(scenario))
    assert probe.main([str(tmp_path / 'train.npz'), str(tmp_path / 'test.npz'), '--size', '64',
                       '--audio', 'slots', '--steps', '100', '--every', '50']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'config 64 px, slots audio'
    assert out[1].startswith('16 training events, 16 GT pairs, 16 ambiguous events')
    assert [line.split()[:4] for line in out[2:]] == [['seed', '0', 'step', '50'],
                                                      ['seed', '0', 'step', '100']]


# --- view material ------------------------------------------------------------------------------
def tiny_windows(seed: int, n: int = 24):
    """Predictor windows whose target's material shows in the crop colour at the first contact's
    local view (view 1: a contact at 0.25 s), some with no material or no contact."""
    from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL, PredictorData
    rng = np.random.default_rng(seed)
    k, t = 3, 50
    materials = np.array(['glass', 'wood'])[np.arange(n) % 2]
    crops = rng.integers(0, 255, (n, k, 3, 16, 16)).astype(np.uint8)
    crops[materials == 'glass', 1, 2] = 230              # glass: blue at the contact view
    crops[materials == 'wood', 1, 0] = 230               # wood: red
    looks = rng.normal(0, 1, (n, k, 33)).astype(np.float32)
    looks[:, :, 0] = 1.0                                  # a segment found everywhere
    meta = []
    for i, m in enumerate(materials):
        meta.append(dict(material=NO_MATERIAL if i == 0 else m, shape='cup',
                         episode=f'episode_{i // 4:04d}',
                         episode_combos=['glass:cup'] if i // 4 == 1 else ['wood:box'],
                         contacts=[] if i == 1 else [dict(time=0.25)]))
    return PredictorData(np.zeros((n, t, 18), np.float32), np.zeros((n, 3, 8, 8), np.uint8), crops,
                         np.zeros((n, 64, t), np.float16), np.zeros((n, 10), np.int16),
                         np.full(n, t, np.int64), looks, meta)


def test_view_material_on_tiny_windows():
    probe = load('predictor_view_material_probe')
    train, test = tiny_windows(0), tiny_windows(1)
    crops, looks, materials = probe.contact_views(train, range(len(train)))
    assert crops.shape == (22, 12) and looks.shape == (22, 33) and len(materials) == 22
    result = probe.view_material(train, {'test': test}, holdout=['glass:cup'], steps=200)
    assert result['windows'] == {'fit': 18, 'unseen': 4, 'test': 22}    # episode 1 held out
    assert result['found'] == {'fit': 1.0, 'unseen': 1.0, 'test': 1.0}
    for feature in probe.FEATURES:
        assert set(result[feature]) == {'unseen', 'test'}
        assert all(0.0 <= a <= 1.0 for a in result[feature].values())
    assert result['crop colour']['test'] == 1.0           # the colour names the material here


# --- memory probe ---------------------------------------------------------------------------
def test_memory_probe_counts_deciders_and_names_gap_strikes_by_remembered_sound():
    probe = load('memory_probe')
    rng = np.random.default_rng(0)
    snd = {1: rng.normal(0, 1, (4, 6)), 2: rng.normal(0, 1, (4, 6))}
    labels = np.zeros((5, 8, 8), np.uint8)
    labels[:, :, :4], labels[:, :, 4:] = 1, 2
    # one episode: lone 1, lone 2, gap strike on 2, gap strike on 1; one gap strike before both
    sel = {'episode': np.array([0, 0, 0, 0, 1]), 'target': np.array([1, 2, 2, 1, 1]),
           'scenario': np.array(['alternating', 'alternating', 'ambiguous', 'ambiguous', 'ambiguous']),
           'look_labels': labels,
           'look_sound': np.stack([snd[1], snd[2], snd[2] + 0.1, snd[1] + 0.1, snd[1]])}
    assert probe.oracle_identity(sel) == (2, 2)
    cands = [[{'decided_by': 'slots'}], [{'decided_by': 'slots'}], [{'decided_by': 'memory'}],
             [{'decided_by': 'memory'}], [{'decided_by': 'look'}]]
    got = probe.breakdown(sel, cands, np.array([True, False, True, True, False]))
    assert got == {('lone strike', 'slots'): [2, 1], ('gap strike', 'memory'): [2, 2],
                   ('gap strike', 'look'): [1, 0]}
