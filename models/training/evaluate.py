"""Our own detection evaluation: per-class AP (COCO 101-point interpolation; VOC all-point for AP50 too),
mAP50, AP@[.5:.95], AP75, F1-optimal thresholds, WBC subtype accuracy and confusion matrix."""
import math

import numpy as np
import torch

from cellnet import CLASSES, SUBTYPES, decode
from data import WBC, image_to_tensor_array

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def pad_to_multiple(img, m=32):
    h, w = img.shape[:2]
    H, W = int(math.ceil(h / m) * m), int(math.ceil(w / m) * m)
    if (H, W) == (h, w):
        return img
    out = np.zeros((H, W, 3), img.dtype)
    out[:h, :w] = img
    return out


def network_input(img_rgb):
    """The image as the graph takes it: padded to a multiple of 32, a batch of one."""
    return torch.from_numpy(image_to_tensor_array(pad_to_multiple(img_rgb)))[None]


@torch.no_grad()
def predict(wrapper, img_rgb, thresholds, nms_iou=0.5, max_det=300, cross_class_iou=None, containment=None, cross_class_of=None,
            parts_of=None, suppressor_floor=None):
    return decode(wrapper(network_input(img_rgb)), thresholds, nms_iou=nms_iou, max_det=max_det, cross_class_iou=cross_class_iou, containment=containment,
                  cross_class_of=cross_class_of, parts_of=parts_of, suppressor_floor=suppressor_floor)


def iou_matrix(a, b):
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]); ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (aa[:, None] + ab[None, :] - inter + 1e-9)


def match_image(det_boxes, det_scores, gt_boxes, thr):
    """Greedy by score: each detection takes the best-IoU unmatched GT at IoU >= thr. Returns tp flags and
    matched gt index per detection (-1 if none)."""
    order = np.argsort(-det_scores, kind="stable")
    tp = np.zeros(len(det_scores), bool)
    gi = np.full(len(det_scores), -1)
    if len(gt_boxes) == 0 or len(det_boxes) == 0:
        return tp, gi
    ious = iou_matrix(det_boxes, gt_boxes)
    used = np.zeros(len(gt_boxes), bool)
    for d in order:
        cand = np.where(~used & (ious[d] >= thr))[0]
        if len(cand):
            g = cand[np.argmax(ious[d, cand])]
            used[g] = True
            tp[d] = True
            gi[d] = g
    return tp, gi


def match_points(det_boxes, det_scores, points):
    """Greedy by score: each detection takes the nearest unmatched point inside its box."""
    order = np.argsort(-det_scores, kind="stable")
    tp = np.zeros(len(det_scores), bool)
    if len(points) == 0 or len(det_boxes) == 0:
        return tp
    used = np.zeros(len(points), bool)
    for d in order:
        b = det_boxes[d]
        inside = ~used & (points[:, 0] >= b[0]) & (points[:, 0] <= b[2]) & (points[:, 1] >= b[1]) & (points[:, 1] <= b[3])
        cand = np.where(inside)[0]
        if len(cand):
            ctr = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
            g = cand[np.argmin(np.hypot(*(points[cand] - ctr).T))]
            used[g] = True
            tp[d] = True
    return tp


def match_sample(s, p, c, thr):
    """True-positive flags and scores of class c's detections in one image, and the number of labelled cells.
    Unmatched detections on an ignore region of the class (a cell the source did not label) count neither way.
    Point-labelled samples match a point inside the detected box (IoU does not apply)."""
    g = s.boxes[s.classes == c]
    m = (p["classes"] == c).numpy()
    db, ds = p["boxes"].numpy()[m], p["scores"].numpy()[m]
    if getattr(s, "points", False):
        tp = match_points(db, ds, (g[:, :2] + g[:, 2:]) / 2)
    else:
        tp, _ = match_image(db, ds, g, thr)
    ib = s.ignore[0][s.ignore[1] == c] if hasattr(s, "ignore") else np.zeros((0, 4))
    if len(ib) and len(db):
        ctr = (db[:, :2] + db[:, 2:]) / 2
        on_ignore = ((ctr[:, None, 0] >= ib[None, :, 0]) & (ctr[:, None, 0] <= ib[None, :, 2]) &
                     (ctr[:, None, 1] >= ib[None, :, 1]) & (ctr[:, None, 1] <= ib[None, :, 3])).any(1)
        keep = tp | ~on_ignore
        tp, ds = tp[keep], ds[keep]
    return tp, ds, len(g)


def ap_from_pr(tp, scores, npos):
    if npos == 0:
        return float("nan"), float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = tp[order].astype(np.float64)
    ctp = np.cumsum(tp); cfp = np.cumsum(1 - tp)
    rec = ctp / npos
    prec = ctp / np.maximum(ctp + cfp, 1e-9)
    # precision envelope
    mpre = np.concatenate([[0.0], prec, [0.0]]); mrec = np.concatenate([[0.0], rec, [1.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    voc = float(np.sum((mrec[1:] - mrec[:-1]) * mpre[1:]))
    rs = np.linspace(0, 1, 101)
    idx = np.searchsorted(mrec[1:-1], rs, side="left") if len(rec) else np.array([], int)
    env = mpre[1:-1]
    coco = float(np.mean([env[i] if i < len(env) else 0.0 for i in idx])) if len(rec) else 0.0
    return coco, voc


def best_f1(tp, scores, npos):
    """Threshold maximising F1 (detections with score >= t are kept)."""
    if npos == 0 or len(scores) == 0:
        return 0.5, 0.0, 0.0, 0.0
    order = np.argsort(-scores, kind="stable")
    s = scores[order]; t = tp[order].astype(np.float64)
    ctp = np.cumsum(t); k = np.arange(1, len(s) + 1)
    prec = ctp / k; rec = ctp / npos
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-9)
    # only cut between distinct scores
    valid = np.r_[s[1:] < s[:-1], True]
    f1v = np.where(valid, f1, -1)
    i = int(np.argmax(f1v))
    thr = float(s[i]) if i + 1 >= len(s) else float((s[i] + s[i + 1]) / 2)
    return thr, float(f1[i]), float(prec[i]), float(rec[i])


def f1_at(tp, scores, npos, thr):
    k = scores >= thr
    ntp = tp[k].sum(); nd = k.sum()
    p = ntp / max(nd, 1); r = ntp / max(npos, 1)
    return float(2 * p * r / max(p + r, 1e-9)), float(p), float(r)


def run_model(wrapper, samples, nms_iou=0.5, low_thr=0.01, cross_class_iou=None, containment=None, cross_class_of=None,
              parts_of=None, suppressor_floor=None):
    """Detections of every sample decoded down to low_thr (for AP); suppressor_floor: the operating thresholds, so
    the one-cell rules act as in the service (cellnet.one_cell_each)."""
    wrapper.eval()
    return [predict(wrapper, s.image, [low_thr] * len(CLASSES), nms_iou=nms_iou, cross_class_iou=cross_class_iou,
                    containment=containment, cross_class_of=cross_class_of, parts_of=parts_of,
                    suppressor_floor=suppressor_floor) for s in samples]


@torch.no_grad()
def raw_outputs(wrapper, samples):
    """The network's outputs for every sample, to decode several ways without running it again."""
    wrapper.eval()
    return [wrapper(network_input(s.image)) for s in samples]


def service_thresholds(per_source_outputs, rules, nms_iou=0.5, low_thr=0.01, rounds=4, log=None):
    """pooled_thresholds for the decode the service runs, where only a box at or above its class's operating
    threshold drops others by the one-cell rules. The thresholds are their own suppressor floor, so they are found as
    a fixed point: decode with every box suppressing, choose, decode again with the choice as the floor, choose again,
    until the choice repeats (at most `rounds` choices). per_source_outputs: {name: (samples, raw_outputs)}; rules:
    one_cell_rules(cfg). Returns the thresholds, their pooled report and {name: (samples, preds)} decoded with them."""
    def decode_with(floor):
        return {name: (ss, [decode(o, [low_thr] * len(CLASSES), nms_iou=nms_iou, suppressor_floor=floor, **rules) for o in outs])
                for name, (ss, outs) in per_source_outputs.items()}
    floor = None
    for _ in range(rounds):
        preds = decode_with(floor)
        thresholds, pooled = pooled_thresholds(preds)
        if log:
            log(f"thresholds, suppressor floor {'none' if floor is None else floor}: {thresholds}")
        if (floor is not None and thresholds == floor) or (rules.get("cross_class_iou") is None and rules.get("containment") is None):
            return thresholds, pooled, preds
        floor = thresholds
    if log:
        log(f"thresholds did not repeat in {rounds} choices: the last one is used")
    return thresholds, pooled, decode_with(thresholds)


def evaluate(samples, preds, thresholds=None):
    """samples: list of data.Sample; preds: decode() dicts from run_model. thresholds (per class) is the
    operating point used for F1 and subtype figures; if None, the F1-optimal thresholds are chosen here."""
    res = {"per_class": {}}
    per_iou_maps = []
    chosen = []
    for c, cname in enumerate(CLASSES):
        aps = []
        for thr in IOU_THRESHOLDS:
            tps, scs, npos = [], [], 0
            for s, p in zip(samples, preds):
                if c not in getattr(s, "labelled", range(len(CLASSES))):
                    continue
                tp, ds, n = match_sample(s, p, c, thr)
                tps.append(tp); scs.append(ds); npos += n
            tp = np.concatenate(tps) if tps else np.zeros(0, bool)
            sc = np.concatenate(scs) if scs else np.zeros(0)
            coco, voc = ap_from_pr(tp, sc, npos)
            aps.append(coco)
            if thr == 0.5:
                ap50_voc = voc
                t_best, f1_best, p_best, r_best = best_f1(tp, sc, npos)
                t_use = t_best if thresholds is None else thresholds[c]
                f1, pr, rc = f1_at(tp, sc, npos, t_use)
                chosen.append(t_use)
                cls_res = {"gt": int(npos), "AP50": aps[0], "AP50_voc": ap50_voc,
                           "threshold": t_use, "F1": f1, "precision": pr, "recall": rc,
                           "best_F1_threshold": t_best, "best_F1": f1_best}
        cls_res["AP75"] = aps[5]
        cls_res["AP"] = float(np.mean(aps))
        res["per_class"][cname] = cls_res
        per_iou_maps.append(aps)
    arr = np.array(per_iou_maps)  # [C, T]
    res["mAP50"] = float(np.mean(arr[:, 0]))
    res["mAP50_voc"] = float(np.mean([res["per_class"][c]["AP50_voc"] for c in CLASSES]))
    res["AP75"] = float(np.mean(arr[:, 5]))
    res["AP"] = float(np.mean(arr))
    res["thresholds"] = chosen
    res["subtype"] = subtype_eval(samples, preds, chosen)
    return res


def subtype_eval(samples, preds, thresholds):
    """For every image with a known WBC subtype: the highest-scoring WBC detection (above its threshold)
    that overlaps the GT WBC at IoU >= 0.5 gives the predicted subtype; no such detection = 'missed'."""
    S = len(SUBTYPES)
    conf = np.zeros((S, S + 1), int)  # last column: missed
    for s, p in zip(samples, preds):
        known = np.where((s.classes == WBC) & (s.subtypes >= 0))[0]
        if len(known) == 0 or getattr(s, "points", False):
            continue
        m = ((p["classes"] == WBC) & (p["scores"] >= thresholds[WBC])).numpy()
        db = p["boxes"].numpy()[m]; ds = p["scores"].numpy()[m]; dp = p["subtype_prob"].numpy()[m]
        for k in known:
            ious = iou_matrix(s.boxes[k:k + 1], db)[0] if len(db) else np.zeros(0)
            cand = np.where(ious >= 0.5)[0]
            t = int(s.subtypes[k])
            if len(cand) == 0:
                conf[t, S] += 1
                continue
            d = cand[np.argmax(ds[cand])]
            conf[t, int(np.argmax(dp[d]))] += 1
    n = int(conf.sum())
    matched = int(conf[:, :S].sum())
    correct = int(np.trace(conf[:, :S]))
    return {"images": n, "matched": matched, "correct": correct,
            "accuracy": correct / n if n else float("nan"),
            "accuracy_of_detected": correct / matched if matched else float("nan"),
            "labels": SUBTYPES, "confusion_rows_true_cols_pred_plus_missed": conf.tolist()}


def format_table(res, title):
    lines = [f"{title}", f"{'class':<10} {'GT':>5} {'AP50':>6} {'AP75':>6} {'AP':>6} {'thr':>5} {'P':>5} {'R':>5} {'F1':>5}"]
    for c in CLASSES:
        r = res["per_class"][c]
        lines.append(f"{c:<10} {r['gt']:>5} {r['AP50']:6.3f} {r['AP75']:6.3f} {r['AP']:6.3f} {r['threshold']:5.2f} "
                     f"{r['precision']:5.3f} {r['recall']:5.3f} {r['F1']:5.3f}")
    lines.append(f"mAP50 {res['mAP50']:.3f} (VOC all-point {res['mAP50_voc']:.3f})  AP75 {res['AP75']:.3f}  AP[.5:.95] {res['AP']:.3f}")
    st = res["subtype"]
    lines.append(f"subtype: {st['correct']}/{st['images']} = {st['accuracy']:.3f} "
                 f"(of detected {st['matched']}: {st['accuracy_of_detected']:.3f})")
    hdr = " ".join(f"{s[:5]:>6}" for s in SUBTYPES) + "  missed"
    lines.append("true/pred".ljust(11) + hdr)
    for s, row in zip(SUBTYPES, st["confusion_rows_true_cols_pred_plus_missed"]):
        lines.append(f"{s:<11}" + " ".join(f"{v:>6}" for v in row[:-1]) + f"  {row[-1]:>6}")
    return "\n".join(lines)


def pooled_thresholds(per_source, grid=None):
    """Per-class operating thresholds on a pooled validation set: the score that maximises the mean F1 over the
    sources that label the class (each source counts once, whatever its size, so no one lab's labelling decides).
    per_source: {name: (samples, preds)}. Returns thresholds and, per class and source, F1 / precision / recall /
    count error at them."""
    grid = np.round(np.arange(0.05, 0.905, 0.005), 3) if grid is None else grid
    thresholds, report = [], {}
    for c, cname in enumerate(CLASSES):
        curves = {}
        for name, (samples, preds) in per_source.items():
            tps, scs, npos = [], [], 0
            for s, p in zip(samples, preds):
                if c not in getattr(s, "labelled", range(len(CLASSES))):
                    continue
                tp, ds, n = match_sample(s, p, c, 0.5)
                tps.append(tp); scs.append(ds); npos += n
            if npos == 0:
                continue
            tp = np.concatenate(tps); sc = np.concatenate(scs)
            f1 = np.array([f1_at(tp, sc, npos, t)[0] for t in grid])
            curves[name] = (tp, sc, npos, f1)
        if not curves:
            thresholds.append(0.3)
            continue
        mean_f1 = np.mean([v[3] for v in curves.values()], axis=0)
        t = float(grid[int(np.argmax(mean_f1))])
        thresholds.append(t)
        report[cname] = {"threshold": t, "mean_F1": float(mean_f1.max()), "sources": {}}
        for name, (tp, sc, npos, _) in curves.items():
            f1, pr, rc = f1_at(tp, sc, npos, t)
            counted = int((sc >= t).sum())
            report[cname]["sources"][name] = {"gt": int(npos), "F1": round(f1, 4), "precision": round(pr, 4),
                                              "recall": round(rc, 4), "countErrorPct": round(100.0 * (counted - npos) / npos, 2)}
    return thresholds, report
