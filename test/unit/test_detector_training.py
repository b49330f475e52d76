"""``hearing-hands train detector`` on the shared tiny recorded episode: training from a rosbag,
EMA checkpoints, validation-based best checkpoint, resume, export. Tiny step counts: behaviour,
not quality."""
import json

from hearing_hands_ros.cli import main
from hearing_hands_ros.models.detector import load_checkpoint


def test_train_validate_resume_export(bags, tmp_path):
    run = tmp_path / 'run'
    common = ['--data', str(bags), '--out', str(run), '--image-size', '32', '--num-slots', '3',
              '--batch', '4', '--threads', '1', '--minutes', '5', '--no-progress',
              '--n-mels', '24', '--n-fft', '128', '--hop', '32']            # a finer audio grid
    assert main(['train', 'detector', *common, '--steps', '4', '--val', str(bags),
                 '--val-every', '2']) == 0
    rows = [line.split(',', 1) for line in (run / 'val.csv').read_text().splitlines()]
    assert [int(r[0]) for r in rows] == [2, 4]
    assert all(0.0 <= json.loads(r[1])['score'] <= 1.0 for r in rows)
    best, ck = load_checkpoint(run / 'best.pt')
    assert ck['step'] in (2, 4) and ck['training']['validation']['step'] == ck['step']
    assert best.cfg.num_slots == 3 and best.cfg.image_size == 32
    assert (best.cfg.n_mels, best.cfg.n_fft, best.cfg.hop, best.cfg.frames) == (24, 128, 32, 25)
    # resume continues the step count (and the EMA) from last.pt
    assert main(['train', 'detector', *common, '--steps', '6', '--resume']) == 0
    _, last = load_checkpoint(run / 'last.pt')
    assert last['step'] == 6 and 'ema' in last and 'raw' in last
    # a baseline on the same episodes reuses the event cache (the events depend on neither the
    # variant nor the slot count)
    cache = run / 'dataset.npz'
    stamp = cache.stat().st_mtime_ns
    assert main(['train', 'detector', '--data', str(bags), '--out', str(tmp_path / 'vo'),
                 '--variant', 'vision_only', '--init', str(run / 'best.pt'), '--cache', str(cache),
                 '--image-size', '32', '--num-slots', '4', '--batch', '4', '--steps', '2',
                 '--threads', '1', '--no-progress', '--n-mels', '24', '--n-fft', '128',
                 '--hop', '32']) == 0
    assert cache.stat().st_mtime_ns == stamp and not (tmp_path / 'vo' / 'dataset.npz').exists()
    onnx = tmp_path / 'det.onnx'
    assert main(['export', 'detector', '--checkpoint', str(run / 'best.pt'), '--out', str(onnx)]) == 0
    meta = json.loads(onnx.with_suffix('.json').read_text())
    assert meta['num_slots'] == 3 and (meta['n_mels'], meta['n_fft'], meta['frames']) == (24, 128, 25)


def test_train_with_automatic_segments_and_gaussian_slots(bags, tmp_path):
    """--segment-weight logs the segment term; --segment-data adds events for it alone (own
    cache beside the main one); --slot-init is stored in the checkpoint's config."""
    run = tmp_path / 'seg'
    assert main(['train', 'detector', '--data', str(bags), '--out', str(run), '--image-size', '32',
                 '--num-slots', '4', '--batch', '4', '--threads', '1', '--no-progress',
                 '--steps', '2', '--log-every', '1', '--segment-weight', '2',
                 '--segment-data', str(bags), '--slot-init', 'gaussian']) == 0
    rows = (run / 'log.csv').read_text().splitlines()
    header = rows[0].split(',')
    assert 'seg' in header and all(float(r.split(',')[header.index('seg')]) > 0 for r in rows[1:])
    assert (run / 'dataset_seg.npz').is_file()
    net, _ = load_checkpoint(run / 'last.pt')
    assert net.cfg.slot_init == 'gaussian' and net.cfg.num_slots == 4


def test_event_cache_is_rebuilt_when_an_episode_is_re_recorded(bags, tmp_path):
    """The cache key holds the episode files' sizes and times, not only the folder names."""
    import os
    import shutil

    from hearing_hands_ros.data.detector_dataset import build_dataset
    from hearing_hands_ros.models.detector import DetectorConfig
    data = tmp_path / 'data'
    data.mkdir()
    for p in bags.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy2)(p, data / p.name)
    cfg, cache = DetectorConfig(image_size=32), tmp_path / 'cache.npz'
    first = build_dataset([data], cfg, cache=cache, progress=False)
    stamp = cache.stat().st_mtime_ns
    build_dataset([data], cfg, cache=cache, progress=False)
    assert cache.stat().st_mtime_ns == stamp                          # same files: reused
    truth = data / 'episode_0000.truth.json'
    os.utime(truth, ns=(truth.stat().st_atime_ns, truth.stat().st_mtime_ns + 10**9))
    again = build_dataset([data], cfg, cache=cache, progress=False)
    assert cache.stat().st_mtime_ns != stamp                          # re-recorded: rebuilt
    assert (again['target'] == first['target']).all()


def test_train_look_match_attach_it_and_evaluate_with_it(bags, tmp_path):
    """``train look-match`` (validation picks a step and a weight), ``export look-match`` names it
    in the detector bundle, ``evaluate detector`` answers with segments rescored by it (and
    without it under ``--no-look``); tiny steps: behaviour, not quality."""
    import shutil
    run = tmp_path / 'det'
    assert main(['train', 'detector', '--data', str(bags), '--out', str(run), '--image-size', '32',
                 '--num-slots', '3', '--batch', '4', '--steps', '2', '--threads', '1',
                 '--no-progress']) == 0
    onnx = tmp_path / 'm' / 'det.onnx'
    assert main(['export', 'detector', '--checkpoint', str(run / 'last.pt'), '--out', str(onnx)]) == 0
    look = tmp_path / 'look'
    assert main(['train', 'look-match', '--data', str(bags), '--val', str(bags), '--detector', str(onnx),
                 '--out', str(look), '--steps', '4', '--val-every', '2', '--batch', '4',
                 '--weights', '0.5', '2', '--cache', str(run / 'dataset.npz'), '--no-progress']) == 0
    rows = (look / 'log.csv').read_text().splitlines()
    assert [r.split(',')[0] for r in rows[1:]] == ['2', '4']
    from hearing_hands_ros.models.look_match import load_checkpoint as load_look
    _, ck = load_look(look / 'best.pt')
    assert ck['weight'] in (0.5, 2.0) and ck['validation']['step'] in (2, 4)
    assert main(['export', 'look-match', '--checkpoint', str(look / 'best.pt'), '--detector', str(onnx)]) == 0
    meta = json.loads(onnx.with_suffix('.json').read_text())
    assert meta['look_match'] == {'bundle': 'det_look.onnx', 'weight': ck['weight']}
    assert meta['num_slots'] == 3                         # the rest of the metadata is kept
    for extra, has_look in (([], True), (['--no-look'], False)):
        out = tmp_path / f'eval{len(extra)}.json'
        assert main(['evaluate', 'detector', '--model', str(onnx), '--data', str(bags), '--json', str(out),
                     '--cache', str(run / 'dataset.npz'), *extra]) == 0
        res = json.loads(out.read_text())
        assert (res['look_match'] is not None) == has_look
        assert 0.0 <= res['methods']['model']['accuracy'] <= 1.0
    # a bundle naming a look match that is not there: one clear error, not a traceback
    (onnx.with_name('det_look.json')).unlink()
    assert main(['evaluate', 'detector', '--model', str(onnx), '--data', str(bags), '--json',
                 str(tmp_path / 'x.json'), '--cache', str(run / 'dataset.npz')]) == 2
    shutil.rmtree(tmp_path / 'm')
