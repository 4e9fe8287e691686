#!/usr/bin/python3
"""Partial-label helpers made once with a reference model (the previously shipped CellNet), cached as JSON.

Some training sources label only part of what is in their images:
- BCCD leaves many red cells (and some platelets) without a box, most of them cut by its frame edge;
- Chula RBC-12 marks only the red cells picked for its morphology study (3 of ~70 in some images);
- PBC crops name the class of the centred cell and give no box at all.

An unlabelled cell must never be taught as background. So the reference model's confident detections that no
label explains become *ignore* regions for their class (no loss either way), and the PBC centre cell gets the
reference model's box (or, for platelets, a box from a stain threshold). Nothing here becomes a positive that the
dataset did not name: ignore regions only remove loss, and a centre box only places the dataset's own label.

    /usr/bin/python3 models/training/pseudo.py --config models/training/configs/v2.json
writes models/training/pseudo/<source>.json (committed, so a rerun of the recipe does not depend on which model
is shipped at the time). Keys: image id -> {"ignore": [[x1, y1, x2, y2, class], ...], "centre": [x1, y1, x2, y2]}
in the source image's own pixels.
"""
import argparse
import json
import logging
import os
import sys

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

from cellnet import CLASSES, ExportWrapper  # noqa: E402
import data as D  # noqa: E402
import evaluate as E  # noqa: E402
from weights_from_onnx import rebuild  # noqa: E402

log = logging.getLogger("cellnet")
# Reference scores above which an unexplained detection is taken to be a real, unlabelled cell. Low on purpose:
# ignoring a little background costs nothing, teaching a real cell as background costs recall on other labs.
IGNORE_SCORE = {"WBC": 0.3, "RBC": 0.12, "Platelets": 0.2}


def resolve(p):
    return p if os.path.isabs(p) else os.path.join(REPO, p)


def _detect(wrapper, img, scale):
    """Reference detections on img resized by scale, boxes mapped back to img pixels."""
    x = img if scale == 1.0 else cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    p = E.predict(wrapper, x, [min(IGNORE_SCORE.values())] * len(CLASSES))
    boxes = p["boxes"].numpy() / scale
    return boxes, p["scores"].numpy(), p["classes"].numpy()


def unexplained(boxes, scores, classes, labelled_boxes, labelled_classes, points=None):
    """Confident detections that no label of their class explains: IoU < 0.3 with every box of the class, and
    (for point labels) no point of the class inside."""
    out = []
    for b, s, c in zip(boxes, scores, classes):
        if s < IGNORE_SCORE[CLASSES[c]]:
            continue
        same = labelled_boxes[labelled_classes == c]
        if len(same) and E.iou_matrix(b[None], same)[0].max() >= 0.3:
            continue
        if points is not None and len(points):
            inside = (points[:, 0] >= b[0]) & (points[:, 0] <= b[2]) & (points[:, 1] >= b[1]) & (points[:, 1] <= b[3])
            if inside.any():
                continue
        out.append([round(float(v), 1) for v in b] + [int(c)])
    return out


def stain_blob_box(img, near, max_dist):
    """Box of the darkest stained blob nearest `near` (platelets, when the reference model misses them): pixels
    whose green channel is well below the background's, the connected component closest to the centre."""
    g = img[..., 1].astype(np.float32)
    bg = np.percentile(g, 75)
    mask = (g < bg - 0.35 * (bg - g.min())).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab, st, cen = cv2.connectedComponentsWithStats(mask)
    best = None
    for k in range(1, n):
        if st[k, cv2.CC_STAT_AREA] < 30:
            continue
        d = float(np.hypot(*(cen[k] - near)))
        if d <= max_dist and (best is None or d < best[0]):
            best = (d, k)
    if best is None:
        return None
    x, y, w, h = st[best[1], :4]
    return [float(x), float(y), float(x + w), float(y + h)]


def for_voc(wrapper, samples, scale):
    out = {}
    for s in samples:
        boxes, scores, classes = _detect(wrapper, s.image, scale)
        out[s.name] = {"ignore": unexplained(boxes, scores, classes, s.boxes, s.classes)}
    return out


def for_points(wrapper, samples, scale):
    out = {}
    for s in samples:
        boxes, scores, classes = _detect(wrapper, s.image, scale)
        centres = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2
        out[s.name] = {"ignore": unexplained(boxes, scores, classes, np.zeros((0, 4), np.float32),
                                             np.zeros(0, np.int64), points=centres)}
    return out


def for_crops(wrapper, items, scale):
    """items: (name, image, crop class). The centre cell's box; other confident cells become ignore regions."""
    out, missing = {}, 0
    for name, img, cls in items:
        boxes, scores, classes = _detect(wrapper, img, scale)
        h, w = img.shape[:2]
        centre = np.array([w / 2, h / 2], np.float32)
        want = CLASSES.index("Platelets") if cls == "platelet" else CLASSES.index("WBC")
        ctr = (boxes[:, :2] + boxes[:, 2:]) / 2 if len(boxes) else np.zeros((0, 2), np.float32)
        dist = np.hypot(*(ctr - centre).T) if len(boxes) else np.zeros(0)
        box = None
        if cls != "platelet":
            cand = np.where((classes == want) & (dist < 0.18 * min(w, h)) & (scores >= 0.1))[0]
            if len(cand):
                box = boxes[cand[np.argmin(dist[cand])]].tolist()
        else:
            box = stain_blob_box(img, centre, 0.12 * min(w, h))
        if box is None:
            missing += 1
            continue
        ign = [[round(float(v), 1) for v in b] + [int(c)] for b, s, c, d in zip(boxes, scores, classes, dist)
               if s >= IGNORE_SCORE[CLASSES[c]] and E.iou_matrix(np.array([box], np.float32), b[None])[0, 0] < 0.3]
        out[name] = {"centre": [round(float(v), 1) for v in box], "ignore": ign}
    log.info("crops: %d centre boxes, %d crops without one (left out)", len(out), missing)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--reference", default="models/cellnet.onnx", help="one-pass CellNet graph used as the reference")
    ap.add_argument("--reference-config", default="models/training/configs/v2.json", help="a config with its architecture (\"model\"; default CellNet)")
    ap.add_argument("--only", help="comma-separated source names")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(2)
    cfg = json.load(open(resolve(args.config)))
    net = rebuild(resolve(args.reference), json.load(open(resolve(args.reference_config))))
    wrapper = ExportWrapper(net).eval()
    model_mpp = cfg.get("micrometres_per_pixel", 0.1)
    out_dir = resolve(cfg.get("pseudo_dir", "models/training/pseudo"))
    os.makedirs(out_dir, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    for src in cfg["sources"]:
        if not src.get("pseudo") or (only and src["name"] not in only):
            continue
        scale = src["micrometres_per_pixel"] / model_mpp
        kind = src["kind"]
        log.info("source %s (%s): reference at scale %.3f", src["name"], kind, scale)
        if kind == "voc":
            samples = D.load_voc_source(src, all_splits=True)
            res = for_voc(wrapper, samples, scale)
        elif kind == "points":
            samples = D.load_points_source(src, all_splits=True)
            res = for_points(wrapper, samples, scale)
        elif kind == "crops":
            res = for_crops(wrapper, D.iter_crops(src), scale)
        else:
            raise SystemExit(f"source {src['name']}: no partial-label helper for kind {kind}")
        n_ign = sum(len(v.get("ignore", [])) for v in res.values())
        path = os.path.join(out_dir, src["name"] + ".json")
        json.dump({"reference": os.path.relpath(resolve(args.reference), REPO), "ignore_score": IGNORE_SCORE,
                   "scale": scale, "images": res}, open(path, "w"), separators=(",", ":"))
        log.info("  %d images, %d ignore regions -> %s", len(res), n_ign, path)


if __name__ == "__main__":
    main()
