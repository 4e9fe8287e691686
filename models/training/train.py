#!/usr/bin/python3
"""Train CellNet from scratch on CPU on every source that may be trained on (BCCD, Chula RBC-12 points, PBC
single-cell crops, the project's simulator), each with its partial labels handled honestly; choose per-class
thresholds on a validation set pooled from every source; report BCCD test and Chula test; export
models/cellnet.onnx + sidecar + parity fixture.

    /usr/bin/python3 models/training/train.py --config models/training/configs/v2.json
"""
import argparse
import copy
import json
import logging
import math
import os
import random
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

from cellnet import CLASSES, STRIDE, SUBTYPES, CellNet, ExportWrapper, count_parameters, detection_loss, one_cell_rules  # noqa: E402
import data as D  # noqa: E402
import evaluate as E  # noqa: E402

log = logging.getLogger("cellnet")


def resolve(p):
    return p if os.path.isabs(p) else os.path.join(REPO, p)


def source_augment(cfg, src):
    """A source's augmentation settings: the config's "augment", the source's own "augment" on top, and the
    source's pixel scale relative to the model's as the base of its random scale."""
    aug = {**cfg.get("augment", {}), **src.get("augment", {})}
    aug["base_scale"] = src["micrometres_per_pixel"] / cfg.get("micrometres_per_pixel", 0.1)
    return aug


class BatchStream(torch.utils.data.IterableDataset):
    """Endless stream of augmented, encoded batches; each sample's source is drawn by the sources' weights."""

    def __init__(self, sources, weights, augs, cfg, seed):
        super().__init__()
        self.sources, self.weights, self.augs, self.cfg, self.seed = sources, weights, augs, cfg, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(self.seed + (info.id if info else 0))
        import cv2
        cv2.setRNGSeed(self.seed + (info.id if info else 0))  # the sensor noise is drawn by OpenCV
        cw, ch, bs = self.cfg["crop"][0], self.cfg["crop"][1], self.cfg["batch"]
        p = np.array(self.weights, np.float64); p /= p.sum()
        while True:
            imgs, tg = [], []
            for _ in range(bs):
                k = int(rng.choice(len(self.sources), p=p))
                src = self.sources[k]
                a = D.augment(src[int(rng.integers(len(src)))], rng, cw, ch, self.augs[k])
                imgs.append(D.image_to_tensor_array(a["image"]))
                tg.append(D.encode(a, ch // STRIDE, cw // STRIDE))
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


def ensure_synth(src):
    """Generate a simulator source's fields with the project's own C# simulator, unless they are already there."""
    for part in ("train", "val"):
        gen = src.get(f"{part}_generate")
        d = src.get(f"{part}_dir")
        if not gen or not d:
            continue
        out = resolve(d)
        marker = os.path.join(out, ".complete")
        if os.path.isfile(marker):
            continue
        cmd = ["dotnet", "run", "--project", resolve("src/EdgeCounter"), "-c", "Release", "--", "synth",
               "--out", out, "--fields", str(gen["fields"]), "--seed", str(gen["seed"])] + list(gen.get("extra_args", []))
        log.info("generating synthetic fields: %s", " ".join(cmd))
        t = time.time()
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            raise SystemExit(f"synth failed for source {src['name']} ({part})")
        log.info("synth done in %.0f s", time.time() - t)
        open(marker, "w").write("ok\n")


def load_init(net, state):
    """Weights to fine-tune from. A network with more classes than the checkpoint (the marrow model's plasma_cell
    added to the blood classes) starts each new class from the WBC channel of the heatmap head, a little less sure
    (bias - 1): it begins as 'a nucleated cell' and learns to tell its class apart."""
    own = net.state_dict()
    for k, v in state.items():
        if k in own and own[k].shape != v.shape and k.startswith("hm_head.") and v.shape[0] < own[k].shape[0]:
            n = v.shape[0]
            w = own[k].clone()
            w[:n] = v
            w[n:] = v[0] - (1.0 if k.endswith("bias") else 0.0)
            state[k] = w
            log.info("%s: %d -> %d classes, new ones from the WBC channel", k, n, own[k].shape[0])
    net.load_state_dict(state)


def at_model_scale(samples, src, cfg):
    return [D.rescale_sample(s, src["micrometres_per_pixel"] / cfg.get("micrometres_per_pixel", 0.1)) for s in samples]


def describe(name, samples):
    if not samples:
        return
    cls = np.concatenate([s.classes for s in samples]); sub = np.concatenate([s.subtypes for s in samples])
    n_ign = sum(len(s.ignore[1]) for s in samples)
    log.info("  %-6s %4d images; boxes per class %s; known subtypes %s; ignore regions %d; labels %s", name, len(samples),
             {c: int((cls == i).sum()) for i, c in enumerate(CLASSES)},
             {s: int((sub == i).sum()) for i, s in enumerate(SUBTYPES)}, n_ign,
             sorted({CLASSES[c] for s in samples for c in s.labelled}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--minutes", type=float, help="override the training time budget")
    ap.add_argument("--iterations", type=int, help="override the iteration count")
    ap.add_argument("--device", default="cpu", help="cpu (the recipe) or cuda (only where a GPU is lent)")
    ap.add_argument("--workers", type=int, help="override the number of augmentation worker processes")
    ap.add_argument("--eval-only", metavar="CHECKPOINT", help="skip training: evaluate and export these weights")
    ap.add_argument("--no-export", action="store_true", help="train and save the checkpoint only")
    ap.add_argument("--run-dir", help="override the run folder (checkpoint; log and metrics too with --scratch)")
    ap.add_argument("--log", help="override the log file (e.g. for --eval-only, so the training log is kept)")
    ap.add_argument("--scratch", action="store_true", help="write log, metrics, ONNX, sidecar into the run folder, not models/")
    ap.add_argument("--init", metavar="CHECKPOINT", help="start from these weights (fine-tune) instead of from scratch; "
                    "BatchNorm statistics stay frozen (a rebuilt checkpoint has its BatchNorms folded into identity ones)")
    ap.add_argument("--lr", type=float, help="override the peak learning rate (e.g. lower for --init)")
    ap.add_argument("--version", help="model version in the sidecar (e.g. re-exported weights); default: the config's")
    args = ap.parse_args()
    cfg = json.load(open(resolve(args.config)))
    if args.minutes is not None:
        cfg["max_minutes"] = args.minutes
    if args.iterations is not None:
        cfg["iterations"] = args.iterations
    if args.workers is not None:
        cfg["workers"] = args.workers
    if args.version:
        cfg["version"] = args.version
    if args.lr is not None:
        cfg["lr"] = args.lr
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
    setup_logging(resolve(args.log or cfg.get("log", os.path.join(run_dir, "train.log"))))
    torch.set_num_threads(cfg.get("threads", 2))
    seed = cfg.get("seed", 1234)
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
    if "classes" in cfg:
        D.configure_classes(cfg["classes"])
    log.info("config %s: %s", args.config, json.dumps(cfg))
    log.info("torch %s, threads %d", torch.__version__, torch.get_num_threads())

    t0 = time.time()
    pseudo_dir = resolve(cfg.get("pseudo_dir", "models/training/pseudo"))
    train_sets, weights, augs, val_sets, test_sets = [], [], [], {}, {}
    for src in cfg["sources"]:
        if src["kind"] == "synth":
            ensure_synth(src)
        tr = D.load_source(src, "train", pseudo_dir, REPO)
        if tr:
            train_sets.append(tr); weights.append(src.get("weight", 1.0)); augs.append(source_augment(cfg, src))
        val_sets[src["name"]] = at_model_scale(D.load_source(src, "val", pseudo_dir, REPO), src, cfg)
        te = D.load_source(src, "test", pseudo_dir, REPO)
        if te:
            test_sets[src["name"]] = at_model_scale(te, src, cfg)
    log.info("data loaded in %.1f s (val and test at the model's %.3f um/px):", time.time() - t0, cfg.get("micrometres_per_pixel", 0.1))
    for k, tr in enumerate(train_sets):
        describe(tr[0].source + " train", tr)
    for name, vs in val_sets.items():
        describe(name + " val", vs)
    for name, ts in test_sets.items():
        describe(name + " test", ts)

    net = CellNet(num_classes=len(CLASSES), **cfg.get("model", {})).to(device)
    log.info("CellNet parameters: %d, classes %s", count_parameters(net), CLASSES)
    if args.init:
        load_init(net, torch.load(args.init, map_location="cpu")["model"])
        log.info("fine-tuning from %s (BatchNorm statistics frozen)", os.path.relpath(args.init, REPO))
    decay, no_decay = [], []
    for n_, p in net.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"])
    ema = Ema(net, cfg.get("ema", 0.999))
    # subtype class weights: inverse sqrt frequency over all known subtypes in the training sources
    sub_all = np.concatenate([s.subtypes for src in train_sets for s in src])
    freq = np.array([(sub_all == i).sum() for i in range(len(SUBTYPES))], np.float64) + 5
    sw = (freq.sum() / freq) ** 0.5
    sw = torch.tensor(sw / sw.mean(), dtype=torch.float32, device=device)
    log.info("subtype loss weights %s", dict(zip(SUBTYPES, np.round(sw.cpu().numpy(), 2).tolist())))

    iters, max_s = cfg["iterations"], cfg["max_minutes"] * 60
    lr0, lr_final, warm = cfg["lr"], cfg.get("lr_final", 0.02), cfg.get("warmup", 300)
    t_start = time.time()
    it, sm, stopped_early = 0, {}, False
    if not args.eval_only:
        stream = BatchStream(train_sets, weights, augs, cfg, seed)
        workers = cfg.get("workers", 1)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers,
                                             prefetch_factor=4 if workers else 2, persistent_workers=bool(workers))
        log.info("training: %d iterations, lr %.5f, sources %s (weights %s)", iters, lr0,
                 [s[0].source for s in train_sets], weights)
        for batch in loader:
            elapsed = time.time() - t_start
            # The time guard compresses the cosine schedule instead of cutting it off.
            progress = max(it / iters, elapsed / max_s)
            if progress >= 1.0:
                stopped_early = it < iters
                break
            lr = lr0 * (min(1.0, (it + 1) / warm) if warm else 1.0) * (lr_final + (1 - lr_final) * 0.5 * (1 + math.cos(math.pi * progress)))
            for g in opt.param_groups:
                g["lr"] = lr
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            net.train()
            if args.init:
                for m in net.modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.eval()
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
            if it % cfg.get("log_every", 50) == 0:
                log.info("it %5d  %5.1f min  lr %.5f  loss %.3f (hm %.3f size %.3f off %.3f sub %.3f)  %.2f s/it",
                         it, elapsed / 60, lr, sm["loss"], sm["hm"], sm["size"], sm["off"], sm["sub"], elapsed / it)
            if cfg.get("checkpoint_every") and it % cfg["checkpoint_every"] == 0:
                torch.save({"model": ema.model.state_dict(), "config": cfg, "iterations": it}, os.path.join(run_dir, "model-partial.pt"))
        del loader
    train_s = time.time() - t_start
    end_reason = "iterations" if not stopped_early else "time budget"
    model = ema.model.cpu().eval()
    if args.eval_only:
        ck = torch.load(args.eval_only, map_location="cpu")
        model.load_state_dict(ck["model"])
        it, train_s = ck.get("iterations", 0), ck.get("train_seconds", 0.0)
        device = ck.get("device", "cpu")
        end_reason = "loaded from " + os.path.relpath(args.eval_only, REPO)
        log.info("evaluating %s (%d iterations, %.1f min on %s)", args.eval_only, it, train_s / 60, device)
    else:
        log.info("training stopped after %d iterations, %.1f min (%s)", it, train_s / 60, end_reason)
        torch.save({"model": model.state_dict(), "config": cfg, "iterations": it, "train_seconds": train_s,
                    "device": str(device)}, os.path.join(run_dir, "model.pt"))
    if args.no_export:
        return

    import export as X
    metrics = {"name": cfg["name"], "config": args.config, "seed": seed, "iterations": it,
               "training_minutes": round(train_s / 60, 1), "stopped_by": end_reason, "device": str(device),
               "parameters": count_parameters(model),
               "train_images": {s[0].source: len(s) for s in train_sets},
               "val_images": {k: len(v) for k, v in val_sets.items()}}
    metrics.update(evaluate_graph(model, cfg, val_sets, test_sets))
    metrics["export"] = X.export_all(model, metrics["thresholds_list"], cfg, synth_dir=synth_dir_of(cfg))
    metrics["variants"] = {}
    for name in cfg.get("variants", {}):
        vcfg = X.variant_config(cfg, name)
        v = evaluate_graph(model, vcfg, val_sets, test_sets)
        v["export"] = X.export_all(model, v["thresholds_list"], vcfg, synth_dir=synth_dir_of(cfg))
        metrics["variants"][name] = v
    mpath = resolve(cfg.get("metrics", os.path.join(run_dir, "metrics.json")))
    json.dump(metrics, open(mpath, "w"), indent=1)
    log.info("metrics written to %s", mpath)


def synth_dir_of(cfg):
    """The simulator fields the parity fixture is cut from."""
    src = next((s for s in cfg["sources"] if s["kind"] == "synth" and s.get("train_dir")), None)
    return resolve(src["train_dir"]) if src else None


def evaluate_graph(model, cfg, val_sets, test_sets):
    """Pooled-validation thresholds and the per-source validation and test tables of one exported graph."""
    import export as X
    scales = X.test_scales(cfg)
    wrapper = ExportWrapper(model, cfg.get("tta", 0), scales).eval()
    who = f"graph {cfg.get('version')} (test scales {'/'.join(f'{f:g}' for f in scales)})"
    rules = one_cell_rules(cfg)
    val_outputs = {name: (ss, E.raw_outputs(wrapper, ss)) for name, ss in val_sets.items() if ss}
    thresholds, pooled, val_preds = E.service_thresholds(val_outputs, rules, log=lambda m: log.info("%s: %s", who, m))
    del val_outputs
    log.info("%s: thresholds chosen on the pooled validation set (mean F1 over sources): %s", who, dict(zip(CLASSES, thresholds)))
    for cname, r in pooled.items():
        log.info("  %-9s thr %.3f mean F1 %.3f  %s", cname, r["threshold"], r["mean_F1"],
                 {k: (v["F1"], v["recall"], v["countErrorPct"]) for k, v in r["sources"].items()})
    out = {"thresholds": dict(zip(CLASSES, thresholds)), "thresholds_list": thresholds, "pooled_val": pooled, "val": {}, "test": {}}
    for name, (ss, pp) in val_preds.items():
        r = E.evaluate(ss, pp, thresholds)
        log.info("\n" + E.format_table(r, f"{who}: {name} val"))
        out["val"][name] = r
    for name, ss in test_sets.items():
        t = time.time()
        pp = E.run_model(wrapper, ss, suppressor_floor=thresholds, **rules)
        r = E.evaluate(ss, pp, thresholds)
        r["torch_cpu_ms_per_image_incl_decode"] = round((time.time() - t) / len(ss) * 1000, 1)
        log.info("\n" + E.format_table(r, f"{who}: {name} test (never trained on, never used to choose anything)"))
        out["test"][name] = r
    return out


if __name__ == "__main__":
    main()
