"""Ad-hoc probe (not part of the package): how much of the target's material can the plan-start
wrist-camera view tell at all? This bounds the material accuracy any predictor can reach from
the scene, whatever its sampler.

For every contact motion (a path window whose target has a material and at least one true
contact), at the path point of its first contact (ground truth only to pick the point):
  crop  - the predictor's own local view there (16 px, ``models.predictor.local_views``):
          mean/std colour of the crop and of its centre;
  look  - the look statistics (``models.look_match.look_features``, 31 numbers) of the automatic
          object segment (``automask.object_segments`` at 128 px, fingers cut out from the plan-
          start TCP pose) nearest that point's projection.
A softmax-linear classifier is fitted on the training folders' windows whose episode holds no
held-out material:shape combination and scored on the held-out-combination windows of the
training folders ('unseen'), ``data/sim/test`` and ``data/sim/test_amb``. Chance: 1/8.

    OMP_NUM_THREADS=1 .venv/bin/python docs/probes/predictor_view_material_probe.py
"""
import cv2
import numpy as np
import torch
from tqdm import tqdm

from hearing_hands_ros import automask as A
from hearing_hands_ros.data import predictor_dataset as D
from hearing_hands_ros.data.bags import TopicNames, list_episodes, read_episode
from hearing_hands_ros.images import matrix_to_quat, project_points
from hearing_hands_ros.models import predictor as P
from hearing_hands_ros.models.look_match import look_features
from hearing_hands_ros.train.predictor import DEFAULT_HOLDOUT

L = 128
cv2.setNumThreads(1)
torch.set_num_threads(1)


def episode_rows(bag):
    ep = read_episode(bag, TopicNames())
    truth = ep.truth
    unseen = bool({f"{o['material']}:{o['shape']}" for o in truth['objects']} & set(DEFAULT_HOLDOUT))
    ext = truth['camera']['T_tcp_camera']
    T_tcp_camera = (ext['position'], ext['orientation'])
    h, w = ep.images[0].shape[:2]
    K = P.scale_intrinsics(np.asarray(ep.camera_info['K']).reshape(3, 3), (w, h), (L, L))
    table = A.TableModel.fit(np.stack([cv2.resize(f, (L, L), interpolation=cv2.INTER_AREA)
                                       for f in ep.images[::10]]))
    d = D.episode_windows(ep, P.PredictorConfig())
    rows = []
    for i, m in enumerate(d.meta):
        if m['material'] == D.NO_MATERIAL or not m['contacts']:
            continue
        k = min(int(m['contacts'][0]['time'] * 100), int(d.valid[i]) - 1)
        crop = d.crops[i, min(k // 20, d.crops.shape[1] - 1)].astype(np.float32) / 255
        crop_f = np.concatenate([crop.mean((1, 2)), crop.std((1, 2)),
                                 crop[:, 4:12, 4:12].mean((1, 2)), crop[:, 4:12, 4:12].std((1, 2))])
        j = int(np.searchsorted(ep.image_stamps_ns, m['start_ns'], side='right')) - 1
        rgb = cv2.resize(ep.images[max(j, 0)], (L, L), interpolation=cv2.INTER_AREA)
        f = d.traj[i]
        R = np.stack([f[0, 3:6], f[0, 6:9], np.cross(f[0, 3:6], f[0, 6:9])], 1).astype(float)
        grip = A.gripper_pixels((f[0, :3].astype(float), matrix_to_quat(R)), T_tcp_camera, K,
                                float(f[0, 15]), (L, L))
        seg = A.object_segments(rgb, table, grip, A.min_segment_px(L))
        (u, v), = project_points(f[k:k + 1, :3], P.camera_pose_at_start(f, T_tcp_camera), K)[0]
        best, dist = 0, np.inf
        for s in range(1, int(seg.max()) + 1):
            ys, xs = np.nonzero(seg == s)
            dd = np.hypot(xs - u, ys - v).min() if len(xs) else np.inf
            if dd < dist:
                best, dist = s, dd
        look = look_features(rgb, seg == best) if best else None
        rows.append((m['material'], unseen, crop_f, look))
    return rows


def accuracy(train, tests, key):
    Xtr = np.stack([r[key] for r in train])
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    classes = sorted({r[0] for r in train})
    y = torch.tensor([classes.index(r[0]) for r in train])
    torch.manual_seed(0)
    lin = torch.nn.Linear(Xtr.shape[1], len(classes))
    opt = torch.optim.Adam(lin.parameters(), 1e-2, weight_decay=1e-3)
    X = torch.tensor((Xtr - mu) / sd, dtype=torch.float32)
    for _ in range(800):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(X), y).backward()
        opt.step()
    out = []
    for rows in tests:
        Xt = torch.tensor((np.stack([r[key] for r in rows]) - mu) / sd, dtype=torch.float32)
        pred = lin(Xt).argmax(1).numpy()
        out.append(float(np.mean([classes[p] == r[0] for p, r in zip(pred, rows)])))
    return out


def main():
    sets = {}
    for name, folders in [('train', ['data/sim/train', 'data/sim/train_amb', 'data/sim/train_more']),
                          ('test', ['data/sim/test']), ('test_amb', ['data/sim/test_amb'])]:
        rows = []
        for bag in tqdm(list_episodes(folders), desc=name):
            rows += episode_rows(bag)
        sets[name] = [r for r in rows if r[3] is not None]
    seen = [r for r in sets['train'] if not r[1]]
    tests = [[r for r in sets['train'] if r[1]], sets['test'], sets['test_amb']]
    print(f'windows: train {len(seen)}, unseen {len(tests[0])}, test {len(tests[1])}, '
          f'test_amb {len(tests[2])}')
    for key, name in ((2, 'crop colour'), (3, 'segment look')):
        acc = accuracy(seen, tests, key)
        print(f'{name:13s} unseen {acc[0]:.3f}  test {acc[1]:.3f}  test_amb {acc[2]:.3f}')


if __name__ == '__main__':
    main()
