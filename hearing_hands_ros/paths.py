"""Where the shipped files are: the source checkout's folders, else the installed share folder."""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'hearing_hands_ros'
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def share_path(*parts: str) -> Path:
    """``models/x.onnx``-style path: the source tree's copy when running from a checkout (so an
    editable install never serves a stale copy), else ``share/hearing_hands_ros/...`` of the
    colcon/ament install."""
    local = _SOURCE_ROOT.joinpath(*parts)
    if local.exists() or (_SOURCE_ROOT / 'package.xml').is_file():
        return local
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE)).joinpath(*parts)
    except Exception:  # ament_index not importable or package not installed: the source layout
        return local


def model_path(name: str) -> Path:
    """The path of a shipped model bundle file, e.g. ``'sounding_object_detector.onnx'``."""
    return share_path('models', name)
