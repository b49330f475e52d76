#!/usr/bin/env bash
# Set up everything hearing_hands_ros needs on a fresh Debian 12 / Python 3.11 machine with no ROS
# apt repository: a virtual environment in .venv with the ROS 2 Kilted wheels, torch (CPU), ONNX
# Runtime, MuJoCo, rosbags; every interface package in ros_interfaces/ (audio_common_msgs,
# vision_msgs, hearing_hands_msgs) built from its definitions with colcon; Debian's libosmesa6 for
# off-screen MuJoCo rendering.
# Idempotent: it does only what is missing. On a robot with ROS 2 from apt, use colcon instead
# (README, "Running on a robot").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3}
say() { echo "[setup] $*"; }

# 1. Off-screen OpenGL for the wrist-camera renderer.
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa.so; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing libosmesa6 (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null
  else
    say "WARNING: libOSMesa not found; install Debian's libosmesa6 (sudo apt-get install libosmesa6)"
  fi
fi

# 2. Virtual environment and Python packages.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
REQ_STAMP=$VENV/.requirements.sha
REQ_SHA=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$REQ_SHA" ]; then
  say "installing Python packages (requirements.txt)"
  python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  python -m pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
  python -c "import torch, onnxruntime, mujoco, rosbags, cv2, rclpy" \
    || { echo "[setup] a Python package failed to install" >&2; exit 1; }
  echo "$REQ_SHA" > "$REQ_STAMP"
fi

# 3. Interface packages (no wheels exist): every ros_interfaces/<pkg>/ with a package.xml, built
#    with colcon against the wheels' ament prefix.
IFACE=$VENV/ros_interfaces
IFACE_PKGS=$(for d in ros_interfaces/*/package.xml; do basename "$(dirname "$d")"; done)
IF_SHA=$(cat ros_interfaces/*/package.xml ros_interfaces/*/CMakeLists.txt ros_interfaces/*/msg/*.msg | sha256sum | cut -d' ' -f1)
if [ "$(cat "$IFACE/.sha" 2>/dev/null)" != "$IF_SHA" ]; then
  say "building the interface packages with colcon:" $IFACE_PKGS
  # The std_msgs wheel's exported CMake targets name the wheel builder's include folders.
  PYINC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  NPDIR=$(python -c "import numpy, os; print(os.path.dirname(numpy.__file__))")
  if [ ! -e /opt/python/cp311-cp311/include/python3.11 ] \
     || [ ! -e /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy ]; then
    if [ -w /opt ] || [ "$(id -u)" = 0 ]; then
      mkdir -p /opt/python/cp311-cp311/include /opt/python/cp311-cp311/lib/python3.11/site-packages
      ln -sfn "$PYINC" /opt/python/cp311-cp311/include/python3.11
      ln -sfn "$NPDIR" /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy
    else
      echo "[setup] need root once to create /opt/python/cp311-cp311 links (see README)" >&2; exit 1
    fi
  fi
  rm -rf "$IFACE" && mkdir -p "$IFACE/src"
  for pkg in $IFACE_PKGS; do cp -r "ros_interfaces/$pkg" "$IFACE/src/"; done
  (
    export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
    cd "$IFACE"
    colcon --log-base log build --merge-install --base-paths src --build-base build --install-base install \
      --event-handlers console_direct- --cmake-args -DBUILD_TESTING=OFF >"$IFACE/build.log" 2>&1 \
      || { tail -40 "$IFACE/build.log" >&2; echo "[setup] colcon build of the interface packages failed (log: $IFACE/build.log)" >&2; exit 1; }
  )
  rm -rf "$IFACE/build"
  echo "$IF_SHA" > "$IFACE/.sha"
fi

# 4. Make the interfaces visible to every venv Python start: modules through a .pth file, shared
#    libraries linked into $VENV/lib, which the ROS wheels' bootstrapper puts on LD_LIBRARY_PATH.
SITE=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$IFACE/install/lib/python3.11/site-packages" > "$SITE/hearing_hands_ros_interfaces.pth"
for so in "$IFACE"/install/lib/*.so; do ln -sfn "$so" "$VENV/lib/$(basename "$so")"; done
ACT_HOOK=$VENV/bin/hearing_hands_env.sh
cat > "$ACT_HOOK" <<ENV
export AMENT_PREFIX_PATH=$IFACE/install:$VENV\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}
export MUJOCO_GL=\${MUJOCO_GL:-osmesa}
export PYOPENGL_PLATFORM=\${PYOPENGL_PLATFORM:-osmesa}
ENV
grep -q hearing_hands_env.sh "$VENV/bin/activate" || echo ". $ACT_HOOK" >> "$VENV/bin/activate"

PKG_SHA=$(sha256sum setup.py setup.cfg | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.package.sha" 2>/dev/null)" != "$PKG_SHA" ]; then
  say "installing hearing_hands_ros (editable)"
  python -m pip install -q --no-deps --no-build-isolation -e . >"$VENV/package-install.log" 2>&1 \
    || { cat "$VENV/package-install.log" >&2; echo "[setup] installing the package failed" >&2; exit 1; }
  echo "$PKG_SHA" > "$VENV/.package.sha"
fi
. "$ACT_HOOK"
python -c "import rclpy; $(for pkg in $IFACE_PKGS; do printf 'import %s.msg; ' "$pkg"; done)" \
  || { echo "[setup] ROS message packages do not import" >&2; exit 1; }
say "ready: . .venv/bin/activate && hearing-hands --help"
