#!/usr/bin/python3
"""Train CellNet from scratch on CPU (BCCD trainval + simulator fields), pick per-class thresholds on val,
evaluate on the BCCD test split and export models/cellnet.onnx + sidecar + parity fixture.

    /usr/bin/python3 models/training/train.py --config models/training/configs/final.json
"""
import argparse
import copy
import json
import logging
import math
import os
import random
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

from cellnet import CLASSES, STRIDE, SUBTYPES, CellNet, ExportWrapper, count_parameters, detection_loss  # noqa: E402
import data as D  # noqa: E402
import evaluate as E  # noqa: E402

log = logging.getLogger("cellnet")


def resolve(p):
    return p if os.path.isabs(p) else os.path.join(REPO, p)


class BatchStream(torch.utils.data.IterableDataset):
    """Endless stream of augmented, encoded batches. Each batch mixes BCCD and synthetic fields."""

    def __init__(self, sources, weights, cfg, seed, class_filter=None):
        super().__init__()
        self.sources, self.weights, self.cfg, self.seed = sources, weights, cfg, seed
        # {source name: class indices it teaches}; other classes in that source's images get no loss at all
        # (no positives, no negatives), e.g. synthetic fields that teach WBC and platelets but not red cells.
        self.class_filter = class_filter or {}

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(self.seed + (info.id if info else 0))
        cfg = self.cfg
        cw, ch, bs = cfg["crop"][0], cfg["crop"][1], cfg["batch"]
        p = np.array(self.weights, np.float64); p /= p.sum()
        aug_default = {"scale": cfg["scale"], "min_visible": cfg.get("min_visible", 0.45), "edge_snap": cfg.get("edge_snap", 0.0)}
        aug = {name: {**aug_default, **cfg.get(name + "_aug", {})} for name in ("bccd", "synth")}  # e.g. "bccd_aug"
        while True:
            imgs, tg = [], []
            for _ in range(bs):
                src = self.sources[int(rng.choice(len(self.sources), p=p))]
                s = src[int(rng.integers(len(src)))]
                a = aug.get(s.source, aug_default)
                img, b, c, st, ign = D.augment(s, rng, cw, ch, tuple(a["scale"]), cfg["colour"],
                                               min_visible=a["min_visible"], edge_snap=a["edge_snap"])
                imgs.append(D.image_to_tensor_array(img))
                allowed = self.class_filter.get(s.source)
                if allowed is not None:
                    k = np.isin(c, allowed)
                    b, c, st = b[k], c[k], st[k]
                    ki = np.isin(ign[1], allowed)
                    ign = (ign[0][ki], ign[1][ki])
                t = D.encode_targets(b, c, st, ign, ch // STRIDE, cw // STRIDE)
                if allowed is not None:
                    for cls in range(len(CLASSES)):
                        if cls not in allowed:
                            t["neg_weight"][cls] = 0.0
                tg.append(t)
            batch = {k: torch.from_numpy(np.stack([t[k] for t in tg])) for k in tg[0]}
            batch["image"] = torch.from_numpy(np.stack(imgs))
            yield batch


class Ema:
    def __init__(self, model, decay):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / 300.0))  # ramp up early
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def setup_logging(path):
    log.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    for h in (logging.StreamHandler(sys.stdout), logging.FileHandler(path, mode="w")):
        h.setFormatter(fmt)
        log.addHandler(h)


def run_synth(cfg):
    """Generate simulator fields with the project's own C# simulator, unless they are already there."""
    sc = cfg.get("synth")
    if not sc:
        return None
    out = resolve(sc["dir"])
    marker = os.path.join(out, ".complete")
    if os.path.isfile(marker):
        return out
    if sc.get("generate", True):
        import subprocess
        cmd = ["dotnet", "run", "--project", resolve("src/EdgeCounter"), "-c", "Release", "--", "synth",
               "--out", out, "--fields", str(sc["fields"]), "--seed", str(sc["seed"])] + list(sc.get("extra_args", []))
        log.info("generating synthetic fields: %s", " ".join(cmd))
        t = time.time()
        r = subprocess.run(cmd, cwd=REPO)
        if r.returncode != 0:
            if sc.get("required", False):
                raise SystemExit(f"synth failed with exit code {r.returncode}")
            log.warning("synth failed (exit %d): training without synthetic fields", r.returncode)
            return None
        log.info("synth done in %.0f s", time.time() - t)
        open(marker, "w").write("ok\n")
    return out if os.path.isdir(out) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--minutes", type=float, help="override the training time budget")
    ap.add_argument("--iterations", type=int, help="override the iteration count")
    ap.add_argument("--device", default="cpu", help="cpu (the recipe) or cuda (only where a GPU is lent)")
    ap.add_argument("--workers", type=int, help="override the number of augmentation worker processes")
    ap.add_argument("--bccd", help="override the BCCD root")
    ap.add_argument("--eval-only", metavar="CHECKPOINT", help="skip training: evaluate and export these weights")
    ap.add_argument("--no-export", action="store_true", help="train and save the checkpoint only")
    ap.add_argument("--run-dir", help="override the run folder (checkpoint; log and metrics too with --scratch)")
    ap.add_argument("--log", help="override the log file (e.g. for --eval-only, so the training log is kept)")
    ap.add_argument("--scratch", action="store_true", help="write log, metrics, ONNX, sidecar into the run folder, not models/")
    args = ap.parse_args()
    cfg = json.load(open(resolve(args.config)))
    if args.minutes is not None:
        cfg["max_minutes"] = args.minutes
    if args.iterations is not None:
        cfg["iterations"] = args.iterations
    if args.workers is not None:
        cfg["workers"] = args.workers
    if args.bccd:
        cfg["bccd"] = args.bccd
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    run_dir = resolve(args.run_dir or cfg.get("run_dir", "models/training/runs/" + cfg["name"]))
    if args.scratch:
        for k in ("log", "metrics"):
            cfg.pop(k, None)
        cfg["onnx"], cfg["labels"] = os.path.join(run_dir, "cellnet.onnx"), os.path.join(run_dir, "cellnet.labels.json")
        cfg["parity_dir"] = os.path.join(run_dir, "parity")
    os.makedirs(run_dir, exist_ok=True)
    log_path = resolve(args.log or cfg.get("log", os.path.join(run_dir, "train.log")))
    setup_logging(log_path)
    torch.set_num_threads(cfg.get("threads", 2))
    seed = cfg.get("seed", 1234)
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
    log.info("config %s: %s", args.config, json.dumps(cfg))
    log.info("torch %s, threads %d", torch.__version__, torch.get_num_threads())

    bccd = resolve(cfg["bccd"])
    t0 = time.time()
    train_sets = [D.load_bccd(bccd, sp) for sp in cfg["train_splits"]]
    bccd_train = [s for ts in train_sets for s in ts]
    val = D.load_bccd(bccd, cfg.get("val_split", "val"))
    test = D.load_bccd(bccd, "test")
    assert not ({s.name for s in bccd_train} & {s.name for s in test}), "test images in training set"
    # Evaluate BCCD as the service would run it: resized by camera µm/px ÷ model µm/px (contract's scale rule).
    # IoU is scale-invariant, so AP in the resized frame equals AP with boxes mapped back to BCCD pixels.
    eval_scale = cfg.get("bccd_micrometres_per_pixel", cfg.get("micrometres_per_pixel", 0.1)) / cfg.get("micrometres_per_pixel", 0.1)
    if eval_scale != 1.0:
        log.info("BCCD at %.3f um/px: val/test images resized by %.3f before inference, as the service does",
                 cfg["bccd_micrometres_per_pixel"], eval_scale)
        val = [D.rescale_sample(s, eval_scale) for s in val]
        test = [D.rescale_sample(s, eval_scale) for s in test]
    sources, weights = [bccd_train], [1.0]
    synth_dir = run_synth(cfg)
    synth = []
    if synth_dir:
        synth = D.load_synth(synth_dir)
        if synth:
            sources.append(synth); weights.append(cfg["synth"].get("weight", 1.0))
    log.info("data: BCCD train %d images (%s), val %d, test %d, synth %d fields; loaded in %.1f s",
             len(bccd_train), "+".join(cfg["train_splits"]), len(val), len(test), len(synth), time.time() - t0)
    for name, ss in (("bccd", bccd_train), ("synth", synth)):
        if ss:
            cls = np.concatenate([s.classes for s in ss]); sub = np.concatenate([s.subtypes for s in ss])
            log.info("  %s boxes per class %s; known subtypes %s", name,
                     {c: int((cls == i).sum()) for i, c in enumerate(CLASSES)},
                     {s: int((sub == i).sum()) for i, s in enumerate(SUBTYPES)})

    net = CellNet(**cfg.get("model", {})).to(device)
    log.info("CellNet parameters: %d", count_parameters(net))
    decay, no_decay = [], []
    for n_, p in net.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"])
    ema = Ema(net, cfg.get("ema", 0.999))
    # subtype class weights: inverse sqrt frequency over all known subtypes in the training sources
    sub_all = np.concatenate([s.subtypes for src in sources for s in src])
    freq = np.array([(sub_all == i).sum() for i in range(len(SUBTYPES))], np.float64) + 5
    sw = (freq.sum() / freq) ** 0.5
    sw = torch.tensor(sw / sw.mean(), dtype=torch.float32, device=device)
    log.info("subtype loss weights %s", dict(zip(SUBTYPES, np.round(sw.cpu().numpy(), 2).tolist())))

    # Phases: the main mixed run, then optionally a short fine-tune on BCCD alone ("finetune"), so the model
    # ends on the labelling conventions of the data it is judged on. The time guard is shared in proportion.
    ft = cfg.get("finetune") or {}
    phases = [("main", sources, weights, cfg["iterations"], cfg["lr"], cfg.get("lr_final", 0.02), cfg.get("warmup", 300))]
    if ft.get("iterations"):
        ft_weights = [1.0] + [ft.get("synth_weight", 0.0)] * (len(sources) - 1)
        phases.append(("finetune", sources, ft_weights, ft["iterations"], ft.get("lr", cfg["lr"] * 0.2),
                       ft.get("lr_final", 0.02), ft.get("warmup", 0)))
    # Optional: which classes the synthetic fields still teach during the fine-tune (default: all of them).
    ft_filter = {"synth": [CLASSES.index(n) for n in ft["synth_classes"]]} if ft.get("synth_classes") else None
    total_iters = sum(ph[3] for ph in phases)
    max_s = cfg["max_minutes"] * 60
    if args.eval_only:
        phases = []
    t_start = time.time()
    it = 0
    sm = {}
    stopped_early = False
    for pi, (phase, srcs, wts, iters, lr0, lr_final, warm) in enumerate(phases):
        keep = [i for i, w in enumerate(wts) if w > 0]
        stream = BatchStream([srcs[i] for i in keep], [wts[i] for i in keep], cfg, seed + 1000 * pi,
                             ft_filter if phase == "finetune" else None)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=cfg.get("workers", 1),
                                             prefetch_factor=4 if cfg.get("workers", 1) else 2,
                                             persistent_workers=bool(cfg.get("workers", 1)))
        phase_s = max_s * iters / total_iters
        t_phase = time.time()
        log.info("phase %s: %d iterations, lr %.5f, sources %s", phase, iters, lr0,
                 [("bccd", "synth")[i] for i in keep])
        pit = 0
        for batch in loader:
            elapsed = time.time() - t_start
            progress = max(pit / iters, (time.time() - t_phase) / phase_s)
            if progress >= 1.0:
                stopped_early |= pit < iters
                break
            lr = lr0 * (min(1.0, (pit + 1) / warm) if warm else 1.0) * (lr_final + (1 - lr_final) * 0.5 * (1 + math.cos(math.pi * progress)))
            for g in opt.param_groups:
                g["lr"] = lr
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            net.train()
            out = net(batch["image"])
            loss, parts = detection_loss(out, batch, w_size=cfg.get("w_size", 1.0), w_off=cfg.get("w_off", 1.0),
                                         w_sub=cfg.get("w_sub", 0.5), sub_class_weight=sw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            ema.update(net)
            for k, v in dict(parts, loss=loss.item()).items():
                sm[k] = v if k not in sm else 0.98 * sm[k] + 0.02 * v
            it += 1
            pit += 1
            if it % cfg.get("log_every", 50) == 0:
                log.info("it %5d  %5.1f min  lr %.5f  loss %.3f (hm %.3f size %.3f off %.3f sub %.3f)  %.2f s/it",
                         it, elapsed / 60, lr, sm["loss"], sm["hm"], sm["size"], sm["off"], sm["sub"], elapsed / it)
            if cfg.get("eval_every") and it % cfg["eval_every"] == 0:
                r = E.evaluate(val, E.run_model(ExportWrapper(copy.deepcopy(ema.model).cpu()), val))
                log.info("it %d val(%s) mAP50 %.3f AP %.3f  %s  subtype acc %.3f", it, cfg.get("val_split", "val"),
                         r["mAP50"], r["AP"], {c: round(r["per_class"][c]["AP50"], 3) for c in CLASSES},
                         r["subtype"]["accuracy"])
        del loader
    train_s = time.time() - t_start
    end_reason = "iterations" if not stopped_early else "time budget"
    log.info("training stopped after %d iterations, %.1f min (%s)", it, train_s / 60, end_reason)
    model = ema.model.cpu().eval()
    if args.eval_only:
        ck = torch.load(args.eval_only, map_location="cpu")
        model.load_state_dict(ck["model"])
        it, train_s = ck.get("iterations", 0), ck.get("train_seconds", 0.0)
        device = ck.get("device", "cpu")
        end_reason = "loaded from " + os.path.relpath(args.eval_only, REPO)
        log.info("evaluating %s (%d iterations, %.1f min on %s)", args.eval_only, it, train_s / 60, device)
    else:
        torch.save({"model": model.state_dict(), "config": cfg, "iterations": it, "train_seconds": train_s,
                    "device": str(device)}, os.path.join(run_dir, "model.pt"))
    if args.no_export:
        return

    import export as X
    tta, scales = cfg.get("tta", 0), X.test_scales(cfg)
    wrapper = ExportWrapper(model, tta, scales).eval()
    log.info("evaluating with test-time flips: %s; test scales %s", {0: "none", 2: "mirror", 4: "mirror + vertical + both"}[tta],
             "/".join(f"{f:g}" for f in scales))
    val_preds = E.run_model(wrapper, val)
    tf = cfg.get("thresholds_from")
    thresholds = operating_thresholds(E.evaluate(val, val_preds), cfg.get("val_split", "val"), tf)
    rv = E.evaluate(val, val_preds, thresholds)
    log.info("\n" + E.format_table(rv, f"BCCD {cfg.get('val_split', 'val')} (in training set: {cfg.get('val_split', 'val') in cfg['train_splits'] or 'trainval' in cfg['train_splits']})"))
    t = time.time()
    test_preds = E.run_model(wrapper, test)
    infer_ms = (time.time() - t) / len(test) * 1000
    rt = E.evaluate(test, test_preds, thresholds)
    rt_best = E.evaluate(test, test_preds)
    rt_single = None
    if tta or len(scales) > 1:
        rt_single = E.evaluate(test, E.run_model(ExportWrapper(model, 0).eval(), test), thresholds)
        log.info("test in one pass (no flips, input scale only): mAP50 %.3f AP %.3f AP75 %.3f %s subtype %.3f", rt_single["mAP50"],
                 rt_single["AP"], rt_single["AP75"], {c: round(rt_single["per_class"][c]["AP50"], 3) for c in CLASSES},
                 rt_single["subtype"]["accuracy"])
    log.info("\n" + E.format_table(rt, "BCCD test (official test.txt, never trained on), val thresholds"))
    log.info("test-optimal thresholds would be %s (F1 %s)", [round(x, 3) for x in rt_best["thresholds"]],
             [round(rt_best["per_class"][c]["F1"], 3) for c in CLASSES])
    synth_res = None
    if synth:
        held = synth[-min(40, len(synth)):]  # sanity only: these fields were also trained on
        synth_res = E.evaluate(held, E.run_model(wrapper, held), thresholds)
        log.info("synthetic fields (seen in training, sanity only): mAP50 %.3f, subtype acc %.3f",
                 synth_res["mAP50"], synth_res["subtype"]["accuracy"])

    exp = X.export_all(model, thresholds, cfg, synth_dir=synth_dir)
    metrics = {
        "name": cfg["name"], "config": args.config, "seed": seed, "iterations": it,
        "training_minutes": round(train_s / 60, 1), "stopped_by": end_reason, "device": str(device),
        "parameters": count_parameters(model), "train_images": {"bccd": len(bccd_train), "synth": len(synth)},
        "thresholds": dict(zip(CLASSES, thresholds)), "bccd_eval_scale": eval_scale,
        "tta": tta, "test_scales": list(scales), "test": rt, "test_one_pass": rt_single, "val": rv, "test_optimal_thresholds": dict(zip(CLASSES, rt_best["thresholds"])),
        "synth_seen_sanity": synth_res, "torch_cpu_ms_per_640x480_image_incl_decode": round(infer_ms, 1),
        "note_ms": "measured during the test pass on this shared 2-core machine; see README for a clean timing",
        "export": exp,
    }
    metrics["variants"] = {name: evaluate_variant(model, cfg, name, val, test, synth_dir, tf)
                           for name in cfg.get("variants", {})}
    mpath = resolve(cfg.get("metrics", os.path.join(run_dir, "metrics.json")))
    json.dump(metrics, open(mpath, "w"), indent=1)
    log.info("metrics written to %s", mpath)


def operating_thresholds(val_result, val_split, thresholds_from, variant=None):
    """Per-class operating thresholds: this model's F1 optimum on val, unless thresholds_from (the train-split twin's
    metrics) has them for this graph (its "variants" entry for a variant). val is inside trainval, so the final
    model's own val optimum is optimistic; the twin saw no val image."""
    who = f"variant {variant}: " if variant else ""
    thresholds = [round(float(min(max(t, 0.05), 0.9)), 3) for t in val_result["thresholds"]]
    log.info("%sthresholds chosen on %s (max F1): %s", who, val_split, dict(zip(CLASSES, thresholds)))
    if not thresholds_from:
        return thresholds
    if not os.path.isfile(resolve(thresholds_from)):
        log.warning("%s%s not found: thresholds chosen on val, which this model trained on (optimistic)", who, thresholds_from)
        return thresholds
    source = json.load(open(resolve(thresholds_from)))
    t = source.get("variants", {}).get(variant, {}).get("thresholds") if variant else source["thresholds"]
    if not t:
        log.warning("%s%s has no thresholds for it: chosen on val, which this model trained on (optimistic)", who, thresholds_from)
        return thresholds
    thresholds = [float(t[c]) for c in CLASSES]
    log.info("%susing thresholds from %s (chosen on val by the train-split twin): %s", who, thresholds_from, dict(zip(CLASSES, thresholds)))
    return thresholds


def evaluate_variant(model, cfg, name, val, test, synth_dir, thresholds_from):
    """Evaluate and export graph variant NAME (same weights, other test-time settings, e.g. three test scales).
    Its thresholds are chosen on val like the main graph's: by the train-split twin's metrics when given."""
    import export as X
    vcfg = X.variant_config(cfg, name)
    scales = X.test_scales(vcfg)
    wrapper = ExportWrapper(model, vcfg.get("tta", 0), scales).eval()
    log.info("variant %s: test scales %s, flips %s", name, "/".join(f"{f:g}" for f in scales), vcfg.get("tta", 0))
    val_preds = E.run_model(wrapper, val)
    thresholds = operating_thresholds(E.evaluate(val, val_preds), cfg.get("val_split", "val"), thresholds_from, variant=name)
    rv = E.evaluate(val, val_preds, thresholds)
    log.info("\n" + E.format_table(rv, f"variant {name}: BCCD {cfg.get('val_split', 'val')}"))
    t = time.time()
    test_preds = E.run_model(wrapper, test)
    infer_ms = (time.time() - t) / len(test) * 1000
    rt = E.evaluate(test, test_preds, thresholds)
    log.info("\n" + E.format_table(rt, f"variant {name}: BCCD test (official test.txt, never trained on), val thresholds"))
    return {"test_scales": list(scales), "tta": vcfg.get("tta", 0), "version": vcfg["version"],
            "thresholds": dict(zip(CLASSES, thresholds)), "val": rv, "test": rt,
            "torch_cpu_ms_per_640x480_image_incl_decode": round(infer_ms, 1),
            "export": X.export_all(model, thresholds, vcfg, synth_dir=synth_dir)}


if __name__ == "__main__":
    main()
