"""contact_sound_predictor under bad input: every malformed path, a path before any image, a
missing / corrupt / mismatched model. Each gives one clear error (log + diagnostics, or one CLI
line), nothing crashes, and the node keeps serving later good requests."""
import json
import shutil

import pytest

rclpy = pytest.importorskip('rclpy')

from hearing_hands_ros import ros_convert as rc  # noqa: E402
from test_predictor_node import NS, Harness, tap_path_msg  # noqa: E402


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    from hearing_hands_ros.train.export_predictor import tiny_bundle
    return tiny_bundle(tmp_path_factory.mktemp('model') / 'contact_sound_predictor')


def bad_paths(start):
    good = tap_path_msg(start)
    empty = tap_path_msg(start)
    empty.poses = []
    single = tap_path_msg(start)
    single.poses = single.poses[:1]
    nan = tap_path_msg(start)
    nan.poses[3].pose.position.z = float('nan')
    inf = tap_path_msg(start)
    inf.poses[2].pose.orientation.w = float('inf')
    unsorted = tap_path_msg(start)
    unsorted.poses = unsorted.poses[::-1]
    dup = tap_path_msg(start)
    dup.poses[5].header.stamp = dup.poses[4].header.stamp
    zero_stamps = tap_path_msg(start)
    for p in zero_stamps.poses:
        p.header.stamp = rc.ns_to_stamp(0)
    long = tap_path_msg(start, duration=30.0, n=50)
    frame = tap_path_msg(start, frame='map')
    return good, [('empty', empty), ('single pose', single), ('NaN or inf', nan),
                  ('NaN or inf', inf), ('not sorted', unsorted), ('duplicate stamps', dup),
                  ('duplicate stamps', zero_stamps), ('longer than the limit', long),
                  ("frame id 'map'", frame)]


def errors(h):
    st = h.last_status()
    return {} if st is None else {kv.key: kv.value for kv in st.values if kv.key.startswith('input_errors.')}


def test_bad_paths_are_reported_and_the_node_keeps_serving(ros_domain, model):
    ros_domain(71)
    h = Harness(71, {'model_path': str(model), 'backend': 'cpu'})
    try:
        h.wait_connected()
        start = 1_767_225_600 * NS
        good, bad = bad_paths(start)
        h.pub_path.publish(good)                                   # before any camera frame
        assert h.wait_for(lambda: errors(h).get('input_errors.no_image') == '1')
        assert h.last_status().level == h.last_status().WARN
        for _ in range(3):
            h.send_image()
        messages = []
        for expect, msg in bad:
            h.pub_path.publish(msg)
            assert h.wait_for(lambda: (st := h.last_status()) is not None and expect in st.message,
                              timeout=8), f'no diagnostics for {expect}: {h.last_status().message}'
            messages.append(h.last_status().message)
        assert h.wait_for(lambda: errors(h).get('input_errors.bad_path') == str(len(bad)))
        assert not h.got['audio']
        h.pub_path.publish(good)                                   # still serving
        assert h.wait_for(lambda: len(h.got['audio']) == 1)
        assert rc.stamp_to_ns(h.got['audio'][0].header.stamp) == start
    finally:
        h.close()


@pytest.mark.parametrize('damage, message', [
    ('missing', 'not found'),
    ('corrupt', 'cannot load'),
    ('metadata', 'feature_layout'),
    ('sample_rate', 'lacks'),
])
def test_bad_model_is_an_error_not_a_crash(ros_domain, model, tmp_path, damage, message):
    # a domain per case: the same node name coming back on one domain could find its lifecycle
    # services shadowed by the last case's departing participant (seen once under CI load)
    domain = {'missing': 76, 'corrupt': 77, 'metadata': 78, 'sample_rate': 79}[damage]
    ros_domain(domain)
    target = tmp_path / 'broken'
    shutil.copy(model, target.with_suffix('.onnx'))
    shutil.copy(model.with_suffix('.json'), target.with_suffix('.json'))
    meta = json.loads(model.with_suffix('.json').read_text())
    if damage == 'missing':
        target.with_suffix('.onnx').unlink()
    elif damage == 'corrupt':
        target.with_suffix('.onnx').write_bytes(b'\x00garbage' * 10)
    elif damage == 'metadata':
        meta['feature_layout'] = meta['feature_layout'][:5]
        target.with_suffix('.json').write_text(json.dumps(meta))
    else:
        meta.pop('sample_rate')
        target.with_suffix('.json').write_text(json.dumps(meta))
    h = Harness(domain, {'model_path': str(target), 'backend': 'cpu'})
    try:
        assert h.wait_for(lambda: (st := h.last_status()) is not None and st.level == st.ERROR)
        assert message in h.last_status().message
        assert h.lifecycle_state() == 'unconfigured'           # alive, subscribed to nothing
        assert h.pub_path.get_subscription_count() == 0
        assert not h.change_state('activate')                  # nothing to activate
        assert h.node.context.ok() and not h.got['audio']
    finally:
        h.close()


def test_cli_errors_are_one_line(tmp_path, capsys):
    from hearing_hands_ros.cli import UserError
    from hearing_hands_ros.train import export_predictor
    with pytest.raises(UserError, match='not found'):
        export_predictor.export(tmp_path / 'nope.pt', tmp_path / 'out')
