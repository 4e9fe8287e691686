"""Datasets (BCCD VOC, simulator fields, self-made smoke-test fields), augmentation and CenterNet targets."""
import csv
import glob
import json
import logging
import math
import os
import xml.etree.ElementTree as ET

import cv2
import numpy as np

from cellnet import CLASSES, SUBTYPES, STRIDE, SIZE_UNIT

log = logging.getLogger("cellnet")
cv2.setNumThreads(1)

CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}
SUBTYPE_INDEX = {s: i for i, s in enumerate(SUBTYPES)}
WBC = CLASS_INDEX["WBC"]
# Labels a detector box may carry in source annotations -> (class index, subtype index or -1)
LABEL_MAP = {"wbc": (WBC, -1), "rbc": (CLASS_INDEX["RBC"], -1), "platelets": (CLASS_INDEX["Platelets"], -1),
             "platelet": (CLASS_INDEX["Platelets"], -1), "erythrocyte": (CLASS_INDEX["RBC"], -1)}
for _s in SUBTYPES:
    LABEL_MAP[_s] = (WBC, SUBTYPE_INDEX[_s])
# Marrow-only white cells: a WBC whose subtype is not one of the five.
for _s in ("plasma cell", "plasmacell", "plasma_cell", "megakaryocyte"):
    LABEL_MAP[_s] = (WBC, -1)


class Sample:
    """One annotated image: RGB uint8 array, boxes [n,4] float (x1,y1,x2,y2), classes [n], subtypes [n]."""

    def __init__(self, name, image, boxes, classes, subtypes, source):
        self.name, self.image, self.source = name, image, source
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.classes = np.asarray(classes, np.int64)
        self.subtypes = np.asarray(subtypes, np.int64)


def read_rgb(path):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise IOError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def parse_voc(xml_path):
    root = ET.parse(xml_path).getroot()
    objs = []
    for o in root.findall("object"):
        b = o.find("bndbox")
        box = [float(b.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]
        objs.append((o.find("name").text.strip(), box))
    return root.findtext("filename"), objs


def load_bccd(root, split, with_subtypes=True):
    ids = [l.strip() for l in open(os.path.join(root, "ImageSets", "Main", f"{split}.txt")) if l.strip()]
    subtype_of = {}
    if with_subtypes:
        with open(os.path.join(root, "wbc_subtypes.csv")) as f:
            for row in csv.DictReader(f):
                subtype_of[row["image"]] = SUBTYPE_INDEX[row["subtype"].strip().lower()]
    samples = []
    for i in ids:
        _, objs = parse_voc(os.path.join(root, "Annotations", i + ".xml"))
        boxes, classes, subs = [], [], []
        for name, (x1, y1, x2, y2) in objs:
            if x2 - x1 < 2 or y2 - y1 < 2:
                log.warning("BCCD %s: skipping degenerate %s box (%g,%g,%g,%g)", i, name, x1, y1, x2, y2)
                continue
            key = name.lower()
            if key not in LABEL_MAP:
                log.warning("BCCD %s: unknown label %r skipped", i, name)
                continue
            c, s = LABEL_MAP[key]
            boxes.append([x1 - 1, y1 - 1, x2, y2])  # VOC is 1-based inclusive
            classes.append(c)
            subs.append(s)
        if i in subtype_of:
            wbc = [k for k, c in enumerate(classes) if c == WBC]
            if len(wbc) == 1:
                subs[wbc[0]] = subtype_of[i]
            else:
                log.warning("BCCD %s: subtype given but %d WBC boxes; subtype not used", i, len(wbc))
        img = read_rgb(os.path.join(root, "JPEGImages", i + ".jpg"))
        samples.append(Sample(i, img, boxes, classes, subs, "bccd"))
    return samples


def load_synth(root):
    """Simulator fields. Accepts VOC layout (Annotations/*.xml + JPEGImages/ or images beside the XML)
    or a JSON file per image ({"image": ..., "cells": [{"label"/"type": ..., "box": [x1,y1,x2,y2]}]})."""
    samples = []
    xmls = sorted(glob.glob(os.path.join(root, "**", "*.xml"), recursive=True))
    jsons = sorted(p for p in glob.glob(os.path.join(root, "**", "*.json"), recursive=True)
                   if os.path.basename(p) not in ("manifest.json", "summary.json"))
    unknown = {}
    for p in xmls:
        fname, objs = parse_voc(p)
        stem = os.path.splitext(os.path.basename(p))[0]
        cands = [os.path.join(os.path.dirname(p), fname or ""), os.path.join(root, "JPEGImages", fname or ""),
                 *glob.glob(os.path.join(root, "**", stem + ".png"), recursive=True),
                 *glob.glob(os.path.join(root, "**", stem + ".jpg"), recursive=True)]
        img_path = next((c for c in cands if fname is not None and os.path.isfile(c)), None)
        if img_path is None:
            log.warning("synth %s: image not found", p)
            continue
        samples.append(_make_synth(stem, read_rgb(img_path), objs, unknown))
    if not xmls:
        for p in jsons:
            d = json.load(open(p))
            img_rel = d.get("image") or d.get("file") or d.get("filename")
            if img_rel is None:
                continue
            img_path = img_rel if os.path.isabs(img_rel) else os.path.join(os.path.dirname(p), img_rel)
            objs = []
            for c in d.get("cells") or d.get("objects") or []:
                label = c.get("label") or c.get("type") or c.get("name")
                b = c.get("box") or c.get("bbox")
                if isinstance(b, dict):
                    b = [b.get("x1", b.get("x")), b.get("y1", b.get("y")),
                         b.get("x2", b.get("x", 0) + b.get("width", 0)), b.get("y2", b.get("y", 0) + b.get("height", 0))]
                objs.append((label, [float(v) for v in b]))
            samples.append(_make_synth(os.path.basename(p), read_rgb(img_path), objs, unknown, zero_based=True))
    for k, v in unknown.items():
        log.warning("synth: unknown label %r (%d boxes) skipped", k, v)
    return samples


def _make_synth(name, img, objs, unknown, zero_based=False):
    boxes, classes, subs = [], [], []
    for label, (x1, y1, x2, y2) in objs:
        key = str(label).strip().lower()
        if key not in LABEL_MAP:
            unknown[key] = unknown.get(key, 0) + 1
            continue
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        c, s = LABEL_MAP[key]
        boxes.append([x1, y1, x2, y2] if zero_based else [x1 - 1, y1 - 1, x2, y2])
        classes.append(c)
        subs.append(s)
    return Sample(name, img, boxes, classes, subs, "synth")


# ------------------------------------------------------------------------------ self-made smoke fields
def make_toy_field(rng, w=256, h=192):
    """A crude stained-smear field drawn with OpenCV (no dataset needed): pink RBC discs with pale centres,
    a purple-nucleated WBC, small purple platelets. Used by the smoke test only."""
    bg = np.array([235, 215, 225], np.float32) + rng.normal(0, 4, 3)
    img = np.ones((h, w, 3), np.float32) * bg
    boxes, classes, subs = [], [], []
    for _ in range(rng.integers(4, 9)):
        r = rng.uniform(12, 18)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        cv2.circle(img, (int(cx), int(cy)), int(r), (215, 120, 130), -1, cv2.LINE_AA)
        cv2.circle(img, (int(cx), int(cy)), int(r * 0.45), (228, 170, 178), -1, cv2.LINE_AA)
        boxes.append([cx - r, cy - r, cx + r, cy + r]); classes.append(CLASS_INDEX["RBC"]); subs.append(-1)
    r = rng.uniform(20, 28)
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    cv2.circle(img, (int(cx), int(cy)), int(r), (200, 170, 210), -1, cv2.LINE_AA)
    st = int(rng.integers(0, len(SUBTYPES)))
    lobes = [1, 2, 2, 1, 1][st]
    for k in range(lobes):
        cv2.ellipse(img, (int(cx + (k - 0.5 * (lobes - 1)) * r * 0.5), int(cy)), (int(r * 0.45), int(r * 0.6)),
                    0, 0, 360, (90 + 30 * st, 40, 140), -1, cv2.LINE_AA)
    boxes.append([cx - r, cy - r, cx + r, cy + r]); classes.append(WBC); subs.append(st)
    for _ in range(rng.integers(1, 3)):
        r = rng.uniform(4, 6)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        cv2.circle(img, (int(cx), int(cy)), int(r), (120, 60, 160), -1, cv2.LINE_AA)
        boxes.append([cx - r, cy - r, cx + r, cy + r]); classes.append(CLASS_INDEX["Platelets"]); subs.append(-1)
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return Sample("toy", img, boxes, classes, subs, "toy")


# ----------------------------------------------------------------------------------------- augmentation
def _hsv_stain_jitter(img, rng, strength):
    x = img.astype(np.float32) / 255.0
    # stain: per-channel optical-density scaling (Beer-Lambert), models stain intensity/hue differences
    od = -np.log(np.clip(x, 1 / 255.0, 1.0))
    od *= rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength, 3).astype(np.float32)
    od += rng.uniform(-0.05, 0.05, 3).astype(np.float32) * strength
    x = np.exp(-np.clip(od, 0, None))
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # float: H in 0..360
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-12, 12) * strength) % 360.0
    hsv[..., 1] *= rng.uniform(1 - 0.35 * strength, 1 + 0.35 * strength)
    x = cv2.cvtColor(np.clip(hsv, 0, [360, 1, 1]).astype(np.float32), cv2.COLOR_HSV2RGB)
    # illumination: brightness, contrast, gamma, white balance (lamp colour), smooth vignetting/gradient
    x = x * rng.uniform(1 - 0.3 * strength, 1 + 0.2 * strength)
    m = x.mean()
    x = (x - m) * rng.uniform(1 - 0.35 * strength, 1 + 0.35 * strength) + m
    x = np.clip(x, 0, 1) ** rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength)
    x = x * rng.uniform(1 - 0.08 * strength, 1 + 0.08 * strength, 3).astype(np.float32)
    if rng.random() < 0.4:
        h, w = x.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        if rng.random() < 0.5:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            d = ((xx - cx) ** 2 + (yy - cy) ** 2) / float(w * w + h * h)
            g = 1 - rng.uniform(0.1, 0.5) * strength * d * 2
        else:
            a = rng.uniform(0, 2 * math.pi)
            g = 1 + rng.uniform(-0.2, 0.2) * strength * ((xx - w / 2) * math.cos(a) + (yy - h / 2) * math.sin(a)) / max(w, h)
        x = x * g[..., None]
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def _blur_noise(img, rng, strength):
    if rng.random() < 0.3:
        s = rng.uniform(0.3, 1.6) * strength
        img = cv2.GaussianBlur(img, (0, 0), s)
    if rng.random() < 0.3:
        noise = rng.normal(0, rng.uniform(2, 9) * strength, img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:
        q = int(rng.uniform(35, 85))
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
    return img


def augment(sample, rng, crop_w, crop_h, scale_range=(0.6, 1.5), colour=1.0, min_visible=0.45, edge_snap=0.0):
    """Random scale, rot90/flips, random crop (black pad bottom/right like the service), colour/stain/
    illumination, blur/noise. Returns image, boxes, classes, subtypes, ignore boxes (partly cut cells).

    min_visible (one value or one per class): a cell cut by the crop window stays a positive (with its
    clipped box) when at least this fraction of its box is inside; smaller remnants become "ignore" regions. Cells cut by the image's own
    frame keep whatever label the dataset gave them. edge_snap: per axis, the probability that the crop
    starts or ends at the image's own edge, so the dataset's labelling of frame-cut cells is seen often."""
    img = sample.image
    boxes = sample.boxes.copy()
    s = math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
    sx = s * rng.uniform(0.93, 1.07)  # mild anisotropy: slightly different pixel aspect / cell shapes
    sy = s * rng.uniform(0.93, 1.07)
    h0, w0 = img.shape[:2]
    nw, nh = max(8, int(round(w0 * sx))), max(8, int(round(h0 * sy)))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    boxes *= np.array([nw / w0, nh / h0, nw / w0, nh / h0], np.float32)
    k = int(rng.integers(0, 4))
    for _ in range(k):  # rotate 90 deg counter-clockwise
        H, W = img.shape[:2]
        img = np.ascontiguousarray(np.rot90(img))
        boxes = np.stack([boxes[:, 1], W - boxes[:, 2], boxes[:, 3], W - boxes[:, 0]], 1)
    if rng.random() < 0.5:
        W = img.shape[1]
        img = img[:, ::-1]
        boxes = np.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], 1)
    H, W = img.shape[:2]
    # crop window (may extend beyond the image: padded black, as the service pads bottom/right)
    x0 = int(rng.integers(0, max(1, W - crop_w + 1))) if W > crop_w else 0
    y0 = int(rng.integers(0, max(1, H - crop_h + 1))) if H > crop_h else 0
    if edge_snap > 0:
        if W > crop_w and rng.random() < edge_snap:
            x0 = 0 if rng.random() < 0.5 else W - crop_w
        if H > crop_h and rng.random() < edge_snap:
            y0 = 0 if rng.random() < 0.5 else H - crop_h
    out = np.zeros((crop_h, crop_w, 3), np.uint8)
    patch = img[y0:y0 + crop_h, x0:x0 + crop_w]
    out[:patch.shape[0], :patch.shape[1]] = patch
    vis_w, vis_h = patch.shape[1], patch.shape[0]
    b = boxes - np.array([x0, y0, x0, y0], np.float32)
    area = np.maximum(b[:, 2] - b[:, 0], 1e-3) * np.maximum(b[:, 3] - b[:, 1], 1e-3)
    c = b.copy()
    c[:, [0, 2]] = np.clip(c[:, [0, 2]], 0, vis_w)
    c[:, [1, 3]] = np.clip(c[:, [1, 3]], 0, vis_h)
    carea = np.maximum(c[:, 2] - c[:, 0], 0) * np.maximum(c[:, 3] - c[:, 1], 0)
    frac = carea / area
    # BCCD labels cells cut by the frame edge with their visible box: keep clipped boxes that show enough
    mv = np.asarray(min_visible, np.float32)  # one value, or one per class
    keep = frac >= (mv[sample.classes] if mv.ndim else mv)
    ignore = (frac > 0.02) & ~keep
    out = _hsv_stain_jitter(out, rng, colour) if colour > 0 else out
    out = _blur_noise(out, rng, colour) if colour > 0 else out
    if vis_w < crop_w or vis_h < crop_h:  # re-black the padding after photometric changes
        out[vis_h:, :] = 0
        out[:, vis_w:] = 0
    return out, c[keep], sample.classes[keep], sample.subtypes[keep], (c[ignore], sample.classes[ignore])


# ------------------------------------------------------------------------------------- target encoding
def _gaussian_2d(shape_h, shape_w, sx, sy):
    y = np.arange(-shape_h, shape_h + 1, dtype=np.float32)[:, None]
    x = np.arange(-shape_w, shape_w + 1, dtype=np.float32)[None, :]
    return np.exp(-(x * x) / (2 * sx * sx) - (y * y) / (2 * sy * sy))


def encode_targets(boxes, classes, subtypes, ignore, out_h, out_w, num_classes=len(CLASSES), alpha=0.54):
    """Dense CenterNet targets at stride 4 with TTFNet-style elliptical Gaussians (sigma = alpha*side/6)."""
    hm = np.zeros((num_classes, out_h, out_w), np.float32)
    negw = np.ones((num_classes, out_h, out_w), np.float32)
    size = np.zeros((2, out_h, out_w), np.float32)
    off = np.zeros((2, out_h, out_w), np.float32)
    mask = np.zeros((1, out_h, out_w), np.float32)
    sub = np.full((out_h, out_w), -1, np.int64)
    ib, ic = ignore
    for (x1, y1, x2, y2), c in zip(ib, ic):
        a, b_ = int(max(0, x1 // STRIDE)), int(max(0, y1 // STRIDE))
        negw[c, b_:int(math.ceil(y2 / STRIDE)), a:int(math.ceil(x2 / STRIDE))] = 0.0
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) if len(boxes) else []
    for k in order:  # large first so small cells' centres win collisions
        x1, y1, x2, y2 = boxes[k]
        c = int(classes[k])
        bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < out_w and 0 <= iy < out_h):
            continue
        sx, sy = max(alpha * bw / 6, 0.6), max(alpha * bh / 6, 0.6)
        rx, ry = int(3 * sx) + 1, int(3 * sy) + 1
        g = _gaussian_2d(ry, rx, sx, sy)
        l, r = min(ix, rx), min(out_w - ix, rx + 1)
        t, bt = min(iy, ry), min(out_h - iy, ry + 1)
        region = hm[c, iy - t:iy + bt, ix - l:ix + r]
        np.maximum(region, g[ry - t:ry + bt, rx - l:rx + r], out=region)
        hm[c, iy, ix] = 1.0
        size[:, iy, ix] = np.log(np.maximum([x2 - x1, y2 - y1], 1.0) / SIZE_UNIT)
        off[:, iy, ix] = (cx - ix, cy - iy)
        mask[0, iy, ix] = 1.0
        if c == WBC and subtypes[k] >= 0:
            # the subtype is read at whichever peak cell wins: teach the 3x3 around the centre
            sub[max(0, iy - 1):iy + 2, max(0, ix - 1):ix + 2] = int(subtypes[k])
    return {"heatmap": hm, "neg_weight": negw, "size": size, "offset": off, "reg_mask": mask, "subtype": sub}


def rescale_sample(s, scale):
    """The sample as the service would see it after its pixel-scale resize (camera µm/px ÷ model µm/px)."""
    if scale == 1.0:
        return s
    img = cv2.resize(s.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return Sample(s.name, img, s.boxes * scale, s.classes, s.subtypes, s.source)


def image_to_tensor_array(img_rgb):
    return np.ascontiguousarray(img_rgb.transpose(2, 0, 1)).astype(np.float32) / 255.0
