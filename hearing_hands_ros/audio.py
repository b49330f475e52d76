"""Audio core: AudioInfo-aware PCM decode/encode, resampling, a timestamped ring buffer,
streaming onset detection and log-mel / STFT features.

Pure numpy/scipy; no ROS import. Units: sample rates in Hz, times in integer nanoseconds (``*_ns``)
or float seconds (``*_s``), samples float32 in [-1, 1]. Wire format: little-endian interleaved
PCM as described by ``audio_common_msgs/AudioInfo``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
from scipy import signal

NS = 1_000_000_000

# sample_format -> (numpy dtype, scale to [-1, 1), zero offset)
SAMPLE_FORMATS: dict[str, tuple[str, float, float]] = {
    'S16LE': ('<i2', 32768.0, 0.0),
    'S32LE': ('<i4', 2147483648.0, 0.0),
    'F32LE': ('<f4', 1.0, 0.0),
    'S8': ('i1', 128.0, 0.0),
    'U8': ('u1', 128.0, 128.0),
}
_PCM_CODINGS = {'wave', 'wav', 'raw', 'pcm', ''}
_SET_WAVE = ('set the capture node to `format:=wave` (audio_common audio_capture: '
             '`ros2 run audio_capture audio_capture_node --ros-args -p format:=wave`)')


class AudioFormatError(ValueError):
    """The audio stream's format is not supported or the data does not fit it."""


#: Sample rates and channel counts a microphone stream can have (others are refused).
SAMPLE_RATE_RANGE = (1000, 768000)
MAX_CHANNELS = 64


@dataclass(frozen=True)
class AudioFormat:
    """PCM stream layout, as in ``audio_common_msgs/AudioInfo``."""

    channels: int = 1
    sample_rate: int = 16000          # [Hz]
    sample_format: str = 'S16LE'
    coding_format: str = 'wave'

    def __post_init__(self):
        coding = (self.coding_format or '').strip().lower()
        if coding not in _PCM_CODINGS:
            hint = (f'compressed audio ({coding!r}) is not decoded; ' + _SET_WAVE)
            raise AudioFormatError(f'unsupported audio coding_format {self.coding_format!r}: {hint}')
        fmt = (self.sample_format or '').strip().upper()
        if fmt not in SAMPLE_FORMATS:
            raise AudioFormatError(
                f'unsupported audio sample_format {self.sample_format!r}; supported: '
                f'{", ".join(SAMPLE_FORMATS)} (interleaved little-endian PCM); or ' + _SET_WAVE)
        if not 1 <= int(self.channels) <= MAX_CHANNELS:
            raise AudioFormatError(f'audio channels must be in [1, {MAX_CHANNELS}], got '
                                   f'{self.channels}')
        if not SAMPLE_RATE_RANGE[0] <= int(self.sample_rate) <= SAMPLE_RATE_RANGE[1]:
            # resampling a chunk of an absurd rate would take the node's memory and time
            raise AudioFormatError(f'audio sample_rate must be in [{SAMPLE_RATE_RANGE[0]}, '
                                   f'{SAMPLE_RATE_RANGE[1]}] Hz, got {self.sample_rate}')
        object.__setattr__(self, 'sample_format', fmt)
        object.__setattr__(self, 'coding_format', coding or 'wave')
        object.__setattr__(self, 'channels', int(self.channels))
        object.__setattr__(self, 'sample_rate', int(self.sample_rate))

    @property
    def bytes_per_sample(self) -> int:
        return np.dtype(SAMPLE_FORMATS[self.sample_format][0]).itemsize

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample of every channel)."""
        return self.bytes_per_sample * self.channels

    @property
    def bitrate(self) -> int:
        """[bit/s]"""
        return self.frame_bytes * 8 * self.sample_rate

    @classmethod
    def from_info(cls, info: Any) -> 'AudioFormat':
        """Build from an AudioInfo message (rclpy or rosbags) or a dict with the same fields."""
        get = info.get if isinstance(info, Mapping) else (lambda k, d=None: getattr(info, k, d))
        return cls(channels=get('channels', 1), sample_rate=get('sample_rate', 0),
                   sample_format=get('sample_format', 'S16LE'),
                   coding_format=get('coding_format', 'wave'))

    def info_fields(self) -> dict:
        """Fields of an AudioInfo message."""
        return dict(channels=self.channels, sample_rate=self.sample_rate,
                    sample_format=self.sample_format, bitrate=self.bitrate,
                    coding_format=self.coding_format)


def _as_bytes(data) -> bytes | memoryview | np.ndarray:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data, dtype=np.uint8)
    try:                              # array.array('B') from rclpy
        return memoryview(data).cast('B')
    except TypeError:                 # list of ints
        return np.asarray(data, dtype=np.uint8)


def decode(data, fmt: AudioFormat) -> np.ndarray:
    """PCM bytes -> float32 ``(N, channels)`` in [-1, 1]."""
    buf = _as_bytes(data)
    nbytes = buf.nbytes if isinstance(buf, (memoryview, np.ndarray)) else len(buf)
    if nbytes % fmt.frame_bytes:
        raise AudioFormatError(
            f'audio chunk of {nbytes} bytes is not a whole number of frames '
            f'({fmt.channels} ch x {fmt.bytes_per_sample} B {fmt.sample_format} = '
            f'{fmt.frame_bytes} B per frame); check AudioInfo')
    dtype, scale, offset = SAMPLE_FORMATS[fmt.sample_format]
    x = np.frombuffer(buf, dtype=dtype).astype(np.float32)
    if offset:
        x -= offset
    if scale != 1.0:
        x /= scale
    return x.reshape(-1, fmt.channels)


def encode(samples: np.ndarray, fmt: AudioFormat) -> bytes:
    """float ``(N,)`` or ``(N, channels)`` in [-1, 1] -> interleaved PCM bytes (clipped)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] != fmt.channels:
        raise AudioFormatError(f'samples have {x.shape[1]} channels, format has {fmt.channels}')
    dtype, scale, offset = SAMPLE_FORMATS[fmt.sample_format]
    if fmt.sample_format == 'F32LE':
        return np.ascontiguousarray(x, dtype='<f4').tobytes()
    info = np.iinfo(np.dtype(dtype))
    q = np.clip(np.round(x * scale + offset), info.min, info.max)
    return np.ascontiguousarray(q, dtype=dtype).tobytes()


def encode_s16le(samples: np.ndarray) -> bytes:
    """float ``(N,)`` (mono) or ``(N, C)`` in [-1, 1] -> S16LE bytes (clipped, rounded)."""
    x = np.asarray(samples)
    return encode(x, AudioFormat(channels=1 if x.ndim == 1 else x.shape[1]))


def to_mono(x: np.ndarray) -> np.ndarray:
    """``(N, C)`` -> float32 ``(N,)`` channel mean; ``(N,)`` passes through as float32."""
    x = np.asarray(x, dtype=np.float32)
    return x if x.ndim == 1 else x.mean(axis=1, dtype=np.float32)


def resample(x: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    """Polyphase resampling along axis 0 by the exact rational ratio ``sr_out / sr_in``.

    Output length is ``ceil(N * sr_out / sr_in)``; returns float32.
    """
    x = np.asarray(x, dtype=np.float32)
    ratio = Fraction(sr_out).limit_denominator(10**6) / Fraction(sr_in).limit_denominator(10**6)
    if ratio == 1:
        return x.copy()
    if len(x) == 0:
        return x[:0].copy()
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Sample clock shared by the ring buffer, the onset detector and the bag reader
# ---------------------------------------------------------------------------------------------
class SampleClock:
    """Maps stream sample indices to ROS times: sample ``k`` is at ``anchor_ns + k / rate``.

    ``place(t0_ns, n)`` says where a chunk stamped ``t0_ns`` belongs relative to the next expected
    index ``next_index``: chunks within ``tolerance_ns`` of it are taken as contiguous (stamp jitter
    of real drivers), otherwise there is a gap or an overlap. A jump back by more than
    ``reset_after_ns`` (clock reset, bag loop) re-anchors the clock.
    """

    def __init__(self, sample_rate: int, tolerance_ns: int, reset_after_ns: int | None = None):
        self.sr = int(sample_rate)
        self.tolerance_ns = int(tolerance_ns)
        self.reset_after_ns = reset_after_ns
        self.anchor_ns: int | None = None
        self.next_index = 0

    def time_ns(self, k: int) -> int:
        """Time of sample ``k`` [ns] (rounded to the nearest ns)."""
        return self.anchor_ns + (k * NS + self.sr // 2) // self.sr

    def index(self, t_ns: int) -> int:
        """Nearest sample index of time ``t_ns``."""
        return ((int(t_ns) - self.anchor_ns) * self.sr + NS // 2) // NS

    def place(self, t0_ns: int) -> tuple[int, str]:
        """Index of a chunk's first sample and one of 'start', 'contiguous', 'gap', 'overlap', 'reset'."""
        t0_ns = int(t0_ns)
        if self.anchor_ns is None:
            self.anchor_ns, self.next_index = t0_ns, 0
            return 0, 'start'
        drift = t0_ns - self.time_ns(self.next_index)
        if abs(drift) <= self.tolerance_ns:
            return self.next_index, 'contiguous'
        if drift > 0:
            return self.index(t0_ns), 'gap'
        if self.reset_after_ns is not None and -drift > self.reset_after_ns:
            self.anchor_ns, self.next_index = t0_ns, 0
            return 0, 'reset'
        return self.index(t0_ns), 'overlap'


class AudioRingBuffer:
    """Bounded mono audio history with exact per-sample timestamps.

    ``push(t0_ns, samples)`` appends a chunk whose first sample is at ``t0_ns``. Stamps within
    ``tolerance_s`` of the expected time continue the stream sample-exactly. A later stamp is a gap
    (zero-filled, counted in ``stats['gaps']``/``['gap_samples']``); an earlier one an overlap (the
    overlapped head of the chunk is dropped, counted in ``['overlaps']``/``['dropped_samples']``);
    a jump back by more than the buffer length restarts the buffer (``['resets']``).
    Memory is ``ceil(seconds * sample_rate)`` float32 samples.
    """

    def __init__(self, sample_rate: int, seconds: float, tolerance_s: float = 0.002):
        self.sample_rate = int(sample_rate)
        self.capacity = int(math.ceil(seconds * sample_rate))
        if self.capacity <= 0:
            raise ValueError('ring buffer length must be > 0')
        self._buf = np.zeros(self.capacity, np.float32)
        self._clock = SampleClock(sample_rate, int(tolerance_s * NS), int(seconds * NS))
        self._first = 0                       # first valid sample index (after start/reset)
        self.stats = dict(chunks=0, samples=0, gaps=0, gap_samples=0, overlaps=0,
                          dropped_samples=0, resets=0)

    def _write(self, k0: int, x: np.ndarray):
        if len(x) > self.capacity:
            k0, x = k0 + len(x) - self.capacity, x[-self.capacity:]
        idx = (k0 + np.arange(len(x))) % self.capacity
        self._buf[idx] = x

    def push(self, t0_ns: int, samples: np.ndarray) -> None:
        x = to_mono(samples)
        clock = self._clock
        k0, kind = clock.place(t0_ns)
        self.stats['chunks'] += 1
        if kind in ('start', 'reset'):
            self._first = 0
            self.stats['resets'] += kind == 'reset'
        elif kind == 'gap':
            gap = k0 - clock.next_index
            self.stats['gaps'] += 1
            self.stats['gap_samples'] += gap
            z = min(gap, self.capacity)
            self._write(k0 - z, np.zeros(z, np.float32))
        elif kind == 'overlap':
            drop = min(clock.next_index - k0, len(x))
            self.stats['overlaps'] += 1
            self.stats['dropped_samples'] += drop
            x, k0 = x[drop:], k0 + drop
        self._write(k0, x)
        clock.next_index = max(clock.next_index, k0 + len(x))
        self.stats['samples'] += len(x)

    @property
    def latest_ns(self) -> int | None:
        """End time of the buffered audio [ns]: the time the next contiguous sample would have."""
        return None if self._clock.anchor_ns is None else self._clock.time_ns(self._clock.next_index)

    @property
    def oldest_ns(self) -> int | None:
        """Time of the oldest retained sample [ns]."""
        if self._clock.anchor_ns is None:
            return None
        return self._clock.time_ns(max(self._first, self._clock.next_index - self.capacity))

    def window(self, t_start_ns: int, t_end_ns: int) -> np.ndarray:
        """float32 samples at times [t_start_ns, t_end_ns); zeros where audio is missing.

        Length is ``round((t_end_ns - t_start_ns) * sample_rate / 1e9)`` samples; the first one is
        the sample nearest to ``t_start_ns``.
        """
        n = max(0, ((int(t_end_ns) - int(t_start_ns)) * self.sample_rate + NS // 2) // NS)
        out = np.zeros(n, np.float32)
        if self._clock.anchor_ns is None or n == 0:
            return out
        ks = self._clock.index(t_start_ns)
        lo = max(ks, self._first, self._clock.next_index - self.capacity)
        hi = min(ks + n, self._clock.next_index)
        if hi > lo:
            out[lo - ks:hi - ks] = self._buf[np.arange(lo, hi) % self.capacity]
        return out


def assemble_chunks(chunks, sample_rate: int, tolerance_s: float = 0.002):
    """Join timestamped mono chunks ``[(t0_ns, samples), ...]`` into one signal.

    Chunks are sorted by stamp; a stamp within ``tolerance_s`` of the expected time continues the
    stream, a gap is zero-filled and an overlapped chunk head is dropped (same rules as
    :class:`AudioRingBuffer`). Returns ``(start_ns, float32 (N,), stats dict)``; sample ``k`` is at
    ``start_ns + k / sample_rate``.
    """
    clock = SampleClock(sample_rate, int(tolerance_s * NS))
    parts, stats = [], dict(chunks=0, gaps=0, gap_samples=0, overlaps=0, dropped_samples=0)
    for t0_ns, x in sorted(chunks, key=lambda c: int(c[0])):
        x = to_mono(x)
        k0, kind = clock.place(t0_ns)
        stats['chunks'] += 1
        if kind == 'gap':
            parts.append(np.zeros(k0 - clock.next_index, np.float32))
            stats['gaps'] += 1
            stats['gap_samples'] += k0 - clock.next_index
        elif kind == 'overlap':
            drop = min(clock.next_index - k0, len(x))
            x, k0 = x[drop:], k0 + drop
            stats['overlaps'] += 1
            stats['dropped_samples'] += drop
        parts.append(x)
        clock.next_index = max(clock.next_index, k0 + len(x))
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return clock.anchor_ns, audio, stats


# ---------------------------------------------------------------------------------------------
# Onset detection
# ---------------------------------------------------------------------------------------------
class OnsetDetector:
    """Streaming contact-sound onset detector.

    Signal path: 2nd-order Butterworth high-pass (``highpass_hz``) -> energy per hop
    (``hop_s``, default 1 ms) in dB -> adaptive noise floor (follows falling levels with time
    constant ``floor_fall_s``, rising levels with ``floor_rise_s``). A hop triggers an onset when
    its level is ``threshold_db`` above the floor, ``rise_db`` above the quietest hop of the
    previous ``rise_window_s`` (so a sustained or ringing sound does not retrigger, a new hit on top
    of it does), above ``min_level_db`` dBFS, and at least ``refractory_s`` after the last onset.
    The onset time is then refined to the first sample (searching from one hop before the trigger
    hop) whose magnitude exceeds ``max(noise rms * 10^(threshold_db/20), refine_frac * peak)``.

    ``push(t0_ns, samples) -> [onset_ns, ...]`` reports an onset once its trigger hop is complete.
    Results are identical for any chunking of the same stream. Chunk stamps within
    ``tolerance_s`` of the expected time continue the stream; otherwise the sample clock is
    re-anchored to the new stamp.
    """

    def __init__(self, sample_rate: int, threshold_db: float = 12.0, *, rise_db: float | None = None,
                 hop_s: float = 0.001, refractory_s: float = 0.05, rise_window_s: float = 0.02,
                 floor_rise_s: float = 1.0, floor_fall_s: float = 0.02, min_level_db: float = -70.0,
                 highpass_hz: float = 100.0, refine_frac: float = 0.2, tolerance_s: float = 0.002):
        self.sample_rate = int(sample_rate)
        self.threshold_db = float(threshold_db)
        self.rise_db = self.threshold_db if rise_db is None else float(rise_db)
        self.hop = max(1, int(round(hop_s * sample_rate)))
        hop_dt = self.hop / sample_rate
        self.refractory_hops = int(math.ceil(refractory_s / hop_dt))
        self.a_up = 1.0 - math.exp(-hop_dt / floor_rise_s)
        self.a_down = 1.0 - math.exp(-hop_dt / floor_fall_s)
        self.min_level_db = float(min_level_db)
        self.refine_frac = float(refine_frac)
        self._sos = (signal.butter(2, highpass_hz, 'highpass', fs=sample_rate, output='sos')
                     if highpass_hz and highpass_hz < sample_rate / 2 else None)
        self._zi = None if self._sos is None else np.zeros((self._sos.shape[0], 2))
        self._clock = SampleClock(sample_rate, int(tolerance_s * NS))
        self._pending = np.zeros(0, np.float64)      # filtered samples not yet in a full hop
        self._prev_hop = np.zeros(self.hop, np.float64)
        self._hop_index = 0                           # hops completed so far
        self._hop0 = 0                                # sample index of the first pending sample
        self._floor: float | None = None
        self._recent: deque[float] = deque(maxlen=max(1, int(round(rise_window_s / hop_dt))))
        self._last_onset_hop = -10**12

    def push(self, t0_ns: int, samples: np.ndarray) -> list[int]:
        x = to_mono(samples).astype(np.float64)
        k0, kind = self._clock.place(t0_ns)
        if kind in ('gap', 'overlap'):          # re-anchor so that this chunk starts at t0_ns
            self._clock.anchor_ns = int(t0_ns) - (self._clock.time_ns(self._clock.next_index)
                                                  - self._clock.anchor_ns)
        self._clock.next_index += len(x)
        if self._sos is not None and len(x):
            x, self._zi = signal.sosfilt(self._sos, x, zi=self._zi)
        buf = np.concatenate([self._pending, x])
        nh = len(buf) // self.hop
        self._pending = buf[nh * self.hop:]
        if nh == 0:
            return []
        hops = buf[:nh * self.hop].reshape(nh, self.hop)
        levels = 10.0 * np.log10(np.einsum('ij,ij->i', hops, hops) / self.hop + 1e-20)
        onsets = []
        for i in range(nh):
            lvl = float(levels[i])
            j = self._hop_index + i
            if self._floor is None:
                self._floor = lvl
            floor = self._floor
            base = min(self._recent) if self._recent else lvl
            if (lvl >= floor + self.threshold_db and lvl >= base + self.rise_db
                    and lvl >= self.min_level_db and j - self._last_onset_hop >= self.refractory_hops):
                self._last_onset_hop = j
                prev = hops[i - 1] if i > 0 else self._prev_hop
                seg = np.abs(np.concatenate([prev, hops[i]]))
                thr = max(10.0 ** ((floor + self.threshold_db) / 20.0), self.refine_frac * seg.max())
                first = int(np.argmax(seg > thr)) if (seg > thr).any() else self.hop
                k = self._hop0 + (i - 1) * self.hop + first
                onsets.append(self._clock.time_ns(k))
            self._floor = floor + (lvl - floor) * (self.a_down if lvl < floor else self.a_up)
            self._recent.append(lvl)
        self._prev_hop = hops[-1].copy()
        self._hop_index += nh
        self._hop0 += nh * self.hop
        return onsets


def detect_onsets(samples: np.ndarray, sr: int, **kw) -> np.ndarray:
    """Offline onsets [s from the first sample] of a whole signal; same algorithm and keywords
    as :class:`OnsetDetector`."""
    det = OnsetDetector(sr, **kw)
    return np.asarray(det.push(0, samples), dtype=np.int64) / NS


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------
def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)``: HTK mel spacing, Slaney area
    normalisation (each filter scaled by 2 / bandwidth in Hz), like librosa(htk=True, norm='slaney')."""
    fmax = sr / 2 if fmax is None else fmax
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return (tri * (2.0 / (hi - lo))).astype(np.float32)


def stft_mag(samples: np.ndarray, n_fft: int = 512, hop: int = 160, center: bool = True) -> np.ndarray:
    """Magnitude STFT ``(n_fft // 2 + 1, T)`` float32, periodic Hann window of ``n_fft``.

    With ``center`` the signal is reflect-padded by ``n_fft // 2`` and ``T = 1 + N // hop``.
    """
    x = to_mono(samples)
    if center:
        pad = n_fft // 2
        x = np.pad(x, pad, mode='reflect' if len(x) > pad else 'constant')
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    win = signal.get_window('hann', n_fft).astype(np.float32)
    return np.abs(np.fft.rfft(frames * win, axis=1)).T.astype(np.float32)


def log_mel(samples: np.ndarray, sr: int, n_mels: int = 64, n_fft: int = 512, hop: int = 160,
            fmin: float = 0.0, fmax: float | None = None, eps: float = 1e-6) -> np.ndarray:
    """Log-mel power spectrogram ``(n_mels, T)`` float32: ``ln(mel_power + eps)``.

    ``T = 1 + N // hop`` (centered frames; at 16 kHz hop 160 = 10 ms). Written in numpy/scipy on
    purpose: torchaudio is not used because its wheels pin a different torch than the package's.
    """
    power = stft_mag(samples, n_fft, hop) ** 2
    mel = mel_filterbank(int(sr), n_fft, n_mels, fmin, fmax) @ power
    return np.log(mel + eps).astype(np.float32)
