"""Model bundles: an ONNX graph plus a JSON metadata file, run with ONNX Runtime (or torch).

A bundle is ``name.onnx`` + ``name.json``. The JSON always holds::

    {"format_version": 1, "kind": "detector" | "predictor", "inputs": {name: [dims...]},
     "outputs": [names], ...kind-specific fields (sample_rate, frame_rate, layouts, ...)}

``load_bundle`` validates the metadata against what the caller needs *before* creating a session,
so a node fails with one clear sentence ("model was trained at 22050 Hz, node expects 16000")
instead of a shape error deep inside ONNX Runtime.

Backends: ``auto`` picks TensorRT, then CUDA, then CPU from the providers this ONNX Runtime build
offers; ``cuda``/``tensorrt``/``cpu`` ask for one and fail clearly if it is missing; ``torch`` runs
a TorchScript/torch module file given by the caller (``name.pt`` beside the bundle).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hearing_hands_ros.errors import ModelError

FORMAT_VERSION = 1
BACKENDS = ('auto', 'cuda', 'tensorrt', 'cpu', 'torch')
_PROVIDERS = {
    'tensorrt': 'TensorrtExecutionProvider',
    'cuda': 'CUDAExecutionProvider',
    'cpu': 'CPUExecutionProvider',
}


def bundle_paths(path: str | Path) -> tuple[Path, Path]:
    """``x``, ``x.onnx`` or ``x.json`` -> (``x.onnx``, ``x.json``)."""
    p = Path(path)
    stem = p.with_suffix('') if p.suffix in ('.onnx', '.json', '.pt') else p
    return stem.with_suffix('.onnx'), stem.with_suffix('.json')


def read_metadata(path: str | Path) -> dict:
    _, meta_path = bundle_paths(path)
    if not meta_path.is_file():
        raise ModelError(f'model metadata not found: {meta_path}')
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f'model metadata {meta_path} is not valid JSON: {e}') from None
    if not isinstance(meta, dict):
        raise ModelError(f'model metadata {meta_path} must be a JSON object')
    return meta


def check_metadata(meta: dict, kind: str, expect: dict[str, Any] | None = None) -> None:
    """Raise ModelError unless ``meta`` is a bundle of ``kind`` whose fields equal ``expect``."""
    if meta.get('format_version') != FORMAT_VERSION:
        raise ModelError(f"model format_version {meta.get('format_version')!r} is not supported "
                         f'(this package reads version {FORMAT_VERSION}); re-export the model')
    if meta.get('kind') != kind:
        raise ModelError(f"model is a {meta.get('kind')!r} model, expected a {kind!r} model")
    for key in ('inputs', 'outputs'):
        if key not in meta:
            raise ModelError(f'model metadata lacks {key!r}; re-export the model')
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise ModelError(f'model metadata {key}={have!r} does not match the expected {want!r}')


def available_backends() -> list[str]:
    """Backends usable here, best first (always ends with 'cpu')."""
    import onnxruntime as ort
    have = set(ort.get_available_providers())
    return [b for b in ('tensorrt', 'cuda', 'cpu') if _PROVIDERS[b] in have]


@dataclass
class Bundle:
    """A loaded model: ``run(feeds) -> {output name: array}`` on the chosen backend."""

    meta: dict
    backend: str
    path: Path
    _run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = field(repr=False)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(feeds)


def load_bundle(path: str | Path, kind: str, backend: str = 'auto',
                expect: dict[str, Any] | None = None, threads: int = 0,
                torch_loader: Callable[[Path, dict], Callable] | None = None,
                spin: bool = True) -> Bundle:
    """Load and validate a bundle. ``torch_loader(pt_path, meta)`` is needed for backend='torch'.
    ``spin=False``: ONNX Runtime's CPU threads sleep right after a run instead of spinning for
    the next one, for callers that do other CPU work between runs (the detector node)."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    onnx_path, _ = bundle_paths(path)
    meta = read_metadata(path)
    check_metadata(meta, kind, expect)
    outputs = list(meta['outputs'])

    if backend == 'torch':
        if torch_loader is None:
            raise ModelError('backend torch is not available for this model kind')
        pt_path = onnx_path.with_suffix('.pt')
        if not pt_path.is_file():
            raise ModelError(f'backend torch needs the checkpoint {pt_path}')
        fn = torch_loader(pt_path, meta)
        return Bundle(meta, 'torch', onnx_path, fn)

    import onnxruntime as ort
    if not onnx_path.is_file():
        raise ModelError(f'model file not found: {onnx_path}')
    have = available_backends()
    if backend == 'auto':
        chosen = have[0]
    elif backend in have:
        chosen = backend
    else:
        raise ModelError(f"backend {backend!r} is not available in this ONNX Runtime build "
                         f"(available: {', '.join(have)}); use backend:=auto or cpu")
    providers = [_PROVIDERS[b] for b in ('tensorrt', 'cuda', 'cpu')[('tensorrt', 'cuda', 'cpu').index(chosen):]]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    if not spin:
        opts.add_session_config_entry('session.intra_op.allow_spinning', '0')
    try:
        sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for corrupt files
        raise ModelError(f'cannot load {onnx_path}: {str(e).splitlines()[0][:300]}') from None
    names = {i.name for i in sess.get_inputs()}
    if names != set(meta['inputs']):
        raise ModelError(f'model inputs {sorted(names)} differ from its metadata {sorted(meta["inputs"])}')
    used = sess.get_providers()[0]
    chosen = next(b for b, p in _PROVIDERS.items() if p == used)

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(outputs, sess.run(outputs, feeds)))

    return Bundle(meta, chosen, onnx_path, run)


def save_metadata(path: str | Path, kind: str, inputs: dict[str, list], outputs: list[str],
                  **fields: Any) -> Path:
    """Write ``name.json`` beside ``name.onnx`` with the mandatory fields first."""
    _, meta_path = bundle_paths(path)
    meta = {'format_version': FORMAT_VERSION, 'kind': kind, 'inputs': inputs, 'outputs': outputs,
            **fields}
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=False) + '\n')
    return meta_path
