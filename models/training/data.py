"""Training sources (VOC boxes, point labels, single-cell crops, simulator fields), partial labels, augmentation
and CenterNet targets.

Partial labels are handled the same way for every source: a sample names the classes its source labels
(`labelled`); a class it does not label gets no loss at all in that image (no positives, no negatives), and
`ignore` regions (cells present but not labelled, e.g. BCCD's unboxed red cells) take away a class's loss
where they are. Nothing unlabelled is ever taught as background.
"""
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
RBC = CLASS_INDEX["RBC"]
PLATELETS = CLASS_INDEX["Platelets"]
ALL_CLASSES = list(range(len(CLASSES)))
# Labels a detector box may carry in source annotations -> (class index, subtype index or -1)
LABEL_MAP = {"wbc": (WBC, -1), "rbc": (RBC, -1), "platelets": (PLATELETS, -1),
             "platelet": (PLATELETS, -1), "erythrocyte": (RBC, -1)}
for _s in SUBTYPES:
    LABEL_MAP[_s] = (WBC, SUBTYPE_INDEX[_s])
# Marrow-only nucleated cells (the simulator's marrow profile among them): a WBC whose subtype is not one of the
# five. A band neutrophil is left without the neutrophil subtype: the five are the blood differential's, segmented.
for _s in ("plasma cell", "plasmacell", "plasma_cell", "megakaryocyte",
           "erythroblast", "myelocyte", "metamyelocyte", "band_neutrophil", "blast"):
    LABEL_MAP[_s] = (WBC, -1)
# Single-cell crop classes (PBC, LISC) -> what the centred cell teaches the detector: (class, subtype, role).
# An erythroblast is a nucleated red cell: neither a white cell nor a red cell the way the detector counts them,
# so its place is ignored for white cells rather than taught either way.
CROP_CLASSES = {**{s: (WBC, SUBTYPE_INDEX[s], "positive") for s in SUBTYPES},
                "ig": (WBC, -1, "positive"), "erythroblast": (WBC, -1, "ignore"), "platelet": (PLATELETS, -1, "positive")}
PLASMA_CELL_NAMES = ("plasma cell", "plasmacell", "plasma_cell")


def configure_classes(names):
    """The detector's classes (a config's "classes"; default the three blood classes). Extra classes come after
    WBC, RBC, Platelets, e.g. plasma_cell for the marrow model: a plasma cell is then its own class, no longer a
    WBC without subtype. Changes the shared lists in place, before any sample is loaded or network built."""
    names = list(names)
    if names[:3] != ["WBC", "RBC", "Platelets"]:
        raise SystemExit(f"classes must start with WBC, RBC, Platelets (got {names})")
    CLASSES[:] = names
    CLASS_INDEX.clear()
    CLASS_INDEX.update({c: i for i, c in enumerate(CLASSES)})
    ALL_CLASSES[:] = list(range(len(CLASSES)))
    for n in PLASMA_CELL_NAMES:
        LABEL_MAP[n] = (CLASS_INDEX.get("plasma_cell", WBC), -1)


class Sample:
    """One annotated image: RGB uint8 array, boxes [n,4] float (x1,y1,x2,y2), classes [n], subtypes [n].

    labelled: class indices the source labels in this image (default: all); the others get no loss.
    ignore: (boxes [m,4], classes [m]): regions where that class gets no loss (present but unlabelled cells).
    size_known: [n] bool, False where the box is nominal (point labels): no size or offset loss there.
    visible: [n] fraction of each cell inside the image (1 = whole; less for cells cut by the frame).
    points: the labels are points (nominal boxes around them): evaluation asks for the point inside a detection.
    mpp: micrometres per pixel of the image as stored.
    not_at_boxes: classes the source does not label but rules out at its boxes (SegPC: every boxed cell is a plasma
        cell, so not a WBC of the model's other kind); they learn negatives there and nothing elsewhere."""

    def __init__(self, name, image, boxes, classes, subtypes, source, labelled=None, ignore=None, size_known=None,
                 visible=None, points=False, mpp=None, not_at_boxes=()):
        self.name, self.image, self.source = name, image, source
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.classes = np.asarray(classes, np.int64)
        self.subtypes = np.asarray(subtypes, np.int64)
        n = len(self.boxes)
        self.labelled = list(ALL_CLASSES if labelled is None else labelled)
        ib, ic = ignore if ignore is not None else (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
        self.ignore = (np.asarray(ib, np.float32).reshape(-1, 4), np.asarray(ic, np.int64))
        self.size_known = np.ones(n, bool) if size_known is None else np.asarray(size_known, bool)
        self.visible = frame_visible_fraction(self.boxes, image.shape[1], image.shape[0]) if visible is None else np.asarray(visible, np.float32)
        self.points = points
        self.mpp = mpp
        self.not_at_boxes = list(not_at_boxes)


def frame_visible_fraction(boxes, w, h, tol=2.0):
    """Estimated fraction of each cell inside the image. A cell cut by the frame keeps its full extent along the
    cut edge, so its whole size is about its longer side; a box that does not touch the frame is whole."""
    if len(boxes) == 0:
        return np.zeros(0, np.float32)
    bw = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-3)
    bh = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    cut_x = (boxes[:, 0] <= tol) | (boxes[:, 2] >= w - tol)
    cut_y = (boxes[:, 1] <= tol) | (boxes[:, 3] >= h - tol)
    side = np.maximum(bw, bh)
    fw = np.where(cut_x, np.maximum(bw, np.where(cut_y, side, bh)), bw)
    fh = np.where(cut_y, np.maximum(bh, np.where(cut_x, side, bw)), bh)
    return np.clip(bw * bh / (fw * fh), 0.0, 1.0).astype(np.float32)


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


def _split_ids(root, split):
    return [l.strip() for l in open(os.path.join(root, "ImageSets", "Main", f"{split}.txt")) if l.strip()]


def load_voc(root, splits, source="voc", subtypes_csv=None, mpp=None, labelled=None, not_at_boxes=()):
    """A Pascal VOC set (BCCD layout). subtypes_csv (image,subtype): the subtype of the image's single WBC box."""
    subtype_of = {}
    if subtypes_csv:
        with open(subtypes_csv) as f:
            for row in csv.DictReader(f):
                subtype_of[row["image"]] = SUBTYPE_INDEX[row["subtype"].strip().lower()]
    samples = []
    for split in ([splits] if isinstance(splits, str) else splits):
        for i in _split_ids(root, split):
            fname, objs = parse_voc(os.path.join(root, "Annotations", i + ".xml"))
            boxes, classes, subs = [], [], []
            for name, (x1, y1, x2, y2) in objs:
                if x2 - x1 < 2 or y2 - y1 < 2:
                    log.warning("%s %s: skipping degenerate %s box (%g,%g,%g,%g)", source, i, name, x1, y1, x2, y2)
                    continue
                key = name.lower()
                if key not in LABEL_MAP:
                    log.warning("%s %s: unknown label %r skipped", source, i, name)
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
                    log.warning("%s %s: subtype given but %d WBC boxes; subtype not used", source, i, len(wbc))
            img = read_rgb(os.path.join(root, "JPEGImages", fname or i + ".jpg"))
            samples.append(Sample(i, img, boxes, classes, subs, source, labelled=labelled, mpp=mpp, not_at_boxes=not_at_boxes))
    return samples


def load_bccd(root, split, with_subtypes=True):
    """BCCD as it is (its own pixels), e.g. for robustness.py."""
    return load_voc(root, split, "bccd", os.path.join(root, "wbc_subtypes.csv") if with_subtypes else None, mpp=0.075)


def read_points(path):
    """Chula RBC-12 points: one `x y type` line per cell."""
    pts = []
    for line in open(path):
        p = line.split()
        if len(p) >= 2:
            pts.append((float(p[0]), float(p[1]), int(p[2]) if len(p) > 2 else 0))
    return pts


def load_points(root, ids, source, mpp, cls=RBC, diameter_um=7.5):
    """A point-labelled set (images/N.jpg + points/N.txt). Each point becomes a nominal box of the cell's typical
    size (diameter_um at the set's mpp) for the heatmap target; size and offset are not taught from it."""
    d = diameter_um / mpp
    samples = []
    for i in ids:
        img = read_rgb(os.path.join(root, "images", f"{i}.jpg"))
        pts = read_points(os.path.join(root, "points", f"{i}.txt"))
        boxes = [[x - d / 2, y - d / 2, x + d / 2, y + d / 2] for x, y, _ in pts]
        n = len(boxes)
        samples.append(Sample(str(i), img, boxes, [cls] * n, [-1] * n, source, labelled=[cls],
                              size_known=np.zeros(n, bool), visible=np.ones(n, np.float32), points=True, mpp=mpp))
    return samples


def crop_items(root, every=None, part=None):
    """(name, image, class) of a single-cell crop set (CLASS/FILE.jpg + labels.csv), sorted by file name.
    every=k, part='val' keeps every k-th crop of each class; part='train' the others."""
    rows = sorted(csv.DictReader(open(os.path.join(root, "labels.csv"))), key=lambda r: r["file"])
    seen = {}
    for r in rows:
        k = seen.get(r["class"], 0)
        seen[r["class"]] = k + 1
        if every and part == "val" and k % every != 0:
            continue
        if every and part == "train" and k % every == 0:
            continue
        yield r["file"], read_rgb(os.path.join(root, r["file"])), r["class"]


def load_crops(root, items, pseudo, source, mpp):
    """Single-cell crops as detector samples: the centred cell (box from the partial-label cache) teaches its
    class; the crop's other cells are unlabelled (ignore regions where the reference model saw them; red cells
    and, outside platelet crops, platelets get no loss at all)."""
    samples, missing = [], 0
    for name, img, cls in items:
        entry = pseudo.get(name)
        if entry is None or "centre" not in entry:
            missing += 1
            continue
        c, sub, role = CROP_CLASSES[cls]
        ib = [e[:4] for e in entry.get("ignore", [])]
        ic = [e[4] for e in entry.get("ignore", [])]
        labelled = [WBC] + ([PLATELETS] if cls == "platelet" else [])
        if role == "ignore":
            ib.append(entry["centre"]); ic.append(c)
            boxes, classes, subs = [], [], []
        else:
            boxes, classes, subs = [entry["centre"]], [c], [sub]
        samples.append(Sample(name, img, boxes, classes, subs, source, labelled=labelled, ignore=(ib, ic), mpp=mpp))
    if missing:
        log.info("%s: %d crops have no centre box in the partial-label cache: left out", source, missing)
    return samples


def load_synth(root, mpp=0.1, source="synth"):
    """Simulator fields (the C# `synth` command's VOC layout: Annotations/*.xml + JPEGImages/)."""
    samples = []
    unknown = {}
    for p in sorted(glob.glob(os.path.join(root, "Annotations", "*.xml"))):
        fname, objs = parse_voc(p)
        img_path = os.path.join(root, "JPEGImages", fname or "")
        if not os.path.isfile(img_path):
            log.warning("%s %s: image not found", source, p)
            continue
        boxes, classes, subs = [], [], []
        for label, (x1, y1, x2, y2) in objs:
            key = str(label).strip().lower()
            if key not in LABEL_MAP:
                unknown[key] = unknown.get(key, 0) + 1
                continue
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            c, s = LABEL_MAP[key]
            boxes.append([x1 - 1, y1 - 1, x2, y2]); classes.append(c); subs.append(s)
        stem = os.path.splitext(os.path.basename(p))[0]
        samples.append(Sample(stem, read_rgb(img_path), boxes, classes, subs, source, mpp=mpp))
    for k, v in unknown.items():
        log.warning("%s: unknown label %r (%d boxes) skipped", source, k, v)
    return samples


def _pseudo(src, pseudo_dir):
    path = os.path.join(pseudo_dir, src["name"] + ".json")
    if not os.path.isfile(path):
        raise SystemExit(f"source {src['name']}: partial-label cache {path} missing: run models/training/pseudo.py --config ...")
    return json.load(open(path))["images"]


def _with_ignore(s, entry, edge_band_px=0.0, edge_classes=()):
    """Adds the cached ignore regions of image s, and a band along its frame for edge_classes (a source that
    leaves cells cut by its frame unlabelled)."""
    ib, ic = [list(s.ignore[0])], [list(s.ignore[1])]
    if entry:
        ib.append(np.array([e[:4] for e in entry.get("ignore", [])], np.float32).reshape(-1, 4))
        ic.append(np.array([e[4] for e in entry.get("ignore", [])], np.int64))
    if edge_band_px > 0:
        h, w = s.image.shape[:2]
        e = edge_band_px
        band = np.array([[0, 0, w, e], [0, h - e, w, h], [0, 0, e, h], [w - e, 0, w, h]], np.float32)
        for c in edge_classes:
            ib.append(band); ic.append(np.full(4, c, np.int64))
    s.ignore = (np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b in ib]),
                np.concatenate([np.asarray(c, np.int64) for c in ic]))
    return s


def point_ids(root, split, ids_range=None, exclude_range=None):
    ids = [int(l) for l in open(os.path.join(root, "splits", f"{split}.txt")) if l.strip()]
    if ids_range:
        ids = [i for i in ids if ids_range[0] <= i <= ids_range[1]]
    if exclude_range:
        ids = [i for i in ids if not exclude_range[0] <= i <= exclude_range[1]]
    return ids


def load_source(src, part, pseudo_dir=None, repo="."):
    """Samples of one configured source for part 'train', 'val' or 'test' (at the source's own scale).
    Source kinds: voc, points, crops, synth (see configs/v2.json)."""
    kind, name, mpp = src["kind"], src["name"], src["micrometres_per_pixel"]
    root = os.path.join(repo, src.get("root", "."))
    pseudo = _pseudo(src, pseudo_dir) if src.get("pseudo") and part != "test" else {}
    labelled = [CLASS_INDEX[c] for c in src["labels"]] if "labels" in src else None
    if kind == "voc":
        splits = src.get("train_splits" if part == "val" and src.get("val_from_train") else f"{part}_splits")
        if not splits:
            return []
        csv_path = src.get("subtypes_csv")
        csv_path = (csv_path if os.path.isabs(csv_path) else os.path.join(root, csv_path)) if csv_path else None
        not_at = [CLASS_INDEX[c] for c in src.get("not_at_boxes", [])]
        samples = load_voc(root, splits, name, csv_path, mpp, labelled, not_at)
        k = src.get("val_every")
        if k and part in ("train", "val") and src.get("val_from_train"):
            # validation held out of the train split (every k-th image), so the set's own val split stays a test set
            samples = [x for j, x in enumerate(samples) if (j % k == 0) == (part == "val")]
        band = src.get("edge_ignore_um", 0.0) / mpp if part != "test" else 0.0  # test: the set's own protocol
        edge_classes = [CLASS_INDEX[c] for c in src.get("edge_ignore_classes", [])]
        return [_with_ignore(s, pseudo.get(s.name), band, edge_classes) for s in samples]
    if kind == "points":
        val = src.get("val_ids")
        if part == "train":
            ids = point_ids(root, src["train_split"], exclude_range=val)
        elif part == "val":
            ids = point_ids(root, src["train_split"], ids_range=val) if val else []
        else:
            ids = point_ids(root, src["test_split"]) if src.get("test_split") else []
        cls = CLASS_INDEX[src.get("point_class", "RBC")]
        return [_with_ignore(s, pseudo.get(s.name)) for s in load_points(root, ids, name, mpp, cls, src.get("diameter_um", 7.5))]
    if kind == "crops":
        if part == "test":
            return []
        return load_crops(root, crop_items(root, src.get("val_every", 10), part), pseudo, name, mpp)
    if kind == "synth":
        d = src.get(f"{part}_dir")
        return load_synth(d if os.path.isabs(d) else os.path.join(repo, d), mpp, name) if d else []
    raise SystemExit(f"source {name}: unknown kind {kind!r}")


def load_voc_source(src, all_splits=False):
    """For pseudo.py: every labelled image of a VOC source that training or validation reads."""
    s2 = dict(src, pseudo=False, train_splits=src.get("train_splits", []) + src.get("val_splits", []))
    return load_source(s2, "train", repo=_REPO)


def load_points_source(src, all_splits=False):
    s2 = dict(src, pseudo=False, val_ids=None)
    return load_source(s2, "train", repo=_REPO)


def iter_crops(src):
    root = src["root"] if os.path.isabs(src["root"]) else os.path.join(_REPO, src["root"])
    return crop_items(root)


_REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

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
def stain_jitter(img, rng, strength=1.0, hue_deg=12.0, desaturate_p=0.0):
    """Stain and lamp: optical-density scaling per channel (Beer-Lambert: stain intensity and hue), hue and
    saturation, brightness, contrast, gamma, white balance, smooth vignetting or gradient. hue_deg is the largest
    hue shift at strength 1; desaturate_p the chance of a nearly grey rendering (shape cues only).
    The per-channel steps are lookup tables on 8-bit values (the augmentation worker must keep up with training)."""
    v = np.arange(256, dtype=np.float32) / 255.0
    od = -np.log(np.clip(v, 1 / 255.0, 1.0))
    k = rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength, 3)
    b = rng.uniform(-0.05, 0.05, 3) * strength
    lut = np.stack([np.exp(-np.clip(od * k[c] + b[c], 0, None)) for c in range(3)], 1)  # [256, 3]
    x = cv2.LUT(img, np.clip(lut * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3))
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV_FULL)  # 8-bit: H in 0..255 for 0..360 degrees
    shift = int(round(rng.uniform(-hue_deg, hue_deg) * strength * 256 / 360.0))
    sat = rng.uniform(1 - 0.35 * strength, 1 + 0.35 * strength) if rng.random() >= desaturate_p else rng.uniform(0.1, 0.4)
    idx = np.arange(256)
    hsv_lut = np.stack([(idx + shift) % 256, np.clip(idx * sat, 0, 255), idx], 1).astype(np.uint8).reshape(256, 1, 3)
    x = cv2.cvtColor(cv2.LUT(hsv, hsv_lut), cv2.COLOR_HSV2RGB_FULL)
    # brightness, contrast about the image mean, gamma, white balance: one more table per channel
    bright = rng.uniform(1 - 0.3 * strength, 1 + 0.2 * strength)
    m = float(x.mean()) / 255.0 * bright
    contrast = rng.uniform(1 - 0.35 * strength, 1 + 0.35 * strength)
    gamma = rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength)
    wb = rng.uniform(1 - 0.1 * strength, 1 + 0.1 * strength, 3)
    y = np.clip((v * bright - m) * contrast + m, 0, 1) ** gamma
    lut = np.stack([np.clip(y * wb[c], 0, 1) for c in range(3)], 1)
    x = cv2.LUT(x, np.clip(lut * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3))
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
        x = cv2.multiply(x, cv2.merge([g.astype(np.float32)] * 3), dtype=cv2.CV_8U)
    return x


def _blur_noise(img, rng, strength):
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.6) * strength)
    if rng.random() < 0.3:
        noise = np.empty(img.shape, np.float32)
        cv2.randn(noise, 0.0, float(rng.uniform(2, 9) * strength))
        img = cv2.add(img, noise, dtype=cv2.CV_8U)
    if rng.random() < 0.15:
        img = jpeg(img, int(rng.uniform(35, 85)))
    return img


def jpeg(img, quality):
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)


def _soft_region(rng, w, h):
    """A smooth random mask (1 inside): an ellipse somewhere in the crop, blurred edge."""
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (int(rng.uniform(0, w)), int(rng.uniform(0, h))),
                (int(rng.uniform(0.25, 0.7) * w), int(rng.uniform(0.25, 0.7) * h)), rng.uniform(0, 180), 0, 360, 1.0, -1)
    return cv2.GaussianBlur(m, (0, 0), 0.06 * max(w, h))


def degrade(img, rng, aug):
    """Out-of-focus regions, motion blur and a phone held to the eyepiece. Returns the image and a [h,w] map of
    where a cell is no longer recognisable as a red cell or platelet (defocused or moving: such cells must not
    be taught as either, but they are still not white cells: the white-cell head keeps its negatives there) and a
    map of where the picture is gone (outside the eyepiece's circle: no class learns anything there)."""
    h, w = img.shape[:2]
    smeared = np.zeros((h, w), np.float32)
    gone = np.zeros((h, w), np.float32)
    if rng.random() < aug.get("defocus_p", 0.0):
        sigma = rng.uniform(1.5, 6.0)
        blurred = cv2.GaussianBlur(img, (0, 0), sigma)
        m = np.ones((h, w), np.float32) if rng.random() < 0.4 else _soft_region(rng, w, h)
        img = (img * (1 - m[..., None]) + blurred * m[..., None]).astype(np.uint8)
        if sigma > 3.5:  # milder defocus leaves a red cell recognisable: it stays a positive
            smeared = np.maximum(smeared, m)
    if rng.random() < aug.get("motion_p", 0.0):
        length = int(rng.uniform(6, 20))
        k = np.zeros((length, length), np.float32)
        k[length // 2, :] = 1.0 / length
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
        k = cv2.warpAffine(k, rot, (length, length))
        img = cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))
        if length > 14:
            smeared[:] = 1.0
    if rng.random() < aug.get("eyepiece_p", 0.0):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = w / 2 + rng.uniform(-0.15, 0.15) * w, h / 2 + rng.uniform(-0.15, 0.15) * h
        r = rng.uniform(0.4, 0.75) * math.hypot(w, h) / 2
        edge = rng.uniform(8, 40)
        inside = np.clip((r - np.hypot(xx - cx, yy - cy)) / edge + 0.5, 0, 1)
        floor = rng.uniform(0.0, 0.15)
        img = (img * (floor + (1 - floor) * inside[..., None])).astype(np.uint8)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.2))
        img = jpeg(img, int(rng.uniform(25, 65)))
        gone = np.maximum(gone, 1 - inside)
    return img, smeared, gone


def _draw_scale(rng, aug):
    lo, hi = aug["scale"]
    if aug.get("wide_scale") and rng.random() < aug.get("wide_p", 0.0):
        lo, hi = aug["wide_scale"]
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def augment(sample, rng, crop_w, crop_h, aug):
    """Random scale, rot90/flips, random crop (black pad bottom/right like the service), stain, illumination,
    degradations, blur/noise/JPEG. aug: the source's augmentation settings (see configs/v2.json "augment").
    Returns a dict: image, boxes, classes, subtypes, size_known, ignore (boxes, classes), labelled (classes the
    source labels), void (stride-4 map where nothing is taught, or None); encode() turns it into targets.

    A cell cut by the crop or by the image's own frame stays a positive (with its clipped box) when at least
    min_visible of it is in view; a smaller remnant becomes an ignore region."""
    img = sample.image
    boxes = sample.boxes.copy()
    ign_b, ign_c = sample.ignore[0].copy(), sample.ignore[1].copy()
    s = aug.get("base_scale", 1.0) * _draw_scale(rng, aug)
    sx = s * rng.uniform(0.93, 1.07)  # mild anisotropy: slightly different pixel aspect / cell shapes
    sy = s * rng.uniform(0.93, 1.07)
    h0, w0 = img.shape[:2]
    side = int(math.ceil(max(crop_w, crop_h) / min(sx, sy))) + 2
    if w0 > 2 * side and h0 > 2 * side:
        # Enlarged a lot (e.g. a small-celled set brought to the model's scale): resize only a window that
        # holds any crop of the result in any rotation, not the whole image.
        wx, wy = int(rng.integers(0, w0 - side + 1)), int(rng.integers(0, h0 - side + 1))
        img = img[wy:wy + side, wx:wx + side]
        boxes = boxes - np.array([wx, wy, wx, wy], np.float32)
        ign_b = ign_b - np.array([wx, wy, wx, wy], np.float32)
        h0, w0 = img.shape[:2]
    nw, nh = max(8, int(round(w0 * sx))), max(8, int(round(h0 * sy)))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    f = np.array([nw / w0, nh / h0, nw / w0, nh / h0], np.float32)
    boxes = boxes * f
    ign_b = ign_b * f
    k = int(rng.integers(0, 4))
    for _ in range(k):  # rotate 90 deg counter-clockwise
        H, W = img.shape[:2]
        img = np.ascontiguousarray(np.rot90(img))
        boxes = np.stack([boxes[:, 1], W - boxes[:, 2], boxes[:, 3], W - boxes[:, 0]], 1).reshape(-1, 4)
        ign_b = np.stack([ign_b[:, 1], W - ign_b[:, 2], ign_b[:, 3], W - ign_b[:, 0]], 1).reshape(-1, 4)
    if rng.random() < 0.5:
        W = img.shape[1]
        img = img[:, ::-1]
        boxes = np.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], 1).reshape(-1, 4)
        ign_b = np.stack([W - ign_b[:, 2], ign_b[:, 1], W - ign_b[:, 0], ign_b[:, 3]], 1).reshape(-1, 4)
    H, W = img.shape[:2]
    # crop window (may extend beyond the image: padded black, as the service pads bottom/right)
    x0 = int(rng.integers(0, max(1, W - crop_w + 1))) if W > crop_w else 0
    y0 = int(rng.integers(0, max(1, H - crop_h + 1))) if H > crop_h else 0
    snap = aug.get("edge_snap", 0.0)
    if snap > 0:
        if W > crop_w and rng.random() < snap:
            x0 = 0 if rng.random() < 0.5 else W - crop_w
        if H > crop_h and rng.random() < snap:
            y0 = 0 if rng.random() < 0.5 else H - crop_h
    out = np.zeros((crop_h, crop_w, 3), np.uint8)
    patch = img[y0:y0 + crop_h, x0:x0 + crop_w]
    out[:patch.shape[0], :patch.shape[1]] = patch
    vis_w, vis_h = patch.shape[1], patch.shape[0]
    shift = np.array([x0, y0, x0, y0], np.float32)

    def clip(b):
        c = b - shift
        c[:, [0, 2]] = np.clip(c[:, [0, 2]], 0, vis_w)
        c[:, [1, 3]] = np.clip(c[:, [1, 3]], 0, vis_h)
        return c
    b = boxes - shift
    area = np.maximum(b[:, 2] - b[:, 0], 1e-3) * np.maximum(b[:, 3] - b[:, 1], 1e-3)
    c = clip(boxes)
    carea = np.maximum(c[:, 2] - c[:, 0], 0) * np.maximum(c[:, 3] - c[:, 1], 0)
    frac = carea / area * sample.visible
    if sample.points:  # a point label is a centre: in view or not
        ctr = (b[:, :2] + b[:, 2:]) / 2
        frac = ((ctr[:, 0] >= 0) & (ctr[:, 0] < vis_w) & (ctr[:, 1] >= 0) & (ctr[:, 1] < vis_h)).astype(np.float32)
    mv = np.asarray(aug.get("min_visible", 0.3), np.float32)
    keep = frac >= (mv[sample.classes] if mv.ndim else mv)
    cut = (carea > 0) & ~keep
    ic = clip(ign_b)
    ign_keep = ((ic[:, 2] - ic[:, 0]) > 0) & ((ic[:, 3] - ic[:, 1]) > 0)
    ign_boxes = np.concatenate([c[cut], ic[ign_keep]])
    ign_classes = np.concatenate([sample.classes[cut], ign_c[ign_keep]])
    colour = aug.get("colour", 1.0)
    if colour > 0:
        out = stain_jitter(out, rng, colour, aug.get("hue_deg", 12.0), aug.get("desaturate_p", 0.0))
    out, smeared, gone = degrade(out, rng, aug)
    if colour > 0:
        out = _blur_noise(out, rng, colour)
    if vis_w < crop_w or vis_h < crop_h:  # re-black the padding after photometric changes
        out[vis_h:, :] = 0
        out[:, vis_w:] = 0
    boxes, classes, subtypes, size_known = c[keep], sample.classes[keep], sample.subtypes[keep], sample.size_known[keep]
    if smeared.any() or gone.any():
        ctr = ((boxes[:, :2] + boxes[:, 2:]) / 2).astype(int)
        cx, cy = np.clip(ctr[:, 0], 0, crop_w - 1), np.clip(ctr[:, 1], 0, crop_h - 1)
        lost = gone[cy, cx] > 0.5
        blurred = (smeared[cy, cx] > 0.5) & (classes != WBC)
        drop = lost | blurred
        ign_boxes = np.concatenate([ign_boxes, boxes[drop]])
        ign_classes = np.concatenate([ign_classes, classes[drop]])
        boxes, classes, subtypes, size_known = boxes[~drop], classes[~drop], subtypes[~drop], size_known[~drop]
    # no class learns anything where the picture is gone (outside the eyepiece's circle)
    void = cv2.resize(gone, (crop_w // STRIDE, crop_h // STRIDE), interpolation=cv2.INTER_AREA) > 0.5 if gone.any() else None
    return {"image": out, "boxes": boxes, "classes": classes, "subtypes": subtypes, "size_known": size_known,
            "ignore": (ign_boxes.reshape(-1, 4), ign_classes), "labelled": sample.labelled, "void": void,
            "not_at_boxes": sample.not_at_boxes}


# ------------------------------------------------------------------------------------- target encoding
def _gaussian_2d(shape_h, shape_w, sx, sy):
    y = np.arange(-shape_h, shape_h + 1, dtype=np.float32)[:, None]
    x = np.arange(-shape_w, shape_w + 1, dtype=np.float32)[None, :]
    return np.exp(-(x * x) / (2 * sx * sx) - (y * y) / (2 * sy * sy))


def encode(a, out_h, out_w):
    """Targets for one augment() result."""
    return encode_targets(a["boxes"], a["classes"], a["subtypes"], a["ignore"], out_h, out_w, a["size_known"],
                          a["labelled"], a["void"], not_at_boxes=a.get("not_at_boxes", ()))


def encode_targets(boxes, classes, subtypes, ignore, out_h, out_w, size_known=None, labelled=None, void=None,
                   num_classes=None, alpha=0.54, not_at_boxes=()):
    """Dense CenterNet targets at stride 4 with TTFNet-style elliptical Gaussians (sigma = alpha*side/6).
    Classes outside `labelled` get no loss anywhere (neg_weight 0, no centres); ignore regions take away their
    class's negatives; boxes whose size is not known (point labels) teach the centre only; a not_at_boxes class
    learns negatives in the central half of each box only."""
    num_classes = len(CLASSES) if num_classes is None else num_classes
    hm = np.zeros((num_classes, out_h, out_w), np.float32)
    negw = np.ones((num_classes, out_h, out_w), np.float32)
    size = np.zeros((2, out_h, out_w), np.float32)
    off = np.zeros((2, out_h, out_w), np.float32)
    mask = np.zeros((1, out_h, out_w), np.float32)
    sub = np.full((out_h, out_w), -1, np.int64)
    if size_known is None:
        size_known = np.ones(len(boxes), bool)
    if labelled is not None:
        for c in range(num_classes):
            if c not in labelled:
                negw[c] = 0.0
        k = np.isin(classes, labelled)
        boxes, classes, subtypes, size_known = boxes[k], classes[k], subtypes[k], size_known[k]
    for c in not_at_boxes:
        negw[c] = 0.0
        for x1, y1, x2, y2 in boxes:
            qx, qy = (x2 - x1) / 4, (y2 - y1) / 4
            a, b_ = int(max(0, (x1 + qx) // STRIDE)), int(max(0, (y1 + qy) // STRIDE))
            negw[c, b_:int(math.ceil((y2 - qy) / STRIDE)), a:int(math.ceil((x2 - qx) / STRIDE))] = 1.0
    if void is not None:
        negw[:, void] = 0.0
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
        if size_known[k]:
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
    return Sample(s.name, img, s.boxes * scale, s.classes, s.subtypes, s.source, labelled=s.labelled,
                  ignore=(s.ignore[0] * scale, s.ignore[1]), size_known=s.size_known, visible=s.visible,
                  points=s.points, mpp=s.mpp / scale if s.mpp else None, not_at_boxes=s.not_at_boxes)


def image_to_tensor_array(img_rgb):
    return np.ascontiguousarray(img_rgb.transpose(2, 0, 1)).astype(np.float32) / 255.0
