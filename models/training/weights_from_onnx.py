#!/usr/bin/python3
"""Rebuild a CellNet checkpoint from an exported one-pass graph, e.g. to re-export the shipped weights with
another graph variant when the training run's checkpoint is gone:

    /usr/bin/python3 models/training/weights_from_onnx.py models/cellnet.onnx models/training/configs/v2.json \
        models/training/runs/final/model.pt
    /usr/bin/python3 models/training/export.py --checkpoint models/training/runs/final/model.pt \
        --thresholds-from models/training/metrics.json --variant 3scale

The exporter folds each BatchNorm into the convolution before it; the rebuilt network gets those folded weights
and identity BatchNorms (mean 0, variance 1 - eps, scale 1, shift = the folded bias), so it computes the same
function in eval mode. Convolutions are matched in the order the network calls them, checked by shape and groups.
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cellnet import CellNet  # noqa: E402


def rebuild(onnx_path, cfg):
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(onnx_path).graph
    weights = {i.name: numpy_helper.to_array(i).copy() for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    net = CellNet(**cfg.get("model", {})).eval()
    called = []
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(m)) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    if len(called) != len(convs):
        raise SystemExit(f"{onnx_path} has {len(convs)} convolutions, the network calls {len(called)}: not a one-pass CellNet graph of this config")
    bn_after = {}
    for m in net.modules():
        if isinstance(m, torch.nn.Sequential):
            for a, b in zip(list(m), list(m)[1:]):
                if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d):
                    bn_after[a] = b
    with torch.no_grad():
        for conv, node in zip(called, convs):
            w = torch.from_numpy(weights[node.input[1]])
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            if tuple(w.shape) != tuple(conv.weight.shape) or groups != conv.groups:
                raise SystemExit(f"{node.name}: weight {tuple(w.shape)} groups {groups} does not fit {conv}")
            conv.weight.copy_(w)
            bias = torch.from_numpy(weights[node.input[2]])
            bn = bn_after.get(conv)
            if bn is None:
                conv.bias.copy_(bias)
            else:
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
        net.mean.copy_(torch.from_numpy(weights["net.mean"]))
        net.std.copy_(torch.from_numpy(weights["net.std"]))
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("config", help="the training config the graph was made with (its model settings and recipe)")
    ap.add_argument("out", help="checkpoint to write")
    ap.add_argument("--metrics", help="the run's metrics.json: iterations and training time are copied into the checkpoint")
    args = ap.parse_args()
    cfg = json.load(open(args.config))
    net = rebuild(args.onnx, cfg)
    ck = {"model": net.state_dict(), "config": cfg, "rebuilt_from": os.path.abspath(args.onnx)}
    if args.metrics:
        m = json.load(open(args.metrics))
        ck.update({"iterations": m.get("iterations", 0), "train_seconds": 60.0 * m.get("training_minutes", 0.0), "device": m.get("device", "cpu")})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(ck, args.out)
    print(f"wrote {args.out}: {len(list(net.parameters()))} parameter tensors from {args.onnx}")


if __name__ == "__main__":
    main()
