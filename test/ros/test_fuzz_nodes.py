"""A short run of ``bench/fuzz_nodes.py``: a few hundred malformed messages per input topic,
interleaved with valid ones, against each model node running as its own process."""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip('rclpy')
BENCH = Path(__file__).resolve().parents[2] / 'bench' / 'fuzz_nodes.py'


@pytest.fixture(scope='module')
def fuzz():
    spec = importlib.util.spec_from_file_location('fuzz_nodes', BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(240)
@pytest.mark.parametrize('which, domain', [('detector', 45), ('predictor', 46), ('monitor', 49)])
def test_node_survives_malformed_messages(fuzz, tmp_path, which, domain):
    r = fuzz.fuzz_node(which, n=200, seed=domain, domain_id=domain, log_dir=tmp_path,
                       progress=False)
    assert not r['crashed'], Path(r['log']).read_text()[-3000:]
    assert r['tracebacks_in_log'] == 0, Path(r['log']).read_text()[-3000:]
    assert r['still_answers'], 'no answer to valid input after the fuzz'
    assert all(v == 200 for v in r['sent'].values())
    # the node saw the bad input and said so, per kind, on /diagnostics
    assert r['input_errors_total'] > 0 and 'bad_image' in r['input_errors_counted']
    # each bad message is counted once, also an AudioInfo that arrives on both subscriptions
    for topic, kind in (('image', 'bad_image'), ('audio_info', 'bad_audio_info'),
                        ('planned_path', 'bad_path')):
        if topic in r['sent']:
            assert r['input_errors_counted'].get(kind, 0) <= r['sent'][topic]
