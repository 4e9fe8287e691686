#!/usr/bin/python3
"""Export CellNet to ONNX (opset 17) with its sidecar labels file and the C# parity fixture.

    /usr/bin/python3 models/training/export.py --checkpoint models/training/runs/final/model.pt \
        --thresholds-from models/training/metrics.json
"""
import argparse
import glob
import json
import logging
import math
import os
import sys

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

from cellnet import CLASSES, STRIDE, SUBTYPES, CellNet, ExportWrapper, one_cell_rules  # noqa: E402
import data as D  # noqa: E402
from evaluate import pad_to_multiple, predict  # noqa: E402

log = logging.getLogger("cellnet")
OPSET = 17
OUTPUTS = ["heatmap", "size", "offset", "subtype"]


def test_scales(cfg):
    """The config's test-time resizes (1.0 alone = one pass at the input's own size)."""
    return tuple(float(f) for f in cfg.get("test_scales", [1.0]))


def _suffixed(path, name):
    """models/cellnet.onnx -> models/cellnet-NAME.onnx; models/cellnet.labels.json -> models/cellnet-NAME.labels.json."""
    folder, file = os.path.split(path)
    stem, dot, rest = file.partition(".")
    return os.path.join(folder, f"{stem}-{name}{dot}{rest}")


def variant_config(cfg, name):
    """The config for exporting graph variant NAME of cfg["variants"] (same weights, other test-time settings):
    its own files (cellnet-NAME.onnx, .labels.json, a parity fixture folder ending in -NAME) and the version
    VERSION+NAME, so results from the two graphs can be told apart downstream."""
    variants = cfg.get("variants", {})
    if name not in variants:
        raise SystemExit(f"no variant {name!r} in the config (has: {', '.join(variants) or 'none'})")
    out = {k: v for k, v in cfg.items() if k != "variants"}
    out.update(variants[name])
    out["version"] = f"{cfg.get('version', '1.0.0')}+{name}"
    out["onnx"] = _suffixed(cfg.get("onnx", "models/cellnet.onnx"), name)
    out["labels"] = _suffixed(cfg.get("labels", "models/cellnet.labels.json"), name)
    parity = cfg.get("parity_dir", "tests/fixtures/parity")
    out["parity_dir"] = f"{parity}-{name}" if parity else ""
    return out


def sidecar(thresholds, version="1.0.0", mpp=0.1, nms_iou=0.5, max_det=300, scales=(1.0,), red_cell_diameter_px=None,
            subtype_stage=None, cross_class_iou=None, containment=None, cross_class_of=None, min_size_of_red_cell=None,
            name="edgecounter-cellnet", licence=None, parts_of=None):
    """The detector's sidecar (docs/model-contract.md). red_cell_diameter_px: the model's own red-cell box size at its
    pixel scale (the ruler of automatic scale calibration); subtype_stage: the file name of the white-cell subtype
    stage beside it, whose verdict for an unsure cell ("unidentified") then counts in the WBC group and the
    differential."""
    differential = list(SUBTYPES) + (["unidentified"] if subtype_stage else [])
    # Classes beyond the blood three (the marrow model's plasma_cell) are white cells: in the WBC group, so a white
    # count still holds every white cell, and left out of the blood differential.
    extra = [c for c in CLASSES if c not in ("WBC", "RBC", "Platelets")]
    sc = {
        "name": name,
        "version": version,
        "input": {"name": "image", "layout": "NCHW", "colour": "RGB", "range": [0, 1],
                  "sizeMultiple": 32, "micrometresPerPixel": mpp, "stride": STRIDE},
        "classes": list(CLASSES),
        "subtypes": {"of": "WBC", "labels": list(SUBTYPES), **({"stage": subtype_stage} if subtype_stage else {})},
        "groups": {"WBC": differential + extra, "granulocyte": ["neutrophil", "eosinophil", "basophil"]},
        "differential": differential,
        "scoreThresholds": {c: float(t) for c, t in zip(CLASSES, thresholds)},
        "nmsIou": nms_iou,
        "maxDetections": max_det,
        "testScales": [float(f) for f in scales],
        "redCellClass": "RBC",
    }
    if cross_class_iou is not None:
        sc["crossClassIou"] = float(cross_class_iou)
    if cross_class_of is not None:
        sc["crossClassOf"] = list(cross_class_of)
    if containment is not None:
        sc["containment"] = float(containment)
    if parts_of is not None:
        sc["partsOf"] = list(parts_of)
    if min_size_of_red_cell:
        sc["minSizeOfRedCell"] = {c: float(f) for c, f in min_size_of_red_cell.items()}
    if red_cell_diameter_px:
        sc["redCellDiameterPx"] = round(float(red_cell_diameter_px), 1)
    if licence:
        sc["licence"] = licence
    return sc


def red_cell_diameter(preds, image_sizes, min_score=0.5, max_aspect=1.4, edge=2.0):
    """The model's red-cell size at its own pixel scale, as the C# ruler measures it (RedCellRuler): the median
    sqrt(w*h) of confident, whole (not touching the frame), roundish red-cell boxes; preds from fields at the
    model's micrometresPerPixel (simulator fields)."""
    sides = []
    rbc = CLASSES.index("RBC")
    for p, (w, h) in zip(preds, image_sizes):
        for b, s, c in zip(p["boxes"].numpy(), p["scores"].numpy(), p["classes"].numpy()):
            if c != rbc or s < min_score:
                continue
            bw, bh = b[2] - b[0], b[3] - b[1]
            if b[0] <= edge or b[1] <= edge or b[2] >= w - edge or b[3] >= h - edge or max(bw, bh) > max_aspect * min(bw, bh):
                continue
            sides.append(math.sqrt(bw * bh))
    return float(np.median(sides)) if sides else None


def _wrap(model, tta, scales=(1.0,)):
    return ExportWrapper(model, tta, scales).eval()


def export_onnx(model, path, tta=0, scales=(1.0,)):
    import onnx
    wrapper = _wrap(model, tta, scales)
    dummy = torch.rand(1, 3, 480, 640)
    dyn = {"image": {2: "H", 3: "W"}}
    for o in OUTPUTS:
        dyn[o] = {2: "h", 3: "w"}
    torch.onnx.export(wrapper, dummy, path, opset_version=OPSET, input_names=["image"], output_names=OUTPUTS,
                      dynamic_axes=dyn, do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    assert opset <= 17, opset
    log.info("exported %s (%.2f MB, opset %d), onnx.checker passed", path, os.path.getsize(path) / 1e6, opset)
    return {"path": os.path.relpath(path, REPO), "bytes": os.path.getsize(path), "opset": opset}


def onnx_cross_check(path, x, torch_outs):
    """Run the exported graph in OpenCV's DNN (no onnxruntime for Python here) and compare with PyTorch.
    OpenCV 4.6 cannot read graphs that size a resize from the input's shape (the test-scale variants): then this
    records the error, and the C# parity test with ONNX Runtime is the check."""
    try:
        net = cv2.dnn.readNetFromONNX(path)
        net.setInput(x.numpy())
        outs = net.forward(OUTPUTS)
        diffs = {n: float(np.abs(o - t.numpy()).max()) for n, o, t in zip(OUTPUTS, outs, torch_outs)}
        return {"runtime": f"opencv-dnn {cv2.__version__}", "max_abs_diff": diffs}
    except Exception as e:  # the C# parity test with ONNX Runtime is the authoritative check
        return {"runtime": f"opencv-dnn {cv2.__version__}", "error": str(e)[:300]}


def parity_image(synth_dir, w=400, h=300):
    """A simulator field cropped to w x h (not a multiple of 32 on purpose, so the caller's padding is
    exercised): the first field, in name order, with a crop that fully holds a white cell and a platelet.
    Falls back to a self-drawn toy field when no simulator output exists."""
    files = []
    if synth_dir and os.path.isdir(synth_dir):
        files = sorted(glob.glob(os.path.join(synth_dir, "JPEGImages", "*.jpg")) +
                       glob.glob(os.path.join(synth_dir, "JPEGImages", "*.png")))
    for f in files[:200]:
        xml = os.path.join(synth_dir, "Annotations", os.path.splitext(os.path.basename(f))[0] + ".xml")
        if not os.path.isfile(xml):
            continue
        objs = [(D.LABEL_MAP.get(n.lower(), (None, -1))[0], b) for n, b in D.parse_voc(xml)[1]]
        img = D.read_rgb(f)
        H, W = img.shape[:2]
        for y0 in range(0, H - h + 1, 20):
            for x0 in range(0, W - w + 1, 20):
                inside = {c for c, (x1, y1, x2, y2) in objs
                          if x1 - 1 >= x0 + 4 and y1 - 1 >= y0 + 4 and x2 <= x0 + w - 4 and y2 <= y0 + h - 4}
                if D.WBC in inside and D.CLASS_INDEX["Platelets"] in inside:
                    return img[y0:y0 + h, x0:x0 + w].copy(), f"{os.path.relpath(f, REPO)} crop x={x0} y={y0}"
    if files:
        img = D.read_rgb(files[0])
        return img[:h, :w].copy(), os.path.relpath(files[0], REPO)
    rng = np.random.default_rng(7)
    s = D.make_toy_field(rng, w // 3, h // 3)
    return cv2.resize(s.image, (w, h), interpolation=cv2.INTER_CUBIC), "toy field (data.make_toy_field, seed 7, x3)"


@torch.no_grad()
def write_parity(model, thresholds, out_dir, synth_dir, onnx_path, nms_iou=0.5, max_det=300, tta=0, scales=(1.0,), rules=None):
    os.makedirs(out_dir, exist_ok=True)
    img, origin = parity_image(synth_dir)
    cv2.imwrite(os.path.join(out_dir, "input.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    img = D.read_rgb(os.path.join(out_dir, "input.png"))  # exactly what the C# test will read
    wrapper = _wrap(model, tta, scales)
    padded = pad_to_multiple(img)
    x = torch.from_numpy(D.image_to_tensor_array(padded))[None]
    outs = wrapper(x)
    rules = rules or {}
    det = predict(wrapper, img, thresholds, nms_iou=nms_iou, max_det=max_det, **rules)
    hm, size, off, sub = [o[0] for o in outs]
    raw = {"shapes": {n: list(o.shape) for n, o in zip(OUTPUTS, outs)}, "heatmapMax": []}
    for c, cname in enumerate(CLASSES):
        flat = int(torch.argmax(hm[c]))
        i, j = divmod(flat, hm.shape[2])
        entry = {"class": cname, "value": float(hm[c, i, j]), "row": i, "col": j,
                 "size": [float(size[0, i, j]), float(size[1, i, j])],
                 "offset": [float(off[0, i, j]), float(off[1, i, j])],
                 "peakCount": int((hm[c] > thresholds[c]).sum())}
        if cname == "WBC":
            entry["subtype"] = [float(v) for v in sub[:, i, j]]
        raw["heatmapMax"].append(entry)
    dets = []
    for b, s, c, sp in zip(det["boxes"], det["scores"], det["classes"], det["subtype_prob"]):
        cname = CLASSES[int(c)]
        label = SUBTYPES[int(torch.argmax(sp))] if cname == "WBC" else cname
        dets.append({"class": cname, "label": label, "score": round(float(s), 6),
                     "box": [round(float(v), 3) for v in b]})
    ref = {
        "model": "models/cellnet.onnx", "image": "input.png", "imageOrigin": origin,
        "width": img.shape[1], "height": img.shape[0], "paddedWidth": padded.shape[1],
        "paddedHeight": padded.shape[0], "resize": 1.0,
        "note": "PyTorch detections of the exported graph: peaks above scoreThresholds, per-class NMS at nmsIou, one cell each (crossClassIou, containment; null: off), "
                "boxes in input pixels (no resize: the image is at the model's micrometresPerPixel). "
                "Raw values are read from the padded input's outputs at the per-class heatmap maximum.",
        "scoreThresholds": {c: float(t) for c, t in zip(CLASSES, thresholds)}, "nmsIou": nms_iou,
        "crossClassIou": rules.get("cross_class_iou"), "crossClassOf": rules.get("cross_class_of"), "containment": rules.get("containment"),
        "partsOf": rules.get("parts_of"), "detections": dets, "raw": raw,
        "crossCheck": onnx_cross_check(onnx_path, x, outs),
    }
    json.dump(ref, open(os.path.join(out_dir, "reference.json"), "w"), indent=1)
    log.info("parity fixture: %d detections on %s; cross-check %s", len(dets), origin, ref["crossCheck"])
    return {"detections": len(dets), "origin": origin, "crossCheck": ref["crossCheck"]}


def measure_red_cell_diameter(model, cfg, tta=0, scales=(1.0,), fields=40):
    """redCellDiameterPx of this graph, measured on held-out simulator fields (the config's synth source's val_dir,
    at the model's pixel scale): what automatic scale calibration resizes frames to."""
    src = next((x for x in cfg.get("sources", []) if x["kind"] == "synth" and x.get("val_dir")), None)
    if src is None:
        return None
    samples = D.load_synth(os.path.join(REPO, src["val_dir"]))[:fields]
    wrapper = _wrap(model, tta, scales)
    preds = [predict(wrapper, s.image, [0.5] * len(CLASSES)) for s in samples]
    d = red_cell_diameter(preds, [(s.image.shape[1], s.image.shape[0]) for s in samples])
    log.info("red-cell ruler: median box side %s px on %d simulator fields at the model's scale", d and round(d, 1), len(samples))
    return d


def export_all(model, thresholds, cfg, synth_dir=None):
    model = model.eval()
    onnx_path = os.path.join(REPO, cfg.get("onnx", "models/cellnet.onnx"))
    labels_path = os.path.join(REPO, cfg.get("labels", "models/cellnet.labels.json"))
    os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
    tta = cfg.get("tta", 0)
    scales = test_scales(cfg)
    info = export_onnx(model, onnx_path, tta, scales)
    info["tta"] = tta
    info["test_scales"] = list(scales)
    diameter = cfg.get("red_cell_diameter_px") or measure_red_cell_diameter(model, cfg, tta, scales)
    sc = sidecar(thresholds, version=cfg.get("version", "1.0.0"), mpp=cfg.get("micrometres_per_pixel", 0.1), scales=scales,
                 red_cell_diameter_px=diameter, subtype_stage=cfg.get("subtype_stage"), min_size_of_red_cell=cfg.get("min_size_of_red_cell"),
                 name=cfg.get("model_name", "edgecounter-cellnet"), licence=cfg.get("licence"), **one_cell_rules(cfg))
    json.dump(sc, open(labels_path, "w"), indent=2)
    info["labels"] = os.path.relpath(labels_path, REPO)
    if cfg.get("parity_dir", "tests/fixtures/parity"):
        info["parity"] = write_parity(model, thresholds, os.path.join(REPO, cfg.get("parity_dir", "tests/fixtures/parity")),
                                      synth_dir, onnx_path, sc["nmsIou"], sc["maxDetections"], tta, scales, one_cell_rules(cfg))
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--thresholds-from", help="metrics.json whose 'thresholds' to use (else sidecar default 0.3)")
    ap.add_argument("--synth-dir")
    ap.add_argument("--thresholds", help="explicit per-class thresholds, e.g. WBC=0.357,RBC=0.293,Platelets=0.448")
    ap.add_argument("--tta", type=int, help="0 (one pass), 2 (+ mirror) or 4 (+ flips); default: the config's")
    ap.add_argument("--variant", help="export graph variant NAME of the config's \"variants\" (e.g. 3scale) instead of the main graph")
    ap.add_argument("--version", help="model version in the sidecar; default: the config's")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(2)
    ck = torch.load(args.checkpoint, map_location="cpu")
    cfg = dict(ck["config"])
    if args.tta is not None:
        cfg["tta"] = args.tta
    if args.version:
        cfg["version"] = args.version
    for k in ("onnx", "labels", "parity_dir"):  # write the shipped files, not wherever the run (--scratch) kept its own
        if "/runs/" in str(cfg.get(k, "")).replace(os.sep, "/"):
            cfg.pop(k, None)
    if args.variant:
        cfg = variant_config(cfg, args.variant)
    if "classes" in cfg:
        D.configure_classes(cfg["classes"])
    model = CellNet(num_classes=len(CLASSES), **cfg.get("model", {}))
    model.load_state_dict(ck["model"])
    thr = [0.3] * len(CLASSES)
    if args.thresholds_from:
        m = json.load(open(args.thresholds_from))
        t = m["variants"][args.variant]["thresholds"] if args.variant else m["thresholds"]
        thr = [t[c] for c in CLASSES]
    if args.thresholds:
        kv = dict(p.split("=") for p in args.thresholds.split(","))
        thr = [float(kv[c]) for c in CLASSES]
    synth_dir = args.synth_dir or (os.path.join(REPO, cfg["synth"]["dir"]) if cfg.get("synth") else None)
    print(json.dumps(export_all(model, thr, cfg, synth_dir), indent=1))


if __name__ == "__main__":
    main()
