"""The predictor's whole offline pipeline on one tiny simulated episode: rosbag -> windows ->
every training stage -> export -> Planner prediction. Tiny step counts: behaviour, not quality."""
import json

import numpy as np

from hearing_hands_ros.cli import main


def test_train_export_predict(bags, tmp_path):
    run = tmp_path / 'run'
    rc = main(['train', 'predictor', '--data', str(bags), '--out', str(run), '--holdout-combos', '',
               '--vocoder-steps', '2', '--flow-steps', '2', '--reflow-pairs', '2',
               '--reflow-steps', '2', '--regression-steps', '2', '--judge-steps', '2',
               '--teacher-steps', '2', '--batch', '2', '--channels', '8,8,8', '--threads', '1',
               '--prior', '--t-uniform', '0.25', '--teacher-rescale', '1', '--no-progress'])
    assert rc == 0
    log = (run / 'log.csv').read_text().splitlines()
    assert {line.split(',')[0] for line in log[1:]} >= {'vocoder', 'flow', 'reflow', 'regression'}
    model = tmp_path / 'm' / 'contact_sound_predictor'
    assert main(['export', 'predictor', '--run', str(run), '--out', str(model)]) == 0
    meta = json.loads(model.with_suffix('.json').read_text())
    assert meta['kind'] == 'predictor' and meta['sample_rate'] == 16000
    assert meta['prior'] and meta['velocity_skip']         # the flow refines the regression
    assert meta['distilled_from'] == dict(pairs=2, steps=2, teacher_steps=2, teacher_guidance=4.5,
                                          teacher_rescale=1.0)
    assert meta['guidance_rescale'] == 0.0                 # export --guidance-rescale: CFG use

    from hearing_hands_ros.data.bags import read_episode
    from hearing_hands_ros.planner import Planner
    from hearing_hands_ros.trajectory import Trajectory
    ep = read_episode(bags / 'episode_0000')
    stamp, times_ns, pos, quat = ep.paths[0]
    path = Trajectory.from_stamps_ns(times_ns, pos, quat, origin_ns=times_ns[0])
    planner = Planner(model.with_suffix('.onnx'), backend='cpu')
    assert planner.network_evaluations == 4                # 2 steps, each also runs the prior
    preds = planner.predict([path, path], ep.images[0])
    assert len(preds) == 2
    assert preds[0].sample_rate == 16000 and np.isfinite(preds[0].audio).all()
    assert len(preds[0].audio) >= int(path.duration * 16000)
    np.testing.assert_allclose(preds[0].audio, preds[1].audio, atol=1e-5)   # same noise, same path

    # the evaluation command on the same episode, with the run's baselines and a temperature sweep
    out = tmp_path / 'eval.json'
    rc = main(['evaluate', 'predictor', '--model', str(model.with_suffix('.onnx')),
               '--run', str(run / 'predictor.pt'), '--data', str(bags), '--train-data', str(bags),
               '--json', str(out), '--max-windows', '2', '--sweep-temperature', '0', '0.5',
               '--cache', str(tmp_path / 'cache'), '--threads', '1', '--no-progress'])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result['windows'] == 2 and result['episodes'] == 1
    assert result['model']['temperature'] == 1.0
    assert set(result['methods']) == {'model', 'model_25step_cfg', 'regression', 'retrieval',
                                      'model_t0', 'model_t0.5'}
    for m in result['methods'].values():
        assert {'stft_distance', 'envelope_distance', 'onset_f1', 'onset_error_ms',
                'material_accuracy', 'action_accuracy', 'loudness_error_db',
                'network_evaluations'} <= set(m)
        assert np.isfinite(m['stft_distance'])
    assert result['methods']['model_25step_cfg']['network_evaluations'] == 100
    # a second take of the same episode (same motion, another sound seed) as a reference row;
    # a take of another episode is refused in one line
    take2, other = tmp_path / 'take2', tmp_path / 'other'
    sim = ['simulate', '--episodes', '1', '--actions', '2', '--width', '64', '--height', '64', '--quiet']
    assert main(sim + ['--seed', '4', '--sound-seed-offset', '7', '--out', str(take2)]) == 0
    assert main(sim + ['--seed', '5', '--out', str(other)]) == 0
    twin = json.loads((take2 / 'episode_0000.truth.json').read_text())
    assert twin['audio']['sound_seed'] == 11 and twin['seed'] == 4
    base = ['evaluate', 'predictor', '--model', str(model.with_suffix('.onnx')),
            '--run', str(run / 'predictor.pt'), '--data', str(bags), '--train-data', str(bags),
            '--json', str(out), '--max-windows', '2', '--cache', str(tmp_path / 'cache'),
            '--threads', '1', '--no-progress']
    assert main(base + ['--second-take', str(take2)]) == 0
    ref = json.loads(out.read_text())['methods']['second_take']
    assert ref['network_evaluations'] == 0 and 0 < ref['stft_distance'] < np.inf
    assert ref['onset_f1'] > 0                       # a real recording of the same contacts
    assert main(base + ['--second-take', str(other)]) == 2
    # no combination was held out of this run, so there is nothing unseen to validate on
    assert main(['evaluate', 'predictor', '--model', str(model.with_suffix('.onnx')),
                 '--run', str(run / 'predictor.pt'), '--data', str(bags), '--train-data', str(bags),
                 '--json', str(out), '--unseen-only', '--cache', str(tmp_path / 'cache'),
                 '--no-progress']) != 0

    # re-running one stage trains it anew and keeps the others: a reflow of 0 steps leaves the
    # student equal to the run's teacher (not to the previous student)
    import torch

    from hearing_hands_ros.models.predictor_run import load_run
    before = load_run(run / 'predictor.pt')
    assert main(['train', 'predictor', '--data', str(bags), '--out', str(run), '--holdout-combos', '',
                 '--stages', 'reflow', '--reflow-steps', '0', '--reflow-pairs', '2',
                 '--teacher-steps', '2', '--teacher-guidance', '2', '--batch', '2',
                 '--channels', '8,8,8', '--threads', '1', '--no-progress']) == 0
    after = load_run(run / 'predictor.pt')
    assert after['summary']['reflow']['teacher_guidance'] == 2.0
    assert after['summary']['reflow']['teacher_rescale'] == 0.0
    for k, v in after['teacher'].state_dict().items():
        torch.testing.assert_close(after['student'].state_dict()[k], v)
        torch.testing.assert_close(before['teacher'].state_dict()[k], v)
    for k, v in before['regression'].state_dict().items():
        torch.testing.assert_close(after['regression'].state_dict()[k], v)
    assert any(not torch.equal(before['student'].state_dict()[k], v)
               for k, v in after['student'].state_dict().items())
    # --init fine-tunes another run's nets (0 steps: a copy); a run of another kind is refused
    tune = ['train', 'predictor', '--data', str(bags), '--out', str(tmp_path / 'tuned'),
            '--holdout-combos', '', '--stages', 'flow', '--flow-steps', '0', '--init',
            str(run / 'predictor.pt'), '--batch', '2', '--threads', '1', '--no-progress']
    assert main(tune) == 2
    assert main(tune + ['--prior', '--teacher-rescale', '1.5']) == 2     # one line, no traceback
    assert main(tune + ['--prior']) == 0
    tuned = load_run(tmp_path / 'tuned' / 'predictor.pt')
    for k, v in after['teacher'].state_dict().items():
        torch.testing.assert_close(tuned['teacher'].state_dict()[k], v)
