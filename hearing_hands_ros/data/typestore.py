"""A rosbags typestore (ROS 2 Kilted) that also knows audio_common_msgs, vision_msgs and
hearing_hands_msgs.

The .msg definitions are kept here as text, identical to ``ros_interfaces/*/msg/*.msg`` (a test
checks that), so the typestore works in a colcon install where the repo folder is absent.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

# 'pkg/msg/Name' -> .msg text (verbatim copy of ros_interfaces/pkg/msg/Name.msg)
MSG_DEFINITIONS: dict[str, str] = {
    'audio_common_msgs/msg/AudioData': 'uint8[] data\n',
    'audio_common_msgs/msg/AudioDataStamped': 'std_msgs/Header header\naudio_common_msgs/AudioData audio\n',
    'audio_common_msgs/msg/AudioInfo': 'uint8 channels       # Number of channels\nuint32 sample_rate   # Sampling rate [Hz]\nstring sample_format # Audio format (e.g. S16LE)\nuint32 bitrate       # Amount of audio data per second [bits/s]\nstring coding_format # Audio coding format (e.g. WAVE, MP3)\n',
    'hearing_hands_msgs/msg/ContactEvent': (
        '# One audible contact the gripper is expected to make along a planned path.\n'
        'uint8 KIND_IMPACT=0\n'
        'uint8 KIND_SLIDE=1\n'
        'builtin_interfaces/Time stamp      # planned time of the contact (path start + time_from_start)\n'
        "float32 time_from_start            # [s] from the path's first pose\n"
        'float32 time_std                   # [s] spread of the time\n'
        'float32 probability                # P(this contact is audible)\n'
        'float32 peak_db                    # expected peak level at the wrist microphone [dBFS]\n'
        'uint8 kind                         # KIND_IMPACT or KIND_SLIDE\n'
        'float32 duration                   # [s] how long a slide sounds; 0 for impacts\n'
        'string material                    # most likely material of what is touched\n'
        'string[] material_names            # the material posterior: names ...\n'
        'float32[] material_probs           # ... and their probabilities (same order)\n'
        'geometry_msgs/Point position       # planned TCP position at the contact (header frame)\n'),
    'hearing_hands_msgs/msg/ContactEventArray': (
        '# The contacts predicted for one planned path.\n'
        "std_msgs/Header header             # stamp = the path's first pose time; frame = the path's frame\n"
        'float32 p_contact                  # P(at least one audible contact)\n'
        'float32 peak_db                    # expected peak level of the path [dBFS]\n'
        'ContactEvent[] events\n'),
    'hearing_hands_msgs/msg/ContactAnomaly': (
        '# One thing that went otherwise than expected while a planned path ran (contact_monitor).\n'
        'uint8 MISSING=0                    # an expected contact was not heard by the end of its window\n'
        'uint8 UNEXPECTED=1                 # a contact was heard where none was expected\n'
        'uint8 LOUDER=2                     # a matched contact louder than expected beyond the margin\n'
        'uint8 QUIETER=3                    # ... quieter\n'
        'uint8 WRONG_MATERIAL=4             # a matched contact that sounds of another material\n'
        "std_msgs/Header header             # stamp = when it was decided (audio clock); frame = the path's\n"
        "builtin_interfaces/Time path_stamp # the path's first pose time: which path it belongs to\n"
        'uint8 type                         # one of the constants above\n'
        "string type_name                   # its name ('MISSING', ...)\n"
        'float32 time_from_start            # [s] from the path start: heard, else the expected time\n'
        'float32 confidence                 # [0, 1]\n'
        'bool has_expected                  # expected is set (not for UNEXPECTED)\n'
        'ContactEvent expected              # the expected contact\n'
        'bool has_heard                     # heard_* are set (not for MISSING)\n'
        'float32 heard_time_from_start      # [s] onset heard, from the path start\n'
        'float32 heard_peak_db              # [dBFS] level heard\n'
        "string heard_material              # material the sound classifier heard ('' if none)\n"),
    'hearing_hands_msgs/msg/ContactAnomalyArray': (
        '# The anomalies decided at one instant (usually one) while a path ran.\n'
        "std_msgs/Header header             # stamp = when they were decided; frame = the path's frame\n"
        'ContactAnomaly[] anomalies\n'),
    'hearing_hands_msgs/msg/ExecutionStatus': (
        '# How one planned path went, published once it has ended (contact_monitor).\n'
        'uint8 AS_EXPECTED=0\n'
        'uint8 ANOMALOUS=1\n'
        "std_msgs/Header header             # stamp = the path's first pose time; frame = the path's frame\n"
        'uint8 status                       # AS_EXPECTED or ANOMALOUS\n'
        'uint32 expected_contacts           # expected contacts the monitor required (probability >= min)\n'
        'uint32 heard_contacts              # contact onsets heard while it ran\n'
        'float32[] heard_times_from_start   # [s] each heard onset, from the path start\n'
        'float32[] heard_peak_db            # [dBFS] its level\n'
        'ContactEvent[] expected            # every expected contact\n'
        'ContactAnomaly[] anomalies         # everything that went otherwise (empty when AS_EXPECTED)\n'),
    'vision_msgs/msg/BoundingBox2D': '# A 2D bounding box that can be rotated about its center.\nvision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n',
    'vision_msgs/msg/Classification': 'std_msgs/Header header\nvision_msgs/ObjectHypothesis[] results\n',
    'vision_msgs/msg/Detection2D': '# A 2D detection: class probabilities and a bounding box.\nstd_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox2D bbox\nstring id\n',
    'vision_msgs/msg/Detection2DArray': 'std_msgs/Header header\nvision_msgs/Detection2D[] detections\n',
    'vision_msgs/msg/LabelInfo': '# Maps class ids to class names.\nstd_msgs/Header header\nvision_msgs/VisionClass[] class_map\nfloat32 threshold\n',
    'vision_msgs/msg/ObjectHypothesis': '# An object hypothesis: class and score.\nstring class_id\nfloat64 score\n',
    'vision_msgs/msg/ObjectHypothesisWithPose': '# An object hypothesis with a pose.\nvision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n',
    'vision_msgs/msg/Point2D': 'float64 x\nfloat64 y\n',
    'vision_msgs/msg/Pose2D': '# A 2D pose: position and orientation (radians).\nvision_msgs/Point2D position\nfloat64 theta\n',
    'vision_msgs/msg/VisionClass': 'uint16 class_id\nstring class_name\n',
    'vision_msgs/msg/VisionInfo': '# Metadata of a vision pipeline.\nstd_msgs/Header header\nstring method\nint64 database_version\nstring database_location\n',
}


def interfaces_dir() -> Path | None:
    """``ros_interfaces/`` of a repo checkout, or None when installed without it."""
    d = Path(__file__).resolve().parents[2] / 'ros_interfaces'
    return d if d.is_dir() else None


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The shared typestore: ROS 2 Kilted types + the packages of ``ros_interfaces/``."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name, text in MSG_DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def register_bag_types(store: Typestore, connections) -> None:
    """Register message types a bag defines but the store lacks (from the bag's msgdefs)."""
    types = {}
    for conn in connections:
        if conn.msgtype in store.fielddefs or not conn.msgdef.data:
            continue
        try:
            types.update(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        except Exception:  # noqa: BLE001 - IDL or unparsable: reading that topic will fail later
            continue
    if types:
        store.register({k: v for k, v in types.items() if k not in store.fielddefs})
