"""Picture report of recorded episodes: what the wrist camera saw and heard at each contact.

``write_report(episode_dirs, out_dir)`` writes, per episode,

* ``<name>_frames.png``: a contact sheet of wrist-camera frames nearest to the ground-truth
  contacts, each with the contact position projected into the image (cross) and the outlines of
  the touched objects from the ground-truth instance labels;
* ``<name>_spectrogram.png``: the log-mel spectrogram of the microphone with a line per
  ground-truth contact, labelled with its materials;

plus ``report.md`` and ``report.html`` with a table of episodes and contacts linking the PNGs.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

os.environ.setdefault('MPLBACKEND', 'Agg')
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from hearing_hands_ros import audio as A  # noqa: E402
from hearing_hands_ros import images as I  # noqa: E402
from hearing_hands_ros.data.bags import read_episode  # noqa: E402

NS = 1_000_000_000
MAX_FRAMES = 12          # frames per contact sheet
COLS = 4


def _contact_ns(contact: dict, start_ns: int) -> int:
    return int(contact.get('stamp_ns') or start_ns + round(float(contact['time']) * NS))


def _label(contact: dict) -> str:
    mats = [m for m in contact.get('materials', []) if m]
    return '/'.join(mats) or contact.get('kind', 'contact')


def _camera_pose(ep, frame: int, t_ns: int):
    """Camera pose in world at image ``frame``: recorded with the masks, else TCP pose + mount."""
    if ep.camera_positions is not None and frame < len(ep.camera_positions) \
            and np.all(np.isfinite(ep.camera_positions[frame])):
        return ep.camera_positions[frame], ep.camera_orientations[frame]
    mount = ((ep.truth or {}).get('camera') or {}).get('T_tcp_camera')
    if mount is None or len(ep.pose_stamps_ns) == 0:
        return None
    i = int(np.argmin(np.abs(ep.pose_stamps_ns - t_ns)))
    return I.compose_poses((ep.positions[i], ep.orientations[i]),
                           (mount['position'], mount['orientation']))


def contact_sheet(ep, contacts: list[dict], start_ns: int, path: Path) -> Path:
    """Grid of frames nearest to ``contacts`` (evenly chosen if more than ``MAX_FRAMES``)."""
    truth = ep.truth or {}
    K = (truth.get('camera') or {}).get('K') or (ep.camera_info or {}).get('K')
    if len(contacts) > MAX_FRAMES:
        contacts = [contacts[i] for i in np.linspace(0, len(contacts) - 1, MAX_FRAMES).round().astype(int)]
    n_img = len(ep.images)
    if contacts:
        items = [(c, _contact_ns(c, start_ns)) for c in contacts]
    else:  # no contacts: evenly spaced frames
        picks = np.linspace(0, max(n_img - 1, 0), min(MAX_FRAMES, n_img)).round().astype(int)
        items = [(None, int(ep.image_stamps_ns[i])) for i in picks]
    cols = min(COLS, max(len(items), 1))
    rows = max(1, -(-len(items) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, (contact, t_ns) in zip(axes.flat, items):
        if n_img == 0:
            continue
        i = int(np.argmin(np.abs(ep.image_stamps_ns - t_ns)))
        ax.imshow(ep.images[i], interpolation='nearest')
        t = (t_ns - start_ns) / NS
        ax.set_title(f't={t:.2f}s' + (f'\n{_label(contact)} {contact.get("kind", "")}'
                                      if contact else ''), fontsize=8)
        if contact is None:
            continue
        if ep.labels is not None and len(ep.labels):
            j = int(np.argmin(np.abs(ep.label_stamps_ns - t_ns)))
            for oid in contact.get('objects', []):
                if oid is not None and oid >= 1 and np.any(ep.labels[j] == oid):
                    ax.contour(ep.labels[j] == oid, levels=[0.5], colors=['yellow'], linewidths=1)
        pose = _camera_pose(ep, i, t_ns)
        if K is not None and pose is not None and contact.get('position') is not None:
            uv, depth = I.project_points(np.asarray(contact['position'])[None], pose, K)
            u, v = uv[0]
            if depth[0] > 0 and np.isfinite(u):
                h, w = ep.images[i].shape[:2]
                inside = 0 <= u < w and 0 <= v < h
                ax.plot([np.clip(u, 0, w - 1)], [np.clip(v, 0, h - 1)], marker='x' if inside else '>',
                        color='red', markersize=10, markeredgewidth=2)
        ax.set_xlim(-0.5, ep.images[i].shape[1] - 0.5)
        ax.set_ylim(ep.images[i].shape[0] - 0.5, -0.5)
    fig.suptitle(f'{ep.path.name}: wrist camera at contacts (x = contact, outline = touched object)',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _color_range(mel: np.ndarray) -> tuple[float, float]:
    """Colour limits of a log-mel picture: contacts are short, so most of it is the microphone's
    noise floor and a min..max (or 5th percentile..max) scale leaves it nearly black. The median
    (the floor) is black and the 99.5th percentile saturates, so decays and scrapes stand out;
    at least 3 (ln units, 13 dB) apart so a silent episode's noise is not blown up."""
    vmin = float(np.percentile(mel, 50))
    vmax = max(float(np.percentile(mel, 99.5)), vmin + 3.0)
    return vmin, vmax


def spectrogram(ep, contacts: list[dict], start_ns: int, path: Path) -> Path:
    """Log-mel spectrogram with a vertical line per contact, labelled with its materials."""
    sr = ep.sample_rate
    hop = max(1, sr // 100)
    mel = A.log_mel(ep.audio, sr, hop=hop, n_fft=1 << int(np.ceil(np.log2(sr * 0.032)))) \
        if len(ep.audio) else np.zeros((64, 1), np.float32)
    t0 = ((ep.audio_start_ns or start_ns) - start_ns) / NS
    t1 = t0 + max(len(ep.audio), 1) / sr
    fig, ax = plt.subplots(figsize=(12, 3.6))
    vmin, vmax = _color_range(mel)
    ax.imshow(mel, origin='lower', aspect='auto', extent=(t0, t1, 0, mel.shape[0]),
              cmap='magma', vmin=vmin, vmax=vmax)
    times = [(_contact_ns(c, start_ns) - start_ns) / NS for c in contacts]
    for t, c in zip(times, contacts):
        ax.axvline(t, color='cyan', linestyle='-' if c.get('kind', 'impact') == 'impact' else '--',
                   linewidth=0.9)
        if c.get('duration'):
            ax.axvspan(t, t + float(c['duration']), color='cyan', alpha=0.12)
    # one label per cluster of nearby contacts, so labels do not pile up
    gap = max(t1 - t0, 1e-3) / 25
    clusters: list[list[int]] = []
    for k, t in enumerate(times):
        if clusters and t - times[clusters[-1][-1]] < gap:
            clusters[-1].append(k)
        else:
            clusters.append([k])
    for n, cluster in enumerate(clusters):
        labels = list(dict.fromkeys(_label(contacts[k]) for k in cluster))
        text = '\n'.join(labels[:4] + (['...'] if len(labels) > 4 else []))
        if len(cluster) > 1:
            text += f'\n({len(cluster)} contacts)'
        ax.text(times[cluster[0]], mel.shape[0] * (0.97 - 0.3 * (n % 2)), ' ' + text, color='white',
                fontsize=7, va='top', bbox=dict(facecolor='black', alpha=0.45, pad=1, linewidth=0))
    ax.set_xlabel('episode time [s]')
    ax.set_ylabel('mel band')
    ax.set_title(f'{ep.path.name}: microphone log-mel ({sr} Hz); lines = ground-truth contacts '
                 '(solid impact, dashed scrape)', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _materials(truth: dict) -> str:
    objs = truth.get('objects', [])
    return ', '.join(f'{o.get("id")}: {o.get("material")} {o.get("shape")}' for o in objs)


def write_report(episode_dirs, out_dir) -> Path:
    """Write contact sheets, spectrograms, ``report.md`` and ``report.html``; returns report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, sections = [], []
    for bag in map(Path, episode_dirs):
        ep = read_episode(bag)
        truth = ep.truth or {}
        contacts = sorted(truth.get('contacts', []), key=lambda c: c.get('time', 0.0))
        start_ns = int(truth.get('start_time_ns') or
                       (ep.image_stamps_ns[0] if len(ep.image_stamps_ns) else ep.audio_start_ns or 0))
        name = bag.name
        sheet = contact_sheet(ep, contacts, start_ns, out / f'{name}_frames.png')
        spec = spectrogram(ep, contacts, start_ns, out / f'{name}_spectrogram.png')
        duration = truth.get('duration') or len(ep.audio) / max(ep.sample_rate, 1)
        rows.append(dict(name=name, scenario=truth.get('scenario', '?'), seed=truth.get('seed', '?'),
                         duration=float(duration), frames=len(ep.images), contacts=len(contacts),
                         objects=_materials(truth)))
        sections.append(dict(name=name, sheet=sheet.name, spec=spec.name, bag=os.path.relpath(bag, out),
                             contacts=contacts, objects=_materials(truth)))
    md = out / 'report.md'
    md.write_text(_markdown(rows, sections))
    (out / 'report.html').write_text(_html(rows, sections))
    return md


def _contact_cells(c: dict) -> list[str]:
    return [f'{float(c.get("time", 0)):.3f}', str(c.get('kind', '')), _label(c),
            ', '.join(map(str, c.get('objects', []))), f'{float(c.get("impulse", 0) or 0):.3g}',
            f'{float(c.get("duration", 0) or 0):.2f}']


CONTACT_HEAD = ['time [s]', 'kind', 'materials', 'objects', 'impulse [N s]', 'duration [s]']
EPISODE_HEAD = ['episode', 'scenario', 'seed', 'duration [s]', 'frames', 'contacts', 'objects']


def _markdown(rows, sections) -> str:
    def table(head, body):
        return '\n'.join(['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
                         + ['| ' + ' | '.join(r) + ' |' for r in body])
    lines = ['# hearing_hands_ros: episode report', '',
             'Wrist-camera frames at the ground-truth contacts (red x: contact point projected '
             'with the camera intrinsics and pose; yellow: outline of the touched object) and the '
             'microphone spectrogram with the contacts marked.', '',
             table(EPISODE_HEAD, [[f'[{r["name"]}](#{r["name"]})', str(r['scenario']), str(r['seed']),
                                   f'{r["duration"]:.1f}', str(r['frames']), str(r['contacts']),
                                   r['objects']] for r in rows]), '']
    for s in sections:
        lines += [f'## {s["name"]}', '', f'Bag: `{s["bag"]}`. Objects: {s["objects"]}.', '',
                  f'![frames]({s["sheet"]})', '', f'![spectrogram]({s["spec"]})', '',
                  table(CONTACT_HEAD, [_contact_cells(c) for c in s['contacts']]) if s['contacts']
                  else '_No contacts._', '']
    return '\n'.join(lines)


def _html(rows, sections) -> str:
    e = html.escape

    def table(head, body):
        return ('<table><tr>' + ''.join(f'<th>{e(h)}</th>' for h in head) + '</tr>'
                + ''.join('<tr>' + ''.join(f'<td>{c}</td>' for c in r) + '</tr>' for r in body)
                + '</table>')
    parts = ['<!doctype html><html><head><meta charset="utf-8"><title>hearing_hands_ros report</title>',
             '<style>body{font-family:sans-serif;max-width:1200px;margin:auto}img{max-width:100%}'
             'table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>',
             '</head><body><h1>hearing_hands_ros: episode report</h1>',
             table(EPISODE_HEAD, [[f'<a href="#{e(r["name"])}">{e(r["name"])}</a>', e(str(r['scenario'])),
                                   e(str(r['seed'])), f'{r["duration"]:.1f}', str(r['frames']),
                                   str(r['contacts']), e(r['objects'])] for r in rows])]
    for s in sections:
        parts += [f'<h2 id="{e(s["name"])}">{e(s["name"])}</h2>',
                  f'<p>Bag: <code>{e(s["bag"])}</code>. Objects: {e(s["objects"])}.</p>',
                  f'<img src="{e(s["sheet"])}" alt="frames"><br><img src="{e(s["spec"])}" alt="spectrogram">',
                  table(CONTACT_HEAD, [[e(x) for x in _contact_cells(c)] for c in s['contacts']])
                  if s['contacts'] else '<p>No contacts.</p>']
    parts.append('</body></html>')
    return '\n'.join(parts)
