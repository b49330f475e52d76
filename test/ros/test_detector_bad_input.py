"""sounding_object_detector under bad input: each bad message is dropped with a diagnostics entry,
the node keeps running and still detects the next good sound event."""
import array
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402

from hearing_hands_ros import ros_convert as rc  # noqa: E402
from test_detector_node import SR, Harness, make_model, scene_image  # noqa: E402


@pytest.fixture
def harness(tmp_path):
    model = make_model(tmp_path / 'det.onnx')
    h = Harness(63, {'model_path': str(model), 'backend': 'cpu', 'max_future_s': 5.0})
    h.wait_connected()
    yield h
    h.close()


def _bad_images(t_ns):
    good = rc.image_msg(scene_image(), t_ns)

    def mk(**kw):
        m = Image(header=good.header, height=good.height, width=good.width, encoding=good.encoding,
                  is_bigendian=0, step=good.step, data=good.data)
        for k, v in kw.items():
            setattr(m, k, v)
        return m
    return [
        mk(encoding='yuv422_weird'),                       # unknown encoding
        mk(data=array.array('B', bytes(100))),             # truncated
        mk(height=0, width=0, step=0, data=array.array('B')),  # zero size
        mk(step=good.step - 3),                            # step/size mismatch
        mk(width=good.width + 1),                          # width does not fit the step
    ]


def test_bad_messages_are_dropped_and_reported(harness):
    h = harness
    now = h.now_ns()
    # audio before any AudioInfo
    h.pub_audio.publish(rc.audio_chunk_msg(np.zeros(512, np.float32), now))
    assert h.wait_for(lambda: h.node.diag.input_errors['audio_info_missing'] >= 1, 20.0)
    # mp3 AudioInfo: clear error naming the fix
    h.pub_info.publish(AudioInfo(channels=1, sample_rate=SR, sample_format='S16LE', bitrate=0,
                                 coding_format='mp3'))
    assert h.wait_for(lambda: h.node.diag.input_errors['bad_audio_info'] >= 1, 20.0)
    assert 'format:=wave' in h.diag_values()['message']
    h.pub_info.publish(rc.audio_info_msg(SR))
    assert h.wait_for(lambda: h.node.pipe.format is not None, 20.0)
    # odd-sized audio, stamps backwards and far in the future
    odd = AudioDataStamped(header=rc.header(now), audio=AudioData(data=array.array('B', bytes(513))))
    h.pub_audio.publish(odd)
    h.pub_audio.publish(rc.audio_chunk_msg(np.zeros(512, np.float32), now))
    h.pub_audio.publish(rc.audio_chunk_msg(np.zeros(512, np.float32), now - 10**9))
    h.pub_audio.publish(rc.audio_chunk_msg(np.zeros(512, np.float32), now + 60 * 10**9))
    for m in _bad_images(now):
        h.pub_img.publish(m)
        time.sleep(0.02)
    # CameraInfo without intrinsics (an uncalibrated driver), a JointState without positions
    h.pub_cam.publish(rc.camera_info_msg({'width': 128, 'height': 96, 'K': [0.0] * 9}, now))
    h.pub_joints.publish(JointState(name=['gripper_aperture'], position=[]))
    h.pub_pose.publish(rc.pose_msg([0.0, 0.0, float('nan')], [0.0, 0.0, 0.0, 1.0], now))
    h.pub_pose.publish(rc.pose_msg([0.0, 0.0, 0.1], [0.0, 0.0, 0.0, 0.0], now))    # no rotation
    errs = h.node.diag.input_errors
    assert h.wait_for(lambda: errs['bad_audio'] >= 1 and errs['audio_stamp_backwards'] >= 1
                      and errs['audio_stamp_future'] >= 1 and errs['bad_image'] >= 5
                      and errs['bad_camera_info'] >= 1 and errs['bad_pose'] >= 2, 5.0), dict(errs)
    assert not h.node.pipe.poses
    assert h.node.pipe.K is None and h.node.pipe.aperture == 0.0
    assert h.diag_values()['level'] == h.node.diag.WARN
    # AudioInfo changing mid-stream: reported, history reset, stream continues at the new rate
    h.pub_info.publish(rc.audio_info_msg(48000))
    assert h.wait_for(lambda: errs['audio_info_changed'] >= 1, 20.0)
    h.pub_info.publish(rc.audio_info_msg(SR))
    assert h.wait_for(lambda: errs['audio_info_changed'] >= 2, 20.0)
    # the node still works: a good event is detected
    _, onsets = h.stream(1.0, impacts_s=(0.4,), t0_ns=h.now_ns() + 10**8)
    assert h.wait_for(lambda: len(h.got['det']) >= 1, 20.0), h.diag_values()
    assert abs(rc.stamp_to_ns(h.got['det'][-1][0].header.stamp) - onsets[0]) < 10_000_000


def test_stale_frames_drop_the_event_not_the_node(harness):
    h = harness
    h.pub_info.publish(rc.audio_info_msg(SR))
    time.sleep(0.2)
    t0 = h.now_ns()
    h.pub_img.publish(rc.image_msg(scene_image(), t0 - 5 * 10**9))   # only a 5 s old frame
    time.sleep(0.1)
    # audio only (no camera): the event finds no frame close to the onset
    for c in range(25):
        x = np.random.default_rng(c).normal(0, 1e-3, 512).astype(np.float32)
        if c == 10:
            x[100:] += 0.5 * np.exp(-np.arange(412) / 800) * np.sin(np.arange(412) * 0.7)
        h.pub_audio.publish(rc.audio_chunk_msg(x, t0 + c * 32_000_000))
        time.sleep(0.005)
    assert h.wait_for(lambda: h.node.diag.input_errors['stale_frame'] >= 1, 20.0), h.diag_values()
    assert not h.got['det']
