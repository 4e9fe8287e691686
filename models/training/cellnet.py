"""CellNet: a small anchor-free (CenterNet-style) detector for blood-smear fields.

Backbone: a slim ResNet/MobileNet hybrid (plain 3x3 convs where the maps are small, depthwise-separable
blocks where they are large) down to stride 32; a light FPN brings stride 32/16/8 context back to stride 4,
where the heads predict per-class centre heatmaps, box size, sub-cell offset and the white-cell subtype.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = ["WBC", "RBC", "Platelets"]
SUBTYPES = ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"]
STRIDE = 4
SIZE_UNIT = 32.0  # size head predicts log(size / SIZE_UNIT); exported graph returns size in input pixels
# BCCD trainval RGB statistics (0..1), rounded; normalisation lives inside the graph.
MEAN = (0.74, 0.70, 0.72)
STD = (0.08, 0.10, 0.08)


def conv_bn(cin, cout, k=3, s=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DSBlock(nn.Module):
    """Residual depthwise-separable block (inverted bottleneck, expansion e)."""

    def __init__(self, c, e=2):
        super().__init__()
        h = c * e
        self.body = nn.Sequential(conv_bn(c, h, 1), conv_bn(h, h, 3, groups=h), conv_bn(h, c, 1, act=False))

    def forward(self, x):
        return F.relu(x + self.body(x))


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c, 3), conv_bn(c, c, 3, act=False))

    def forward(self, x):
        return F.relu(x + self.body(x))


class SepConv(nn.Module):
    """3x3 depthwise + 1x1 pointwise, each with BN+ReLU: cheap smoothing at high resolution."""

    def __init__(self, cin, cout):
        super().__init__()
        self.dw = conv_bn(cin, cin, 3, groups=cin)
        self.pw = conv_bn(cin, cout, 1)

    def forward(self, x):
        return self.pw(self.dw(x))


class CellNet(nn.Module):
    def __init__(self, width=(16, 32, 64, 128, 192), neck=64, head=48, num_classes=3, num_subtypes=5):
        super().__init__()
        c1, c2, c3, c4, c5 = width
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.stem = conv_bn(3, c1, 3, 2)                                            # /2
        self.s2 = nn.Sequential(conv_bn(c1, c2, 3, 2), DSBlock(c2))                 # /4
        self.s3 = nn.Sequential(conv_bn(c2, c3, 3, 2), DSBlock(c3), DSBlock(c3))   # /8
        self.s4 = nn.Sequential(conv_bn(c3, c4, 3, 2), DSBlock(c4, 3), DSBlock(c4, 3))  # /16
        self.s5 = nn.Sequential(conv_bn(c4, c5, 3, 2), BasicBlock(c5), DSBlock(c5))  # /32
        self.lat5 = conv_bn(c5, neck, 1)
        self.lat4 = conv_bn(c4, neck, 1)
        self.lat3 = conv_bn(c3, neck, 1)
        self.lat2 = conv_bn(c2, head, 1)
        self.smooth4 = SepConv(neck, neck)
        self.smooth3 = SepConv(neck, neck)
        self.reduce3 = conv_bn(neck, head, 1)
        self.smooth2 = SepConv(head, head)
        self.hm_head = nn.Sequential(SepConv(head, head), nn.Conv2d(head, num_classes, 1))
        self.reg_head = nn.Sequential(SepConv(head, head), nn.Conv2d(head, 4, 1))
        # Subtype needs whole-cell context: read it from the stride-8 map, upsample at the end.
        self.sub_head = nn.Sequential(SepConv(neck, neck), nn.Conv2d(neck, num_subtypes, 1))
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        last = self.hm_head[-1]
        nn.init.normal_(last.weight, std=0.01)
        nn.init.constant_(last.bias, -math.log((1 - 0.05) / 0.05))
        nn.init.normal_(self.reg_head[-1].weight, std=0.01)
        nn.init.normal_(self.sub_head[-1].weight, std=0.01)

    def forward(self, image, any_size=False):
        """any_size: upsample each FPN level to the size of the next (any input size) instead of doubling it
        (sides that are multiples of 32, as the contract's padding gives). Same values where both apply; the
        doubling keeps the one-pass graph free of shape arithmetic."""
        up = _up_to if any_size else _up2
        x = (image - self.mean) / self.std
        x = self.stem(x)
        f2 = self.s2(x)
        f3 = self.s3(f2)
        f4 = self.s4(f3)
        f5 = self.s5(f4)
        p5 = self.lat5(f5)
        l4 = self.lat4(f4)
        p4 = self.smooth4(l4 + up(p5, l4))
        l3 = self.lat3(f3)
        p3 = self.smooth3(l3 + up(p4, l3))
        l2 = self.lat2(f2)
        p2 = self.smooth2(l2 + up(self.reduce3(p3), l2))
        hm = self.hm_head(p2)
        reg = self.reg_head(p2)
        sub = up(self.sub_head(p3), p2)
        return hm, reg[:, 0:2], reg[:, 2:4], sub


def _up2(x, like):
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def _up_to(x, like):
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


class ExportWrapper(nn.Module):
    """The graph the service runs: probabilities, 3x3 peak filter, sizes in input pixels, softmax subtypes.
    tta=2 also runs the mirror image (one batch of two) and averages the un-mirrored maps; tta=4 adds the
    vertical and both-way mirrors. Smears have no preferred orientation, so this is a free ensemble.
    scales: test-time resizes of the input (1.0 = as given, and must be one of them). The centre heatmaps of
    the resized copies are brought back to the input's grid and averaged with its own before the peak
    filter; sizes, offsets and subtypes stay those of the input as given. Cells vary in size between
    smears and labs, so a cell the network under-scores at one size is often found at a neighbouring one."""

    def __init__(self, net, tta=0, scales=(1.0,)):
        super().__init__()
        self.net = net
        self.tta = tta
        self.scales = tuple(float(f) for f in scales)
        if 1.0 not in self.scales:
            raise ValueError(f"test scales {self.scales} must include 1.0 (sizes and offsets come from it)")

    def forward(self, image):
        hm, size, off, sub = self._at_input_scale(image)
        extra = [f for f in self.scales if f != 1.0]
        if extra:
            for f in extra:
                # Resized exactly (not to the nearest multiple of 32, which would stretch cells unevenly).
                resized = F.interpolate(image, scale_factor=f, mode="bilinear", align_corners=False,
                                        recompute_scale_factor=False)
                hm_f = torch.sigmoid(self.net(resized, any_size=True)[0])
                hm = hm + F.interpolate(hm_f, size=hm.shape[-2:], mode="bilinear", align_corners=False)
            hm = hm / float(len(extra) + 1)
        peak = F.max_pool2d(hm, 3, stride=1, padding=1)
        hm = hm * (peak == hm).to(hm.dtype)
        return hm, size, off, sub

    def _at_input_scale(self, image):
        if self.tta:
            views = [image, torch.flip(image, [3])]
            if self.tta >= 4:
                views += [torch.flip(image, [2]), torch.flip(image, [2, 3])]
            hm_raw, size_raw, off_raw, sub_raw = self.net(torch.cat(views, 0))
            hm_v, size_v, off_v, sub_v = torch.sigmoid(hm_raw), size_raw, torch.sigmoid(off_raw), torch.softmax(sub_raw, 1)
            hm, size, offx, offy, sub = [], [], [], [], []
            for k in range(len(views)):
                fx, fy = k in (1, 3), k in (2, 3)
                dims = [d for d, f in ((3, fx), (2, fy)) if f]

                def back(t):
                    return torch.flip(t, dims) if dims else t
                hm.append(back(hm_v[k:k + 1]))
                size.append(back(size_v[k:k + 1]))
                o = back(off_v[k:k + 1])
                offx.append(1 - o[:, 0:1] if fx else o[:, 0:1])
                offy.append(1 - o[:, 1:2] if fy else o[:, 1:2])
                sub.append(back(sub_v[k:k + 1]))
            n = float(len(views))
            hm = sum(hm) / n
            size = torch.exp(sum(size) / n) * SIZE_UNIT
            off = torch.cat([sum(offx) / n, sum(offy) / n], 1)
            sub = sum(sub) / n
        else:
            hm_raw, size_raw, off_raw, sub_raw = self.net(image)
            hm = torch.sigmoid(hm_raw)
            size = torch.exp(size_raw) * SIZE_UNIT
            off = torch.sigmoid(off_raw)
            sub = torch.softmax(sub_raw, dim=1)
        return hm, size, off, sub


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------- losses
def focal_loss(logits, target, neg_weight=None):
    """CenterNet penalty-reduced focal loss; target is the Gaussian heatmap (1 at centres).
    neg_weight (same shape, optional) scales the negative term, 0 inside ignore regions."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg
    if neg_weight is not None:
        neg_loss = neg_loss * neg_weight
    n = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / n.clamp(min=1.0)


def detection_loss(outputs, targets, w_size=1.0, w_off=1.0, w_sub=0.5, sub_class_weight=None):
    hm, size_raw, off_raw, sub_raw = outputs
    l_hm = focal_loss(hm, targets["heatmap"], targets.get("neg_weight"))
    mask = targets["reg_mask"]  # [B,1,h,w]
    n = mask.sum().clamp(min=1.0)
    l_size = (F.l1_loss(size_raw, targets["size"], reduction="none") * mask).sum() / n
    l_off = (F.l1_loss(torch.sigmoid(off_raw), targets["offset"], reduction="none") * mask).sum() / n
    sub_t = targets["subtype"]  # [B,h,w], -1 where unknown
    valid = sub_t >= 0
    if valid.any():
        l_sub = F.cross_entropy(sub_raw, sub_t.clamp(min=0), weight=sub_class_weight, reduction="none")
        l_sub = (l_sub * valid.float()).sum() / valid.float().sum()
    else:
        l_sub = hm.sum() * 0.0
    total = l_hm + w_size * l_size + w_off * l_off + w_sub * l_sub
    return total, {"hm": l_hm.item(), "size": l_size.item(), "off": l_off.item(), "sub": l_sub.item()}


# ----------------------------------------------------------------------------------------------- decode
def nms_per_class(boxes, scores, classes, iou):
    import torchvision
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    return torchvision.ops.batched_nms(boxes, scores, classes, iou)


def one_cell_each(boxes, scores, classes, cross_class_iou=None, containment=None, cross_class_of=None, parts_of=None,
                  suppressor_floor=None):
    """Indices (highest score first) of the detections left when each cell is kept once: a box overlapping a
    higher-scoring box of another class by IoU > cross_class_iou is the same cell seen as another class; a box lying
    more than `containment` inside a higher-scoring box of its own class is a part of that cell (a nucleus lobe).
    None switches a rule off. cross_class_of: class names whose pairs the cross-class rule compares (None: all).
    parts_of: class names whose cells are boxed in parts as well (the lobes of a segmented nucleus scored above the
    whole cell): a box with two or more kept boxes of its class each more than `containment` inside it replaces them.
    suppressor_floor (per class; for decoding below the operating thresholds, as evaluation does): only a kept box at
    or above its class's floor drops others or replaces parts, so the detections at the operating thresholds are
    those of a decode at them, as in the service. Exactly what the C# MultiClassNms does with the sidecar's
    crossClassIou/containment/crossClassOf/partsOf and its suppressorFloor."""
    order = torch.argsort(scores, descending=True, stable=True)
    if cross_class_iou is None and containment is None:
        return order
    kept = []
    b = boxes.tolist(); c = classes.tolist(); sc = scores.tolist()
    floor = None if suppressor_floor is None else [float(f) for f in suppressor_floor]
    marked = None if cross_class_of is None else {CLASSES.index(n) for n in cross_class_of}
    parted = set() if parts_of is None or containment is None else {CLASSES.index(n) for n in parts_of}

    areas = [max(x2 - x1, 0.0) * max(y2 - y1, 0.0) for x1, y1, x2, y2 in b]

    def intersection(i, k):
        (x1, y1, x2, y2), (u1, v1, u2, v2) = b[i], b[k]
        return max(0.0, min(x2, u2) - max(x1, u1)) * max(0.0, min(y2, v2) - max(y1, v1))

    def inside(k, i):  # fraction of box k's area inside box i
        return intersection(i, k) / areas[k] if areas[k] > 0 else 0.0

    for i in order.tolist():
        drop = False
        for k in kept:
            if floor is not None and sc[k] < floor[c[k]]:
                continue
            inter = intersection(i, k)
            if inter <= 0:
                continue
            if c[k] != c[i]:
                if marked is not None and not (c[k] in marked and c[i] in marked):
                    continue
                if cross_class_iou is not None and inter / (areas[i] + areas[k] - inter) > cross_class_iou:
                    drop = True
                    break
            elif containment is not None and inside(i, k) > containment:
                drop = True
                break
        if not drop:
            if c[i] in parted and (floor is None or sc[i] >= floor[c[i]]):
                parts = {k for k in kept if c[k] == c[i] and inside(k, i) > containment}
                if len(parts) >= 2:  # one box inside another is left alone: a cell inside a wrong, larger box
                    kept = [k for k in kept if k not in parts]
            kept.append(i)
    return torch.tensor(kept, dtype=torch.long)


def one_cell_rules(cfg):
    """The config's one-cell-each rules (keys cross_class_iou, containment, cross_class_of, parts_of; absent: off) as
    decode() arguments, so thresholds are chosen, the parity fixture is written and the sidecar is filled with the
    decode that ships."""
    return {"cross_class_iou": cfg.get("cross_class_iou"), "containment": cfg.get("containment"),
            "cross_class_of": cfg.get("cross_class_of"), "parts_of": cfg.get("parts_of")}


def decode(outputs, thresholds, nms_iou=0.5, max_det=300, top_k=500, cross_class_iou=None, containment=None, cross_class_of=None,
           parts_of=None, suppressor_floor=None):
    """Decode ExportWrapper outputs for one image (batch index 0) into detections, exactly as the C# side
    is specified to: peaks above the class threshold, centre = (j + off_x, i + off_y) * stride, box = centre
    +- size/2, then per-class NMS, then (when set) one detection per cell (one_cell_each), highest scores first, at
    most max_det. thresholds: list per class; suppressor_floor: see one_cell_each."""
    hm, size, off, sub = [o[0] for o in outputs]
    C, h, w = hm.shape
    thr = torch.tensor(thresholds, dtype=hm.dtype).view(C, 1, 1)
    keep = hm > thr
    cls, ii, jj = torch.nonzero(keep, as_tuple=True)
    scores = hm[cls, ii, jj]
    if scores.numel() > top_k:
        scores, order = scores.topk(top_k)
        cls, ii, jj = cls[order], ii[order], jj[order]
    cx = (jj.float() + off[0, ii, jj]) * STRIDE
    cy = (ii.float() + off[1, ii, jj]) * STRIDE
    bw, bh = size[0, ii, jj], size[1, ii, jj]
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
    k = nms_per_class(boxes, scores, cls, nms_iou)
    if cross_class_iou is not None or containment is not None:
        k = k[one_cell_each(boxes[k], scores[k], cls[k], cross_class_iou, containment, cross_class_of, parts_of, suppressor_floor)]
    k = k[:max_det]
    sub_prob = sub[:, ii[k], jj[k]].T  # [n,S]
    return {
        "boxes": boxes[k], "scores": scores[k], "classes": cls[k],
        "subtype_prob": sub_prob, "cells": torch.stack([ii[k], jj[k]], 1),
    }
