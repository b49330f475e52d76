"""Model bundles: metadata validation and ONNX Runtime sessions on a real exported graph."""
import json

import numpy as np
import pytest
import torch

from hearing_hands_ros import runtime
from hearing_hands_ros.runtime import ModelError


@pytest.fixture
def bundle(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).eval()
    path = tmp_path / 'tiny.onnx'
    torch.onnx.export(net, (torch.zeros(2, 4),), str(path), input_names=['x'], output_names=['y'],
                      dynamic_axes={'x': {0: 'b'}, 'y': {0: 'b'}}, dynamo=False)
    runtime.save_metadata(path, 'detector', inputs={'x': ['b', 4]}, outputs=['y'], sample_rate=16000)
    return net, path


def test_runs_on_cpu_and_matches_torch(bundle):
    net, path = bundle
    b = runtime.load_bundle(path, 'detector', backend='auto', expect={'sample_rate': 16000})
    assert b.backend in runtime.available_backends()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = b.run({'x': x})['y']
    np.testing.assert_allclose(y, net(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize('mutate, message', [
    (lambda m: m.update(kind='predictor'), "expected a 'detector'"),
    (lambda m: m.update(format_version=99), 'format_version'),
    (lambda m: m.update(sample_rate=22050), 'sample_rate=22050'),
    (lambda m: m.pop('inputs'), "lacks 'inputs'"),
    (lambda m: m.update(inputs={'z': [1]}), 'differ from its metadata'),
])
def test_metadata_mismatch_is_a_clear_error(bundle, mutate, message):
    _, path = bundle
    meta = json.loads(path.with_suffix('.json').read_text())
    mutate(meta)
    path.with_suffix('.json').write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=message):
        runtime.load_bundle(path, 'detector', expect={'sample_rate': 16000})


def test_missing_corrupt_and_unknown_backend(bundle, tmp_path):
    _, path = bundle
    with pytest.raises(ModelError, match='unknown backend'):
        runtime.load_bundle(path, 'detector', backend='vulkan')
    with pytest.raises(ModelError, match='not found'):
        runtime.load_bundle(tmp_path / 'nope.onnx', 'detector')
    path.write_bytes(b'not a protobuf')
    with pytest.raises(ModelError, match='cannot load'):
        runtime.load_bundle(path, 'detector')
    path.with_suffix('.json').write_text('{broken')
    with pytest.raises(ModelError, match='not valid JSON'):
        runtime.load_bundle(path, 'detector')


def test_cuda_request_without_cuda_says_so(bundle):
    _, path = bundle
    if 'cuda' in runtime.available_backends():
        pytest.skip('CUDA provider present')
    with pytest.raises(ModelError, match="backend 'cuda' is not available"):
        runtime.load_bundle(path, 'detector', backend='cuda')
