#!/usr/bin/python3
"""Sweep the frame's mirrored border (the service's `Detector:EdgeMirror`) on the pooled validation set, the weights
and the rules fixed. The network sees each image with a border of `k` red-cell diameters mirrored from the image on
every side (k 0: the zero padding it was trained with); boxes are mapped back and clipped to the image, and a box
whose centre lies in the mirrored border is dropped (its cell is the mirror image of one inside). For each k: the
pooled mean F1 per class and the per-source F1 and count error, at the model's shipped thresholds and at the
thresholds the pooled set would choose (as train.py chooses them). Other labs' sets and every test split stay out.

    /usr/bin/python3 models/training/sweep_edge_padding.py models/cellnet.onnx models/training/configs/v2.json \
        --mirror 0 0.03 0.06 0.1 0.15 0.2 0.3 [--json out.json]
"""
import argparse
import json
import logging
import os
import sys
import time

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evaluate as E  # noqa: E402
import train as T  # noqa: E402
from cellnet import CLASSES, decode, one_cell_rules  # noqa: E402
from sweep_rules import pooled_validation  # noqa: E402

log = logging.getLogger("sweep-edge")


def mirrored(img, pad):
    return img if pad <= 0 else cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)


def back_to_image(pred, pad, w, h):
    """The detections of the mirrored image in the image's pixels: shifted, clipped, and those centred in the border
    dropped."""
    if pad <= 0:
        return pred
    b = pred["boxes"] - pad
    ctr = (b[:, :2] + b[:, 2:]) / 2
    keep = (ctr[:, 0] >= 0) & (ctr[:, 1] >= 0) & (ctr[:, 0] <= w) & (ctr[:, 1] <= h)
    b = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
    out = {k: v[keep] for k, v in pred.items() if k != "boxes"}
    out["boxes"] = b[keep]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("config")
    ap.add_argument("--mirror", type=float, nargs="+", default=[0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3],
                    help="border widths to try, in red-cell diameters of the model's scale")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    cfg, wrapper, val_sets = pooled_validation(args.onnx, args.config)
    sidecar = json.load(open(os.path.splitext(T.resolve(args.onnx))[0] + ".labels.json"))
    shipped = [sidecar["scoreThresholds"][c] for c in CLASSES]
    diameter = sidecar["redCellDiameterPx"]
    log.info("shipped thresholds %s; red cell %.1f px", shipped, diameter)
    rules = one_cell_rules(cfg)

    result = {}
    for k in args.mirror:
        pad = int(round(k * diameter))
        t = time.time()
        with torch.no_grad():
            outputs = {name: (ss, [wrapper(E.network_input(mirrored(s.image, pad))) for s in ss]) for name, ss in val_sets.items()}

        def decoded(thresholds, floor):
            return {name: (ss, [back_to_image(decode(o, thresholds, nms_iou=cfg.get("nms_iou", 0.5), suppressor_floor=floor, **rules),
                                              pad, s.image.shape[1], s.image.shape[0]) for s, o in zip(ss, outs)])
                    for name, (ss, outs) in outputs.items()}

        low = [0.01] * len(CLASSES)
        # at the shipped thresholds: the pooled report of pooled_thresholds on a one-point grid per class
        at_shipped = {}
        preds = decoded(low, shipped)
        for c, cname in enumerate(CLASSES):
            _, rep = E.pooled_thresholds(preds, grid=np.array([shipped[c]]))
            at_shipped[cname] = rep[cname]
        # thresholds chosen again (fixed point as service_thresholds)
        floor = None
        for _ in range(4):
            chosen, pooled = E.pooled_thresholds(decoded(low, floor))
            if floor is not None and chosen == floor:
                break
            floor = chosen
        result[f"{k:g}"] = {"pad_px": pad, "at_shipped": at_shipped, "chosen_thresholds": dict(zip(CLASSES, chosen)), "chosen": pooled}
        mean_shipped = np.mean([at_shipped[c]["mean_F1"] for c in CLASSES])
        mean_chosen = np.mean([pooled[c]["mean_F1"] for c in CLASSES])
        log.info("mirror %g (%d px, %.0f s): mean F1 over classes at shipped thresholds %.4f, chosen %.4f %s", k, pad, time.time() - t,
                 mean_shipped, mean_chosen, dict(zip(CLASSES, chosen)))
        for cname in CLASSES:
            r = at_shipped[cname]
            log.info("  shipped %-9s mean F1 %.4f  %s", cname, r["mean_F1"],
                     {n: (round(v["F1"], 4), v["countErrorPct"]) for n, v in r["sources"].items()})
    if args.json:
        json.dump(result, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
