"""``evaluate predictor`` with only what a shipped bundle holds: the model row runs, the baselines
and figures the files do not allow are skipped with a reason, a user's mistake is one line."""
import json

import pytest

from hearing_hands_ros.cli import main


@pytest.fixture(scope='module')
def shipped_like(tmp_path_factory):
    """A tiny bundle whose ``.pt`` keeps only the student, the vocoder and the judge (as the
    shipped one), and a run checkpoint without the judge either. No training bags are named."""
    from hearing_hands_ros.models.predictor_run import load_run, save_run
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    out = tmp_path_factory.mktemp('shipped')
    onnx = tiny_bundle(out / 'contact_sound_predictor')
    nets = load_run(onnx.with_suffix('.pt'))
    save_run(onnx.with_suffix('.pt'), nets['cfg'], {k: nets[k] for k in ('vocoder', 'student', 'judge')},
             nets['summary'], half=True)
    no_judge = out / 'no_judge.pt'
    save_run(no_judge, nets['cfg'], {k: nets[k] for k in ('vocoder', 'student')}, nets['summary'])
    return onnx, no_judge


def test_skips_what_the_files_do_not_allow(bags, shipped_like, tmp_path, capsys):
    onnx, no_judge = shipped_like
    out = tmp_path / 'eval.json'
    base = ['evaluate', 'predictor', '--model', str(onnx), '--data', str(bags), '--json', str(out),
            '--max-windows', '2', '--cache', str(tmp_path / 'cache'), '--threads', '1',
            '--no-progress']
    assert main(base) == 0
    result = json.loads(out.read_text())
    assert list(result['methods']) == ['model'] and result['windows'] == 2
    model = result['methods']['model']
    assert model['stft_distance'] >= 0 and 'material_accuracy' in model and 'action_accuracy' in model
    assert 'material_accuracy_contact' not in model          # no training bags to fit it on
    skipped = result['skipped']
    assert set(skipped) == {'model_25step_cfg', 'regression', 'retrieval', 'material_accuracy_contact'}
    assert 'holds no flow teacher' in skipped['model_25step_cfg'] and '--run' in skipped['model_25step_cfg']
    assert 'holds no regression net' in skipped['regression'] and '--with-baselines' in skipped['regression']
    assert skipped['retrieval'] == 'no training bags: pass --train-data'
    assert '--train-data' in skipped['material_accuracy_contact']
    assert set(result['judge_on_real_audio']) == {'material_accuracy', 'action_accuracy'}
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table[1:-1]] == ['model'] + ['skipped'] * 4
    assert 'skipped retrieval: no training bags: pass --train-data' in table

    # without the judge too: only the judge's figures go, the model row stays
    assert main(base + ['--run', str(no_judge)]) == 0
    result = json.loads(out.read_text())
    assert list(result['methods']) == ['model'] and 'material_accuracy' not in result['methods']['model']
    assert {'material_accuracy', 'action_accuracy'} <= set(result['skipped'])
    assert 'holds no judge' in result['skipped']['material_accuracy']
    assert 'judge_on_real_audio' not in result

    # with training bags, retrieval and the per-contact judge run
    assert main(base + ['--train-data', str(bags)]) == 0
    result = json.loads(out.read_text())
    assert list(result['methods']) == ['model', 'retrieval']
    assert 'material_accuracy_contact' in result['methods']['model']
    assert set(result['skipped']) == {'model_25step_cfg', 'regression'}

    # a user's mistake is one line (exit 2), not a traceback
    missing = str(tmp_path / 'nowhere')
    for wrong in (['--train-data', missing], ['--second-take', missing], ['--run', missing]):
        assert main(base + wrong) == 2
    (tmp_path / 'empty').mkdir()
    for wrong in (missing, str(tmp_path / 'empty')):                 # no bags in it
        assert main([*base[:4], '--data', wrong, *base[6:]]) == 2
    err = capsys.readouterr().err
    assert 'nowhere' in err and 'no rosbag2 episodes found' in err and 'Traceback' not in err
