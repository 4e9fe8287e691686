#!/usr/bin/env python3
"""Test graphs of the other detector families, with PyTorch's own detections as the reference (issue 15).

Builds two small networks with fixed, seeded weights (not trained: the test proves the adapters read the layouts, not
that the networks find cells) and exports each to ONNX (opset 17 for YOLO, 11 for torchvision's Faster R-CNN, whose
export the torchvision docs give at 11) beside a sidecar and reference.json:

- yolo/: the output layout of an Ultralytics YOLOv8/v11 detection export, [1, 4 + classes, anchors] over strides
  8/16/32, box centre/size in input pixels and sigmoid class scores, fixed 256x256 input. The reference decodes as
  Ultralytics' predictor does: letterbox (grey 114, centred), best class per anchor above its threshold,
  torchvision batched NMS, boxes un-letterboxed and clipped to the image.
- fasterrcnn/: torchvision's FasterRCNN with a small backbone, input [3, H, W] RGB 0..1, outputs boxes/labels/scores;
  the reference is the model's own output above the sidecar thresholds.

Both run on a synthetic smear (input.png, drawn here: a few purple and many pink discs on a pale background).
Usage: python3 models/training/families.py [OUT_DIR=tests/fixtures/families]
"""
import json
import os
import sys

import cv2
import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign, batched_nms

CLASSES = ["WBC", "RBC", "Platelets"]


def smear(width, height, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), (226, 214, 236), np.uint8)  # BGR, pale pink-grey
    for _ in range(int(width * height / 2500)):
        c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(img, c, int(rng.integers(width // 40, width // 25)), (150, 130, 215), -1)  # red cells
    for _ in range(3):
        c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(img, c, width // 16, (190, 120, 160), -1)
        cv2.circle(img, c, width // 24, (150, 50, 110), -1)  # white cells, dark nucleus
    img = cv2.GaussianBlur(img, (5, 5), 1.2)
    # Noise where flat areas would give equal features: equal objectness scores are ties that ONNX Runtime and PyTorch
    # break differently in the RPN's top-k (no noise elsewhere: the fixture stays a small PNG).
    return np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8) if noise else img


def to_tensor(bgr):
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


class TinyYolo(nn.Module):
    """Three levels (strides 8, 16, 32) ending in Ultralytics' exported layout."""

    def __init__(self, classes):
        super().__init__()
        def conv(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, 2, 1), nn.SiLU())
        self.stem = nn.Sequential(conv(3, 8), conv(8, 16), conv(16, 16))  # stride 8
        self.p4, self.p5 = conv(16, 16), conv(16, 16)
        self.heads = nn.ModuleList(nn.Conv2d(16, 4 + classes, 1) for _ in range(3))
        self.classes = classes

    def calibrate(self, x, fraction=0.03):
        """Shifts each level's class biases so that about `fraction` of its anchors score above 0.6 on `x`: seeded
        weights alone score one class everywhere, a layout test needs a few boxes of each class."""
        with torch.no_grad():
            for head in self.heads:
                head.weight[4:].mul_(6)
            p3 = self.stem(x)
            p4 = self.p4(p3)
            for feat, head in zip((p3, p4, self.p5(p4)), self.heads):
                logits = head(feat)[0, 4:].flatten(1)  # [nc, h*w], before the sharpening x4
                q = torch.quantile(logits, 1 - fraction, dim=1)
                head.bias[4:] -= q - float(np.log(0.6 / 0.4)) / 4

    def forward(self, x):
        p3 = self.stem(x)
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        outs = []
        for feat, head, stride in zip((p3, p4, p5), self.heads, (8, 16, 32)):
            o = head(feat)
            b, _, h, w = o.shape
            gy, gx = torch.meshgrid(torch.arange(h, dtype=o.dtype), torch.arange(w, dtype=o.dtype), indexing="ij")
            cx = (gx + torch.sigmoid(o[:, 0])) * stride
            cy = (gy + torch.sigmoid(o[:, 1])) * stride
            bw = torch.exp(o[:, 2].clamp(-4, 4)) * stride * 2
            bh = torch.exp(o[:, 3].clamp(-4, 4)) * stride * 2
            scores = torch.sigmoid(4 * o[:, 4:])  # sharp: few scores near any threshold
            level = torch.cat([cx[:, None], cy[:, None], bw[:, None], bh[:, None], scores], 1)
            outs.append(level.reshape(b, 4 + self.classes, h * w))
        return torch.cat(outs, 2)


def letterbox(bgr, size):
    """Ultralytics' letterbox as the adapter does it: shrink to fit (never enlarge), centre, pad grey 114."""
    h, w = bgr.shape[:2]
    gain = min(1.0, size / w, size / h)
    rw, rh = int(round(w * gain)), int(round(h * gain))
    resized = bgr if (rw, rh) == (w, h) else cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA)
    ox, oy = (size - rw) // 2, (size - rh) // 2
    out = np.full((size, size, 3), 114, np.uint8)
    out[oy:oy + rh, ox:ox + rw] = resized
    return out, rw / w, rh / h, ox, oy


def yolo_reference(model, bgr, size, thresholds, iou, max_det):
    boxed, sx, sy, ox, oy = letterbox(bgr, size)
    with torch.no_grad():
        pred = model(to_tensor(boxed)[None])[0]  # [4 + nc, N]
    pred = pred.T
    scores, cls = pred[:, 4:].max(1)
    keep = scores > torch.tensor(thresholds)[cls]
    pred, scores, cls = pred[keep], scores[keep], cls[keep]
    per_class = torch.bincount(cls, minlength=len(thresholds)).tolist()
    assert max(per_class) < 500, f"more candidates than the adapter's pre-NMS top-k: {per_class}"
    xyxy = torch.stack([pred[:, 0] - pred[:, 2] / 2, pred[:, 1] - pred[:, 3] / 2, pred[:, 0] + pred[:, 2] / 2, pred[:, 1] + pred[:, 3] / 2], 1)
    kept = batched_nms(xyxy, scores, cls, iou)[:max_det]
    h, w = bgr.shape[:2]
    out = []
    for k in kept.tolist():
        x1, y1, x2, y2 = xyxy[k].tolist()
        box = [min(max((x1 - ox) / sx, 0), w), min(max((y1 - oy) / sy, 0), h), min(max((x2 - ox) / sx, 0), w), min(max((y2 - oy) / sy, 0), h)]
        if box[2] - box[0] > 0 and box[3] - box[1] > 0:
            out.append({"class": CLASSES[int(cls[k])], "score": float(scores[k]), "box": box})
    return out, per_class


def tiny_faster_rcnn(classes):
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU())
    backbone.out_channels = 16
    anchors = AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    model = FasterRCNN(backbone, num_classes=None, rpn_anchor_generator=anchors, box_roi_pool=pool,
                       box_head=TwoMLPHead(16 * 7 * 7, 32), box_predictor=FastRCNNPredictor(32, classes + 1),
                       min_size=192, max_size=256, box_detections_per_img=100)
    with torch.no_grad():
        # Sharp scores, as a trained network's: seeded weights leave objectness and class scores nearly flat, and
        # near-ties let ONNX Runtime and PyTorch pick different proposals.
        model.rpn.head.cls_logits.weight.mul_(20)
        model.roi_heads.box_predictor.cls_score.weight.mul_(8)
    return model.eval()


def write(out_dir, name, sidecar, reference):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.labels.json"), "w") as f:
        json.dump(sidecar, f, indent=2)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
    print(f"{name}: {len(reference['detections'])} reference detections -> {out_dir}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "families")
    torch.manual_seed(15)

    # YOLO layout: a 512x384 frame shrinks to 256x192 and is letterboxed into the fixed 256x256 input.
    yolo = TinyYolo(len(CLASSES)).eval()
    frame = smear(512, 384, seed=1)
    yolo.calibrate(to_tensor(letterbox(frame, 256)[0])[None])
    thresholds, iou = [0.6, 0.6, 0.6], 0.45
    detections, per_class = yolo_reference(yolo, frame, 256, thresholds, iou, 300)
    d = os.path.join(out, "yolo")
    os.makedirs(d, exist_ok=True)
    cv2.imwrite(os.path.join(d, "input.png"), frame)
    torch.onnx.export(yolo, torch.zeros(1, 3, 256, 256), os.path.join(d, "model.onnx"), opset_version=17,
                      input_names=["images"], output_names=["output0"])
    write(d, "yolo", {
        "name": "tiny-yolo-layout", "version": "fixture", "family": "yolo",
        "input": {"name": "images"}, "classes": CLASSES,
        "scoreThresholds": dict(zip(CLASSES, thresholds)), "nmsIou": iou, "maxDetections": 300, "differential": ["WBC"],
    }, {"width": 512, "height": 384, "candidatesPerClass": per_class, "detections": detections})

    # torchvision Faster R-CNN: a 256x192 frame, which the graph's transform keeps at its size.
    frcnn = tiny_faster_rcnn(len(CLASSES))
    frame = smear(256, 192, seed=2, noise=4.0)
    with torch.no_grad():
        result = frcnn([to_tensor(frame)])[0]
    # Untrained scores sit low: the threshold keeps the best ~40, in the widest gap between two scores there.
    ranked = sorted(result["scores"].tolist(), reverse=True)
    gap = max(range(30, min(50, len(ranked) - 1)), key=lambda i: ranked[i] - ranked[i + 1])
    thresholds = [round((ranked[gap] + ranked[gap + 1]) / 2, 6)] * 3
    detections = [{"class": CLASSES[int(l) - 1], "score": float(s), "box": b.tolist()}
                  for b, l, s in zip(result["boxes"], result["labels"], result["scores"]) if float(s) > thresholds[int(l) - 1]]
    d = os.path.join(out, "fasterrcnn")
    os.makedirs(d, exist_ok=True)
    cv2.imwrite(os.path.join(d, "input.png"), frame)
    torch.onnx.export(frcnn, ([to_tensor(frame)],), os.path.join(d, "model.onnx"), opset_version=11,
                      input_names=["images"], output_names=["boxes", "labels", "scores"],
                      dynamic_axes={"images": [1, 2], "boxes": [0], "labels": [0], "scores": [0]})
    write(d, "fasterrcnn", {
        "name": "tiny-faster-rcnn", "version": "fixture", "family": "fasterrcnn",
        "classes": CLASSES, "scoreThresholds": dict(zip(CLASSES, thresholds)), "nmsIou": 0.5, "maxDetections": 300,
        "differential": ["WBC"],
    }, {"width": 256, "height": 192, "graphDetections": len(result["scores"]), "detections": detections})


if __name__ == "__main__":
    main()
