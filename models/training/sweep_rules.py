#!/usr/bin/python3
"""Sweep the one-cell rule `containment` on the pooled validation set, the weights fixed: for each value, the
pooled thresholds (mean F1 over the sources that label a class, as train.py chooses them) and the F1 and count
error per source there. The network runs once per image; each value only decodes again. Other labs' sets (draaslan,
LISC) and every test split stay out: this is a choice, made where choices are made.

    /usr/bin/python3 models/training/sweep_rules.py models/cellnet.onnx models/training/configs/v2.json \
        --containment 0.5 0.6 0.7 0.8 0.9 1.0 [--json out.json]
"""
import argparse
import json
import logging
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import evaluate as E  # noqa: E402
import export as X  # noqa: E402
import train as T  # noqa: E402
from cellnet import CLASSES, ExportWrapper, one_cell_rules  # noqa: E402
from weights_from_onnx import rebuild  # noqa: E402

log = logging.getLogger("sweep")


def pooled_validation(onnx_path, config_path):
    """A graph's weights (rebuilt, wrapped as the service runs them) and the pooled validation set of a recipe config,
    at the model's scale: what a sweep of a decode choice reads."""
    cfg = json.load(open(T.resolve(config_path)))
    torch.set_num_threads(cfg.get("threads", 2))
    net = rebuild(T.resolve(onnx_path), cfg).eval()
    wrapper = ExportWrapper(net, cfg.get("tta", 0), X.test_scales(cfg)).eval()
    pseudo_dir = T.resolve(cfg.get("pseudo_dir", "models/training/pseudo"))
    val_sets = {}
    for src in cfg["sources"]:
        if src["kind"] == "synth":
            T.ensure_synth({k: v for k, v in src.items() if not k.startswith("train_")})  # validation fields only
        ss = T.at_model_scale(D.load_source(src, "val", pseudo_dir, T.REPO), src, cfg)
        if ss:
            val_sets[src["name"]] = ss
    log.info("pooled validation: %s", {k: len(v) for k, v in val_sets.items()})
    return cfg, wrapper, val_sets


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("config")
    ap.add_argument("--containment", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                    help="values to try (1.0: the rule off)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    cfg, wrapper, val_sets = pooled_validation(args.onnx, args.config)

    values = [None if c >= 1.0 else c for c in args.containment]
    t = time.time()
    outputs = {name: (ss, E.raw_outputs(wrapper, ss)) for name, ss in val_sets.items()}
    log.info("network in %.0f s", time.time() - t)

    result = {}
    for c in values:
        rules = {**one_cell_rules(cfg), "containment": c}
        thresholds, pooled, _ = E.service_thresholds(outputs, rules, nms_iou=cfg.get("nms_iou", 0.5))  # as train.py chooses them
        result["off" if c is None else f"{c:g}"] = {"thresholds": dict(zip(CLASSES, thresholds)), "pooled": pooled}
        log.info("containment %s: thresholds %s", "off" if c is None else f"{c:g}", dict(zip(CLASSES, thresholds)))
        for cname, r in pooled.items():
            log.info("  %-9s mean F1 %.4f  %s", cname, r["mean_F1"],
                     {k: (v["F1"], v["countErrorPct"]) for k, v in r["sources"].items()})
    if args.json:
        json.dump(result, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
