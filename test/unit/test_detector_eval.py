"""Detector evaluation helpers: geometry baselines and the live demo on real nodes."""
import numpy as np

from hearing_hands_ros.eval.detector import nearest_gripper, paired_difference, score_events
from hearing_hands_ros.sim.scene import GRIPPER_LABEL


def _region(y0, y1, x0, x1, shape=(40, 40)):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return {'mask': m, 'score': 0.0}


def test_paired_difference_interval_from_episode_bootstrap():
    """Always right vs always wrong: +1 with a point interval; equal methods: 0 in the interval;
    a one-episode advantage: the interval reaches down to 0 (the episode can be left out)."""
    groups = np.repeat(np.arange(10), 5)
    d = paired_difference(np.ones(50), np.zeros(50), groups)
    assert d['difference'] == 1.0 and d['ci95'] == [1.0, 1.0]
    rng = np.random.default_rng(1)
    a = (rng.random(50) < 0.6).astype(float)
    d = paired_difference(a, a, groups)
    assert d['difference'] == 0.0 and d['ci95'] == [0.0, 0.0]
    b = np.zeros(50)
    a = np.where(groups == 3, 1.0, 0.0)
    d = paired_difference(a, b, groups)
    assert abs(d['difference'] - 0.1) < 1e-12 and d['ci95'][0] == 0.0 < d['ci95'][1]


def test_accuracy_counts_a_mostly_finger_region_as_a_miss():
    """Object 1 made the sound. A region that is mostly the robot's fingers with a strip of
    object 1 names the robot (a miss); one mostly on object 1 with some table is a hit."""
    labels = np.zeros((40, 40), np.uint8)
    labels[:, :10] = GRIPPER_LABEL
    labels[10:30, 10:20] = 1
    fingers_and_strip = _region(10, 30, 0, 13)        # 200 finger px, 60 object px
    object_and_table = _region(5, 35, 10, 22)         # 200 object px, 160 table px
    out = score_events([[{**fingers_and_strip, 'score': 0.9}], [{**object_and_table, 'score': 0.9}]],
                       np.stack([labels, labels]), np.array([1, 1]))
    assert out['correct'].tolist() == [False, True]


def test_nearest_gripper_by_centroid_and_by_pixel_can_disagree():
    """A big region whose edge touches the contact point vs a small one centred near it."""
    big = _region(0, 40, 21, 40)          # edge at x=21, centroid far right
    small = _region(14, 26, 10, 18)       # centroid at (14, 20), edge 2 px from the point
    uv = np.array([20.0, 20.0])
    by_centroid = nearest_gripper([big, small], uv, 'centroid')
    by_pixel = nearest_gripper([big, small], uv, 'pixel')
    assert by_centroid[0]['mask'] is small['mask']
    assert by_pixel[0]['mask'] is big['mask']
    assert by_centroid[0]['score'] >= by_centroid[1]['score']


def test_a_recording_replayed_through_the_node_pipeline_gets_the_offline_answers(tmp_path):
    """Live equals offline: an alternating sound-world episode (lone touches, then a gap strike
    decided by the object sound memory) fed message by message through the node's
    ``DetectorPipeline`` (``replay_episode``) gets, at every onset ``evaluate detector`` scores,
    the top candidate the evaluation computes from the recording (same onset, same region)."""
    from hearing_hands_ros import runtime
    from hearing_hands_ros.data.bags import read_episode, write_episode
    from hearing_hands_ros.data.detector_dataset import build_dataset
    from hearing_hands_ros.detector_pipeline import DetectorPipeline, PipelineConfig
    from hearing_hands_ros.eval.detector import evaluate, replay_episode
    from hearing_hands_ros.models.detector import DetectorConfig
    from hearing_hands_ros.models.look_match import ContactRule, LookConfig, load_look_match
    from hearing_hands_ros.models.sound_memory import MemoryConfig
    from hearing_hands_ros.paths import model_path
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld
    bag = write_episode(SoundWorld(SimConfig(scenario='alternating', seed=800001, n_actions=3)),
                        tmp_path, 'episode_0000')
    b = runtime.load_bundle(model_path('sounding_object_detector.onnx'), 'detector')
    look, weight = load_look_match(b)
    rule = ContactRule.from_meta(b.meta['look_match'])
    cfg = DetectorConfig.from_dict(b.meta['config'])
    _, extra = evaluate(build_dataset([bag], cfg, progress=False), {'model': b}, look=look,
                        look_weight=weight, contact=rule, memory_cfg=MemoryConfig())
    offline = extra['cands']['model_memory']
    assert len(offline) >= 3 and (extra['sel']['scenario'] == 'ambiguous').any()
    pipe = DetectorPipeline(b, cfg, PipelineConfig(), look, weight,
                            LookConfig.from_dict(look.meta['config']), rule)
    live = replay_episode(read_episode(bag), pipe)
    onsets = np.array([a.onset_ns for a in live])
    for t, cands in zip(extra['sel']['onset_ns'], offline):
        j = int(np.argmin(np.abs(onsets - t)))
        assert abs(onsets[j] - t) < 10_000_000            # the same onset, heard live
        a, o = live[j].candidates[0]['mask'], cands[0]['mask']
        assert (a & o).sum() / (a | o).sum() > 0.9
        assert live[j].candidates[0]['decided_by'] == cands[0]['decided_by']
    assert len(pipe.memory) >= 2                          # the lone touches were remembered
