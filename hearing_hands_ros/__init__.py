"""hearing_hands_ros: ears for a robot's hands."""
__version__ = "0.1.0"
