#!/usr/bin/python3
"""Scale / stain / illumination robustness of a checkpoint on the BCCD test split (never trained on):
each test image is resized (cells get bigger or smaller, as with another camera/objective) or recoloured,
boxes are mapped alike, and AP is measured at the shipped thresholds.

    /usr/bin/python3 models/training/robustness.py --checkpoint models/training/runs/final/model.pt [--variant 3scale --out F]
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
from cellnet import CLASSES, CellNet, ExportWrapper  # noqa: E402
import data as D  # noqa: E402
import evaluate as E  # noqa: E402


def variant(s, scale=1.0, colour=None):
    img = s.image
    if scale != 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if colour == "warm-dim":  # dimmer, yellower lamp, lower contrast
        x = img.astype(np.float32) * np.array([0.85, 0.78, 0.62], np.float32)
        img = np.clip((x - x.mean()) * 0.8 + x.mean(), 0, 255).astype(np.uint8)
    elif colour == "pale-stain":  # weaker, bluer stain (optical density x0.7, hue pushed blue)
        od = -np.log(np.clip(img.astype(np.float32) / 255.0, 1 / 255.0, 1))
        od *= np.array([0.75, 0.65, 0.6], np.float32)
        img = np.clip(np.exp(-od) * 255.0, 0, 255).astype(np.uint8)
    return D.Sample(s.name, img, s.boxes * scale, s.classes, s.subtypes, s.source)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--thresholds-from", default=os.path.join(REPO, "models/training/metrics.json"))
    ap.add_argument("--out", default=os.path.join(REPO, "models/training/robustness.json"))
    ap.add_argument("--bccd", default="/work/shared/datasets/bccd")
    ap.add_argument("--tta", type=int, default=0, help="test-time flips (0 = none, as the shipped graph; 2, 4)")
    ap.add_argument("--variant", help="a graph variant of the metrics file (e.g. 3scale): its test scales and thresholds")
    ap.add_argument("--base-scale", type=float, default=0.75,
                    help="the operating resize of BCCD (0.075 um/px camera / 0.1 um/px model); variants are relative to it")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = CellNet()
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu")["model"])
    metrics = json.load(open(args.thresholds_from))
    chosen = metrics["variants"][args.variant] if args.variant else metrics
    scales = chosen.get("test_scales", [1.0])
    wrapper = ExportWrapper(model.eval(), args.tta, scales)
    thr = chosen["thresholds"]
    thr = [thr[c] for c in CLASSES]
    test = D.load_bccd(args.bccd, "test")
    rows = []
    for name, scale, colour in [("scale 0.6", 0.6, None), ("scale 0.75", 0.75, None), ("operating scale", 1.0, None),
                                ("scale 1.25", 1.25, None), ("scale 1.5", 1.5, None),
                                ("warm dim lamp", 1.0, "warm-dim"), ("pale blue stain", 1.0, "pale-stain")]:
        vs = [variant(s, scale * args.base_scale, colour) for s in test]
        r = E.evaluate(vs, E.run_model(wrapper, vs), thr)
        row = {"variant": name, "mAP50": round(r["mAP50"], 3), "AP": round(r["AP"], 3),
               **{c: round(r["per_class"][c]["AP50"], 3) for c in CLASSES},
               "subtype_acc": round(r["subtype"]["accuracy"], 3)}
        print(row, flush=True)
        rows.append(row)
    json.dump({"checkpoint": os.path.relpath(args.checkpoint, REPO), "split": "BCCD test", "tta": args.tta, "variant": args.variant, "test_scales": scales, "base_scale": args.base_scale,
               "note": "scale x = cells x times the size the model expects at its micrometresPerPixel", "rows": rows},
              open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
