#!/usr/bin/python3
"""CellNet subtypes: the white-cell differential's second stage. A small classifier that looks at each detected
white cell again, at a size normalised to the cell (so it reads shape, nucleus lobes and granules, the cues that
transfer between labs, rather than colour and magnification, which do not), trained on every subtype label there
is: PBC's 3600 CellaVision crops (with immature granulocytes, erythroblasts and platelets), BCCD's single-WBC
images and the simulator's white cells, with strong stain and colour augmentation. Its probabilities are
calibrated (temperature on the pooled validation crops); a cell it is not sure of is `unidentified`.

    /usr/bin/python3 models/training/subtypes.py --config models/training/configs/subtypes.json

writes models/cellnet-subtypes.onnx, models/cellnet-subtypes.labels.json, models/training/subtypes-metrics.json
and models/training/subtypes.log. LISC crops are never read here (evaluation only: `EdgeCounter eval --crops`).
"""
import argparse
import json
import logging
import math
import os
import random
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

import data as D  # noqa: E402
from train import ensure_synth  # noqa: E402

log = logging.getLogger("cellnet")
# What the classifier tells apart. The five of the differential first; the others are cells a white-cell
# detection can be that are not one of the five (they make the cell `unidentified`, never a silent guess).
CLASSES = ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte", "ig", "erythroblast", "platelet"]
DIFFERENTIAL = CLASSES[:5]
PRECURSOR_LABELS = {"ig": "immature_granulocyte", "erythroblast": "erythroblast"}
OPSET = 17


def resolve(p):
    return p if os.path.isabs(p) else os.path.join(REPO, p)


# ------------------------------------------------------------------------------------------------- crops
def cell_crop(img, box, size, context, rng=None, jitter=0.0):
    """The square around a cell box, `context` times its longer side, resized to size x size (black outside the
    image, as the C# stage does). With rng: the centre and side are jittered by `jitter` (box errors of a detector)."""
    x1, y1, x2, y2 = [float(v) for v in box]
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * context
    if rng is not None and jitter > 0:
        cx += rng.uniform(-jitter, jitter) * side / context
        cy += rng.uniform(-jitter, jitter) * side / context
        side *= math.exp(rng.uniform(-jitter, jitter) * 1.5)
    s = size / side
    m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)
    # Bilinear, black outside: exactly what the C# stage does (SubtypeClassifier), so both see the same pixels.
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


class Cell:
    """One labelled white-cell box in an image (the image is shared, not copied)."""

    def __init__(self, image, box, label, source):
        self.image, self.box, self.label, self.source = image, box, label, source


def cells_from_source(src, part, pseudo_dir):
    """Labelled cells of a detector-recipe source: PBC crops (the centre box of the partial-label cache), BCCD
    (the single WBC box of images with a subtype), simulator fields (white cells named by subtype)."""
    kind = src["kind"]
    out = []
    if kind == "crops":
        root = os.path.join(REPO, src.get("root", "."))
        pseudo = D._pseudo(src, pseudo_dir)
        for name, img, cls in D.crop_items(root, src.get("val_every", 10), part):
            e = pseudo.get(name)
            if e and "centre" in e and cls in CLASSES:
                out.append(Cell(img, e["centre"], CLASSES.index(cls), src["name"]))
        return out
    if kind in ("voc", "synth"):
        for s in D.load_source(dict(src, pseudo=False), part, pseudo_dir, REPO):
            for b, c, st in zip(s.boxes, s.classes, s.subtypes):
                if c == D.WBC and st >= 0 and D.frame_visible_fraction(b[None], s.image.shape[1], s.image.shape[0])[0] > 0.7:
                    out.append(Cell(s.image, b, int(st), src["name"]))
        return out
    return out


def lab_stats(img):
    """Mean and standard deviation of an RGB image in CIE L*a*b* (8-bit OpenCV scale), one per channel."""
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    return lab.mean(0), lab.std(0) + 1e-3


def stain_transfer(img, own, style):
    """Reinhard colour transfer: the crop is mapped from its own field's L*a*b* statistics (`own`) to those of a whole
    field from another source (lab, stain, camera), so a cell is seen in the colours of every lab there is to learn
    from. The field's statistics, not the crop's, so a dark cell stays darker than its background."""
    mean, std = own
    # The contrast change is bounded: a washed-out field's statistics would otherwise erase the cues that transfer
    # (nucleus shape, granules). The black outside the image stays black, as the C# crop makes it.
    gain = np.clip(style[1] / std, 0.7, 1.5)
    outside = ~img.any(axis=2)
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab = (lab - mean) * gain + style[0]
    out = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    out[outside] = 0
    return out


def augment_crop(cell, rng, cfg, styles=(), field_stats=None):
    img = cell_crop(cell.image, cell.box, cfg["size"], cfg["context"], rng, cfg.get("jitter", 0.1))
    if len(styles) and rng.random() < cfg.get("stain_transfer_p", 0.0):
        # The field's statistics once per image (a cache, not setdefault, which would compute them every time).
        own = field_stats.get(id(cell.image)) if field_stats is not None else None
        if own is None:
            own = lab_stats(cell.image)
            if field_stats is not None:
                field_stats[id(cell.image)] = own
        img = stain_transfer(img, own, styles[int(rng.integers(len(styles)))])
    k = int(rng.integers(0, 4))
    img = np.ascontiguousarray(np.rot90(img, k))
    if rng.random() < 0.5:
        img = np.ascontiguousarray(img[:, ::-1])
    angle = rng.uniform(0, 360)
    m = cv2.getRotationMatrix2D((cfg["size"] / 2, cfg["size"] / 2), angle, 1.0)
    img = cv2.warpAffine(img, m, (cfg["size"], cfg["size"]), borderMode=cv2.BORDER_REFLECT)
    img = D.stain_jitter(img, rng, cfg.get("colour", 1.0), cfg.get("hue_deg", 25.0), cfg.get("desaturate_p", 0.15))
    if rng.random() < cfg.get("blur_p", 0.3):
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.5))
    if rng.random() < 0.3:
        noise = np.empty(img.shape, np.float32)
        cv2.randn(noise, 0.0, float(rng.uniform(2, 8)))
        img = cv2.add(img, noise, dtype=cv2.CV_8U)
    if rng.random() < 0.25:
        img = D.jpeg(img, int(rng.uniform(30, 90)))
    return img


class CropStream(torch.utils.data.IterableDataset):
    """Endless class-balanced batches: a class, then a source that has it (by source weight), then a cell."""

    def __init__(self, cells, cfg, seed, styles=()):
        super().__init__()
        self.cfg, self.seed, self.styles, self.field_stats = cfg, seed, styles, {}
        self.by_class = {}
        for c in cells:
            self.by_class.setdefault(c.label, {}).setdefault(c.source, []).append(c)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(self.seed + (info.id if info else 0))
        cv2.setRNGSeed(self.seed + (info.id if info else 0))
        labels = sorted(self.by_class)
        sw = self.cfg.get("source_weights", {})
        while True:
            xs, ys = [], []
            for _ in range(self.cfg["batch"]):
                lab = labels[int(rng.integers(len(labels)))]
                srcs = sorted(self.by_class[lab])
                p = np.array([sw.get(s, 1.0) for s in srcs], np.float64); p /= p.sum()
                pool = self.by_class[lab][srcs[int(rng.choice(len(srcs), p=p))]]
                xs.append(D.image_to_tensor_array(augment_crop(pool[int(rng.integers(len(pool)))], rng, self.cfg, self.styles, self.field_stats)))
                ys.append(lab)
            yield torch.from_numpy(np.stack(xs)), torch.tensor(ys)


# ------------------------------------------------------------------------------------------------- model
def conv_bn(cin, cout, k=3, s=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.body(x))


class SubtypeNet(nn.Module):
    """A small ResNet on size x size cell crops. Each crop is standardised per channel first (inside the graph),
    so the stain's overall colour and intensity are removed before the network sees it."""

    def __init__(self, width=(24, 48, 96, 160), classes=len(CLASSES), dropout=0.2):
        super().__init__()
        c1, c2, c3, c4 = width
        self.features = nn.Sequential(
            conv_bn(3, c1, 3, 2), Residual(c1),
            conv_bn(c1, c2, 3, 2), Residual(c2),
            conv_bn(c2, c3, 3, 2), Residual(c3), Residual(c3),
            conv_bn(c3, c4, 3, 2), Residual(c4))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c4, classes)

    def forward(self, x):
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True).clamp(min=0.02)
        x = (x - mean) / std
        x = self.features(x).mean(dim=(2, 3))
        return self.fc(self.dropout(x))


class Calibrated(nn.Module):
    """The exported graph: class probabilities at the calibrated temperature."""

    def __init__(self, net, temperature):
        super().__init__()
        self.net, self.temperature = net, float(temperature)

    def forward(self, crop):
        return torch.softmax(self.net(crop) / self.temperature, dim=1)


# ------------------------------------------------------------------------------------------------- eval
@torch.no_grad()
def logits_of(net, cells, cfg, batch=64):
    net.eval()
    out = []
    for i in range(0, len(cells), batch):
        x = np.stack([D.image_to_tensor_array(cell_crop(c.image, c.box, cfg["size"], cfg["context"])) for c in cells[i:i + batch]])
        out.append(net(torch.from_numpy(x)))
    return torch.cat(out) if out else torch.zeros(0, len(CLASSES))


def fit_temperature(logits, labels):
    """Temperature scaling (Guo et al. 2017): the T that minimises the validation NLL."""
    best = (float("inf"), 1.0)
    for t in np.exp(np.linspace(math.log(0.3), math.log(5.0), 80)):
        nll = float(F.cross_entropy(logits / t, labels))
        best = min(best, (nll, float(t)))
    return best[1]


def decide(prob, threshold):
    """Differential label per cell: the most probable of the five when its probability reaches the threshold,
    else -1 (unidentified). A cell most like one of the other classes is unidentified too."""
    top = prob.argmax(1)
    p = prob.max(1).values
    ok = (top < len(DIFFERENTIAL)) & (p >= threshold)
    return torch.where(ok, top, torch.full_like(top, -1))


def report(prob, labels, threshold):
    """Accuracy over decided cells of the five, unidentified rate, per-class recall and the confusion matrix."""
    dec = decide(prob, threshold)
    five = labels < len(DIFFERENTIAL)
    decided = five & (dec >= 0)
    conf = np.zeros((len(CLASSES), len(DIFFERENTIAL) + 1), int)
    for t, d in zip(labels.tolist(), dec.tolist()):
        conf[t, d if d >= 0 else len(DIFFERENTIAL)] += 1
    acc = float((dec[decided] == labels[decided]).float().mean()) if decided.any() else float("nan")
    return {"cells": int(five.sum()), "accuracy_decided": acc,
            "accuracy_all": float((dec[five] == labels[five]).float().mean()) if five.any() else float("nan"),
            "unidentified_rate": float((dec[five] < 0).float().mean()) if five.any() else float("nan"),
            "top1_eight_classes": float((prob.argmax(1) == labels).float().mean()) if len(labels) else float("nan"),
            "recall": {CLASSES[c]: float((dec[labels == c] == c).float().mean()) for c in range(len(DIFFERENTIAL)) if (labels == c).any()},
            "others_unidentified": {CLASSES[c]: float((dec[labels == c] < 0).float().mean()) for c in range(len(DIFFERENTIAL), len(CLASSES)) if (labels == c).any()},
            "confusion_rows_true_cols_decided_plus_unidentified": conf.tolist()}


def choose_threshold(prob, labels, target):
    """The lowest probability threshold at which the pooled validation accuracy over decided cells reaches target
    (fewest unidentified cells for that accuracy)."""
    for t in np.round(np.arange(0.2, 0.96, 0.01), 2):
        r = report(prob, labels, float(t))
        if r["accuracy_decided"] >= target:
            return float(t)
    return 0.95


# ------------------------------------------------------------------------------------------------- main
def export(model, temperature, cfg, path, labels_path, threshold, version):
    import onnx
    wrapper = Calibrated(model.eval(), temperature).eval()
    dummy = torch.rand(2, 3, cfg["size"], cfg["size"])
    torch.onnx.export(wrapper, dummy, path, opset_version=OPSET, input_names=["crop"], output_names=["probabilities"],
                      dynamic_axes={"crop": {0: "N"}, "probabilities": {0: "N"}}, do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    sidecar = {
        "name": "edgecounter-cellnet-subtypes", "version": version,
        "input": {"name": "crop", "layout": "NCHW", "colour": "RGB", "range": [0, 1], "size": cfg["size"],
                  "context": cfg["context"], "outside": "black"},
        "output": "probabilities",
        "classes": CLASSES, "differential": DIFFERENTIAL,
        "unidentifiedBelow": threshold, "unidentifiedLabel": "unidentified",
        "temperature": temperature,
        # Real cells outside the white-cell differential, named in a marrow count (Detector:NamePrecursors).
        "precursors": {c: PRECURSOR_LABELS[c] for c in CLASSES if c in PRECURSOR_LABELS},
    }
    json.dump(sidecar, open(labels_path, "w"), indent=2)
    log.info("exported %s (%.2f MB, opset %d) and %s", path, os.path.getsize(path) / 1e6, OPSET, labels_path)
    return sidecar


@torch.no_grad()
def write_parity(net, temperature, cfg, cells, out_dir):
    """C# parity fixture: a patch of a held-out field around white cells (input.png), their boxes in it, and the
    probabilities PyTorch gives for the crops the stage makes from it (reference.json)."""
    os.makedirs(out_dir, exist_ok=True)
    cell = cells[0]
    h, w = cell.image.shape[:2]
    x1, y1, x2, y2 = [float(v) for v in cell.box]
    side = max(x2 - x1, y2 - y1) * cfg["context"]
    # a patch larger than the crop, cut so the crop reaches past its left/top edge (the black outside is checked too)
    px0, py0 = int(max(0, (x1 + x2) / 2 - side * 0.3)), int(max(0, (y1 + y2) / 2 - side * 0.3))
    px1, py1 = int(min(w, (x1 + x2) / 2 + side)), int(min(h, (y1 + y2) / 2 + side))
    patch = np.ascontiguousarray(cell.image[py0:py1, px0:px1])
    cv2.imwrite(os.path.join(out_dir, "input.png"), cv2.cvtColor(patch, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    patch = D.read_rgb(os.path.join(out_dir, "input.png"))
    boxes = [[x1 - px0, y1 - py0, x2 - px0, y2 - py0],
             [x1 - px0 + 7.25, y1 - py0 + 3.5, x2 - px0 - 5.0, y2 - py0 + 1.75]]  # a second, shifted box: another crop
    x = np.stack([D.image_to_tensor_array(cell_crop(patch, b, cfg["size"], cfg["context"])) for b in boxes])
    prob = Calibrated(net.eval(), temperature)(torch.from_numpy(x)).numpy()
    ref = {"model": "models/cellnet-subtypes.onnx", "image": "input.png", "boxes": boxes,
           "classes": CLASSES, "probabilities": prob.round(6).tolist(),
           "note": "probabilities PyTorch gives for the crops subtypes.cell_crop makes of input.png around boxes (x1, y1, x2, y2)"}
    json.dump(ref, open(os.path.join(out_dir, "reference.json"), "w"), indent=1)
    log.info("parity fixture written to %s", out_dir)
    return {"dir": os.path.relpath(out_dir, REPO), "cells": len(boxes)}


def stage_sources(cfg):
    """The detector recipe's sources that the stage trains on (cfg["sources"]), each with the pseudo-label folder;
    simulator fields are written first where a fresh clone has none."""
    det_cfg = json.load(open(resolve(cfg["sources_from"])))
    pseudo_dir = resolve(det_cfg.get("pseudo_dir", "models/training/pseudo"))
    for src in det_cfg["sources"]:
        if src["name"] not in cfg["sources"]:
            continue
        if src["kind"] == "synth":
            ensure_synth(src)  # a fresh clone has no simulator fields until the C# simulator writes them
        yield src, pseudo_dir


def write_calibration_crops(cfg, out, per_source):
    """Crops of training-split cells of every stage source, the same number per class (a random pick, seeded), as
    the C# stage makes them: what the INT8 stage's activation ranges are measured on. Never the held-out cells."""
    os.makedirs(out, exist_ok=True)
    for src, pseudo_dir in stage_sources(cfg):
        by_class = {}
        for c in cells_from_source(src, "train", pseudo_dir):
            by_class.setdefault(c.label, []).append(c)
        rng = np.random.default_rng(5)
        n = 0
        for label, cells in sorted(by_class.items()):
            for k in rng.permutation(len(cells))[: max(1, per_source // len(by_class))]:
                crop = cell_crop(cells[k].image, cells[k].box, cfg["size"], cfg["context"])
                cv2.imwrite(os.path.join(out, f"{src['name']}_{CLASSES[label]}_{n:03d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                n += 1
        print(f"{src['name']}: {n} calibration crops -> {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--iterations", type=int)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--scratch", metavar="DIR", help="write the model, sidecar, metrics and log into DIR, not models/")
    ap.add_argument("--calibration-crops", metavar="DIR", help="only write crops of training-split cells into DIR, as the "
                    "stage sees them (PNG, 'size' square), for the INT8 stage's calibration (quantize.sh), and stop")
    ap.add_argument("--per-source", type=int, default=48, help="--calibration-crops: about this many crops per source")
    args = ap.parse_args()
    cfg = json.load(open(resolve(args.config)))
    if args.calibration_crops:
        write_calibration_crops(cfg, resolve(args.calibration_crops), args.per_source)
        return
    if args.iterations:
        cfg["iterations"] = args.iterations
    if args.minutes:
        cfg["max_minutes"] = args.minutes
    out = {k: resolve(cfg[k]) for k in ("onnx", "labels", "metrics", "log")}
    if args.scratch:
        os.makedirs(resolve(args.scratch), exist_ok=True)
        out = {k: os.path.join(resolve(args.scratch), os.path.basename(v)) for k, v in out.items()}
    log.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    for h in (logging.StreamHandler(sys.stdout), logging.FileHandler(out["log"], mode="w")):
        h.setFormatter(fmt)
        log.addHandler(h)
    torch.set_num_threads(cfg.get("threads", 2))
    seed = cfg.get("seed", 4321)
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
    log.info("config %s: %s", args.config, json.dumps(cfg))

    det_cfg = json.load(open(resolve(cfg["sources_from"])))
    pseudo_dir = resolve(det_cfg.get("pseudo_dir", "models/training/pseudo"))  # also the style images' below
    train, val = [], {}
    for src, _ in stage_sources(cfg):
        tr = cells_from_source(src, "train", pseudo_dir)
        va = cells_from_source(src, "val", pseudo_dir)
        train += tr
        val[src["name"]] = va
        log.info("  %-6s train %4d cells %s, val %3d", src["name"], len(tr),
                 {c: sum(1 for x in tr if x.label == i) for i, c in enumerate(CLASSES)}, len(va))

    # Colour styles for stain transfer: the L*a*b* statistics of whole training images of every source (every lab,
    # stain and camera the recipe may learn from: the subtype sources' fields and crops, and images of the detector's
    # other training sources such as Chula); evaluation-only sets are never read.
    styles = []
    if cfg.get("stain_transfer_p"):
        per = cfg.get("styles_per_source", 60)
        for src in det_cfg["sources"]:
            if src["name"] not in cfg.get("style_sources", []):
                continue
            if src["name"] in cfg["sources"]:
                images = list({id(c.image): c.image for c in train if c.source == src["name"]}.values())
            else:
                images = [s.image for s in D.load_source(dict(src, pseudo=False), "train", pseudo_dir, REPO)]
            step = max(1, len(images) // per)
            styles += [lab_stats(im) for im in images[::step]]
            log.info("  stain styles from %s: %d of %d images", src["name"], len(images[::step]), len(images))
        log.info("stain transfer: %d colour styles, p %.2f", len(styles), cfg["stain_transfer_p"])

    net = SubtypeNet(**cfg.get("model", {}))
    log.info("SubtypeNet parameters: %d", sum(p.numel() for p in net.parameters()))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    loader = torch.utils.data.DataLoader(CropStream(train, cfg, seed, styles), batch_size=None, num_workers=cfg.get("workers", 1),
                                         prefetch_factor=4, persistent_workers=True)
    iters, max_s = cfg["iterations"], cfg["max_minutes"] * 60
    t0, it, sm = time.time(), 0, None
    for x, y in loader:
        progress = max(it / iters, (time.time() - t0) / max_s)
        if progress >= 1.0:
            break
        lr = cfg["lr"] * min(1.0, (it + 1) / cfg.get("warmup", 200)) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        net.train()
        loss = F.cross_entropy(net(x), y, label_smoothing=cfg.get("label_smoothing", 0.05))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sm = loss.item() if sm is None else 0.98 * sm + 0.02 * loss.item()
        it += 1
        if it % cfg.get("log_every", 100) == 0:
            log.info("it %5d  %5.1f min  lr %.5f  loss %.3f", it, (time.time() - t0) / 60, lr, sm)
    train_min = (time.time() - t0) / 60
    del loader
    log.info("trained %d iterations in %.1f min", it, train_min)

    logits = {k: logits_of(net, v, cfg) for k, v in val.items() if v}
    labels = {k: torch.tensor([c.label for c in val[k]]) for k in logits}
    all_logits, all_labels = torch.cat(list(logits.values())), torch.cat(list(labels.values()))
    temperature = fit_temperature(all_logits, all_labels)
    prob = torch.softmax(all_logits / temperature, 1)
    threshold = choose_threshold(prob, all_labels, cfg.get("target_decided_accuracy", 0.95))
    log.info("temperature %.3f; unidentified below %.2f (pooled val accuracy of decided cells >= %.2f)", temperature,
             threshold, cfg.get("target_decided_accuracy", 0.95))
    metrics = {"iterations": it, "training_minutes": round(train_min, 1), "device": "cpu", "temperature": temperature,
               "unidentified_below": threshold, "val": {}}
    metrics["val"]["pooled"] = report(prob, all_labels, threshold)
    for k in logits:
        metrics["val"][k] = report(torch.softmax(logits[k] / temperature, 1), labels[k], threshold)
    for k, r in metrics["val"].items():
        log.info("val %-6s cells %4d  decided accuracy %.3f  all %.3f  unidentified %.3f  recall %s", k, r["cells"],
                 r["accuracy_decided"], r["accuracy_all"], r["unidentified_rate"], {c: round(v, 2) for c, v in r["recall"].items()})
    torch.save({"model": net.state_dict(), "config": cfg, "temperature": temperature, "threshold": threshold},
               os.path.join(os.path.dirname(out["metrics"]), "subtypes-model.pt") if args.scratch else
               os.path.join(REPO, "models/training/runs/subtypes-model.pt"))
    metrics["sidecar"] = export(net, temperature, cfg, out["onnx"], out["labels"], threshold, cfg["version"])
    fixture = resolve(cfg["parity_dir"]) if not args.scratch else os.path.join(resolve(args.scratch), "parity-subtypes")
    metrics["parity"] = write_parity(net, temperature, cfg, val.get("synth") or next(v for v in val.values() if v), fixture)
    json.dump(metrics, open(out["metrics"], "w"), indent=1)
    log.info("metrics written to %s", out["metrics"])


if __name__ == "__main__":
    main()
