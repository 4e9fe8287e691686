#!/usr/bin/python3
"""The seed paper's architecture, trained here: torchvision Faster R-CNN + FPN, from scratch (issue 15).

The sources, scale (0.1 um/px), crops and augmentation of a detector config (through data.py): configs/v2.json (every
source, the default recipe's data) or configs/shipped-data.json (the data the shipped CellNet weights were trained on,
to compare the two architectures on the same data). No model hub is reachable: no ImageNet weights. Differences,
because torchvision's detector has no per-class "no loss here" regions: where a config caches present-but-unlabelled
cells (v2's partial-label cache), they are taught as boxes of their class (pseudo-labels), and the frame band a source
leaves unlabelled is dropped; a cell cut to a remnant by the crop is background. GroupNorm in the backbone and FPN
(BatchNorm from scratch at 2-4 images per batch does not train; He et al., "Rethinking ImageNet Pre-training").
Exported to ONNX (opset 11, as torchvision documents its detection export) with a sidecar of family "fasterrcnn", the
paper's score threshold 0.7 for every class, and the shipped subtype stage naming the white cells. Evaluate with
the C# eval, as every model:

    models/training/fasterrcnn.py --device cuda --minutes 120      # where a GPU is lent (the CPU recipe is the same)
    models/training/fasterrcnn.py --width 24 --fpn-channels 64 --head 256 --batch 2 --iterations 3400 \
        --minutes 90 --lr 0.01 --threads 1                         # its first 90 minutes: one core of a 2-core CPU
    models/training/fasterrcnn.py --width 24 --fpn-channels 64 --head 256 --batch 2 --init models/fasterrcnn-fpn.onnx \
        --lr 0.005 --warmup 100 --iterations 8000 --minutes 98 --anneal-by-time --threads 2 --version 1.1.0 \
        --out /tmp/frcnn2/fasterrcnn-fpn.onnx                      # continued from that graph on both cores (measured, not shipped:
                                                                   # models/README.md; --out keeps it off the shipped file)
    models/training/fasterrcnn.py --config models/training/configs/shipped-data.json --width 24 --fpn-channels 64 \
        --head 256 --batch 2 --init /tmp/frcnn2/fasterrcnn-fpn.onnx --lr 0.005 --warmup 100 --iterations 8000 \
        --minutes 70 --anneal-by-time --threads 2 --version 1.2.0 --name fasterrcnn-fpn-resnet18-w24-bccd \
        --out models/fasterrcnn-fpn-bccd.onnx                      # then 70 minutes on the shipped CellNet's data
                                                                   # (BCCD's labelling): the same-data comparison
    dotnet run --project src/EdgeCounter -c Release -- eval --voc ../shared/datasets/bccd --split test \
        --input-scale 0.75 --model models/fasterrcnn-fpn.onnx
    models/training/fasterrcnn.py --smoke     # CI: toy fields, a small backbone, 3 steps, export + onnx.checker
"""
import argparse
import json
import logging
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
from cellnet import CLASSES, SUBTYPES  # noqa: E402

log = logging.getLogger("fasterrcnn")


def narrow_resnet(layers, width, norm_layer):
    """A ResNet of BasicBlocks (ResNet-18's layout at layers (2, 2, 2, 2)) whose stages are width, 2, 4 and 8 x width
    channels wide instead of 64-512: torchvision's ResNet fixes the widths, and at 64 the trunk alone is 45 MB."""
    from torchvision.models.resnet import BasicBlock, conv1x1

    class Trunk(nn.Module):
        def __init__(self):
            super().__init__()
            self.inplanes = width
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1 = norm_layer(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            for i, blocks in enumerate(layers):
                setattr(self, f"layer{i + 1}", self._stage(width << i, blocks, 1 if i == 0 else 2))
            self.out_channels = width << (len(layers) - 1)

        def _stage(self, planes, blocks, stride):
            down = None
            if stride != 1 or self.inplanes != planes:
                down = nn.Sequential(conv1x1(self.inplanes, planes, stride), norm_layer(planes))
            stage = [BasicBlock(self.inplanes, planes, stride, down, norm_layer=norm_layer)]
            self.inplanes = planes
            stage += [BasicBlock(planes, planes, norm_layer=norm_layer) for _ in range(1, blocks)]
            return nn.Sequential(*stage)

    return Trunk()


def build(backbone="resnet50", crop=512, max_per_image=300, fpn_channels=256, head=1024, width=None):
    """torchvision's fasterrcnn_resnet50_fpn (fpn_channels 256, a 1024-wide box head) unless told smaller; width: a
    ResNet-18-layout trunk of that base width (narrow_resnet) instead of torchvision's."""
    import torchvision
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    def gn(channels):
        return nn.GroupNorm(32 if channels >= 32 and channels % 32 == 0 else (8 if channels % 8 == 0 else 1), channels)
    if width:
        trunk = narrow_resnet((2, 2, 2, 2), width, gn)
        c5 = trunk.out_channels
    else:
        trunk = getattr(torchvision.models, backbone)(weights=None, norm_layer=gn)
        c5 = trunk.fc.in_features
    body = BackboneWithFPN(trunk, return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                           in_channels_list=[c5 // 8, c5 // 4, c5 // 2, c5], out_channels=fpn_channels,
                           norm_layer=gn)
    # Cells are 2-12 um: 20-120 px at 0.1 um/px; the anchors of the five FPN levels cover 16-256 px.
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,), (256,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5)
    # min_size/max_size: the graph keeps frames at their own scale (the service resizes by the pixel scale first).
    return FasterRCNN(body, num_classes=None, rpn_anchor_generator=anchors, min_size=crop, max_size=4096,
                      box_head=TwoMLPHead(fpn_channels * 7 * 7, head), box_predictor=FastRCNNPredictor(head, len(CLASSES) + 1),
                      box_detections_per_img=max_per_image, box_score_thresh=0.05)


def targets_of(a):
    """torchvision targets (labels 1-based) from an augmented sample; pseudo-labelled cells were made boxes before."""
    boxes = torch.as_tensor(a["boxes"], dtype=torch.float32).reshape(-1, 4)
    keep = (boxes[:, 2] - boxes[:, 0] > 1) & (boxes[:, 3] - boxes[:, 1] > 1)
    return {"boxes": boxes[keep], "labels": torch.as_tensor(a["classes"], dtype=torch.int64)[keep] + 1}


def with_pseudo_boxes(s):
    """The sample with its cached present-but-unlabelled cells as boxes of their class, and no ignore regions."""
    ib, ic = s.ignore
    n = len(ic)
    out = D.Sample(s.name, s.image, np.concatenate([s.boxes, ib]), np.concatenate([s.classes, ic]),
                   np.concatenate([s.subtypes, np.full(n, -1, np.int64)]), s.source, mpp=s.mpp,
                   size_known=np.concatenate([s.size_known, np.ones(n, bool)]))
    return out


def load_training_sets(cfg):
    import train as T
    sets, weights, augs = [], [], []
    pseudo_dir = T.resolve(cfg.get("pseudo_dir", "models/training/pseudo"))
    for src in cfg["sources"]:
        src = {**src, "edge_ignore_um": 0.0}  # no frame band: torchvision cannot leave it untaught
        if src["kind"] == "synth":
            T.ensure_synth(src)
        tr = [with_pseudo_boxes(s) for s in D.load_source(src, "train", pseudo_dir, REPO)]
        if tr:
            sets.append(tr); weights.append(src.get("weight", 1.0)); augs.append(T.source_augment(cfg, src))
            log.info("  %-6s %4d training images", src["name"], len(tr))
    return sets, weights, augs


def toy_sets():
    rng = np.random.default_rng(0)
    return [[D.make_toy_field(rng) for _ in range(6)]], [1.0], [{"scale": [0.9, 1.1], "colour": 0.5, "base_scale": 1.0}]


def initial_weights(model, path):
    """Start from a checkpoint (.pt, a state_dict) or from an exported graph (.onnx): the exporter keeps most
    parameters' names but writes each GroupNorm's scale and shift as anonymous Mul/Add constants after its
    InstanceNormalization, so those are matched to the GroupNorms in the order the network calls them."""
    if not path.endswith(".onnx"):
        model.load_state_dict(torch.load(path, map_location="cpu"))
        return
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:  # the exporter writes equal constants once and aliases the others through Identity
        if n.op_type == "Identity" and n.input[0] in weights:
            weights[n.output[0]] = weights[n.input[0]]
    state = model.state_dict()
    for k in state:
        if k in weights:
            if tuple(weights[k].shape) != tuple(state[k].shape):
                raise SystemExit(f"{path}: {k} is {weights[k].shape}, the network's is {tuple(state[k].shape)}: another architecture")
            state[k] = torch.from_numpy(weights[k].copy())
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    affine = []  # (scale, shift) after each InstanceNormalization, in graph order
    for n in graph.node:
        if n.op_type != "InstanceNormalization":
            continue
        node, found = n, {}
        while len(found) < 2:  # InstanceNorm -> Reshape -> Mul(scale) -> Add(shift)
            nxt = consumers.get(node.output[0], [])
            if len(nxt) != 1:
                raise SystemExit(f"{path}: a GroupNorm's scale and shift were not found after {n.name}")
            node = nxt[0]
            if node.op_type in ("Mul", "Add"):
                const = [i for i in node.input if i in weights and i not in state]
                if const:
                    found[node.op_type] = weights[const[0]].reshape(-1)
        affine.append((found["Mul"], found["Add"]))
    called = []
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(m)) for m in model.modules() if isinstance(m, nn.GroupNorm)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model([torch.zeros(3, 64, 64, device=next(model.parameters()).device)])
    model.train(was_training)
    for h in hooks:
        h.remove()
    names = {m: k for k, m in model.named_modules()}
    if len(called) != len(affine):
        raise SystemExit(f"{path} has {len(affine)} GroupNorms, the network calls {len(called)}: another architecture")
    for m, (scale, shift) in zip(called, affine):
        if scale.shape[0] != m.num_channels:
            raise SystemExit(f"{path}: GroupNorm {names[m]} has {m.num_channels} channels, the graph's has {scale.shape[0]}")
        state[names[m] + ".weight"] = torch.from_numpy(scale.copy())
        state[names[m] + ".bias"] = torch.from_numpy(shift.copy())
    missing = [k for k in state if k not in weights and not any(k.startswith(names[m] + ".") for m in called)]
    if missing:
        raise SystemExit(f"{path} lacks {len(missing)} of the network's parameters, e.g. {missing[0]}")
    model.load_state_dict(state)


def export(model, path, sidecar, crop):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.eval().cpu()
    x = torch.rand(3, crop, crop)
    torch.onnx.export(model, ([x],), path, opset_version=11, input_names=["images"], output_names=["boxes", "labels", "scores"],
                      dynamic_axes={"images": [1, 2], "boxes": [0], "labels": [0], "scores": [0]})
    import onnx
    onnx.checker.check_model(onnx.load(path))
    with open(os.path.splitext(path)[0] + ".labels.json", "w") as f:
        json.dump(sidecar, f, indent=2)
    log.info("exported %s (%.1f MB) and its sidecar", path, os.path.getsize(path) / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.path.join(HERE, "configs", "v2.json"), help="the data and augmentation: a detector config (v2.json, shipped-data.json)")
    ap.add_argument("--backbone", default="resnet50", help="resnet50 (the paper's); resnet18/34 where time is short (say so in the card)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="PyTorch CPU threads (default: 2 on the CPU, 8 beside a GPU)")
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--minutes", type=float, help="stop training after this long (the export still runs)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--fpn-channels", type=int, default=256, help="FPN width (torchvision's and the paper's: 256)")
    ap.add_argument("--head", type=int, default=1024, help="box head width (torchvision's: 1024)")
    ap.add_argument("--width", type=int, help="a narrow ResNet-18-layout trunk of this base width (e.g. 32) instead of --backbone")
    ap.add_argument("--init", help="start from these weights: a checkpoint (.pt) or an exported graph (.onnx) of the same architecture")
    ap.add_argument("--anneal-by-time", action="store_true", help="the cosine follows the time budget (--minutes) when that ends the run before --iterations")
    ap.add_argument("--warmup", type=int, help="linear warm-up steps (default: a tenth of --iterations, at most 1000)")
    ap.add_argument("--version", default="1.0.0", help="the sidecar's model version")
    ap.add_argument("--name", help="the sidecar's model name (default fasterrcnn-fpn-BACKBONE)")
    ap.add_argument("--out", help="the ONNX file (default models/fasterrcnn-fpn.onnx; --smoke: a temporary folder)")
    ap.add_argument("--smoke", action="store_true", help="toy fields, a narrow resnet18 FPN, 3 steps, export")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    random.seed(1); np.random.seed(1); torch.manual_seed(1)
    torch.set_num_threads(args.threads or (2 if args.device == "cpu" else 8))
    cfg = json.load(open(args.config))
    crop = 192 if args.smoke else cfg["crop"][0]
    if args.smoke:
        import tempfile
        args.backbone, args.iterations, args.batch, args.lr, args.fpn_channels, args.head = "resnet18", 3, 2, 0.005, 32, 64
        args.out = args.out or os.path.join(tempfile.mkdtemp(prefix="fasterrcnn-smoke-"), "fasterrcnn-smoke.onnx")
        sets, weights, augs = toy_sets()
    else:
        sets, weights, augs = load_training_sets(cfg)
        args.out = args.out or os.path.join(REPO, "models", "fasterrcnn-fpn.onnx")
    device = torch.device(args.device)
    if args.width:
        args.backbone = f"resnet18-w{args.width}"
    model = build(args.backbone, crop, fpn_channels=args.fpn_channels, head=args.head, width=args.width).to(device)
    if args.init:
        initial_weights(model, args.init)
        log.info("initial weights from %s", args.init)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    warmup = args.warmup if args.warmup is not None else min(1000, args.iterations // 10)
    def lr_at(i, elapsed):  # linear warm-up, then cosine to 1 %
        if i < warmup:
            return args.lr * (0.001 + 0.999 * i / max(1, warmup))
        done = (i - warmup) / max(1, args.iterations - warmup)
        if args.anneal_by_time and args.minutes:
            done = max(done, elapsed / (args.minutes * 60))
        return args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))
    rng = np.random.default_rng(1)
    p = np.array(weights, np.float64); p /= p.sum()
    log.info("Faster R-CNN + FPN (%s, GroupNorm, %s) on %s: %d iterations, batch %d, crop %d, lr %.3f",
             args.backbone, f"from {args.init}" if args.init else "from scratch", args.device, args.iterations, args.batch, crop, args.lr)
    t0, losses, done = time.time(), [], 0
    model.train()
    for i in range(args.iterations):
        if args.minutes and time.time() - t0 > args.minutes * 60:
            log.info("time budget of %.0f minutes reached after %d iterations", args.minutes, i)
            break
        images, targets = [], []
        for _ in range(args.batch):
            k = int(rng.choice(len(sets), p=p))
            a = D.augment(sets[k][int(rng.integers(len(sets[k])))], rng, crop, crop, augs[k])
            images.append(torch.from_numpy(D.image_to_tensor_array(a["image"])).to(device))
            targets.append({k2: v.to(device) for k2, v in targets_of(a).items()})
        for g in opt.param_groups:
            g["lr"] = lr = lr_at(i, time.time() - t0)
        loss_parts = model(images, targets)
        loss = sum(loss_parts.values())
        if not torch.isfinite(loss):
            raise SystemExit(f"loss is {loss.item()} at iteration {i}: lower --lr")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        losses.append(loss.item())
        done = i + 1
        if done % 50 == 0 or args.smoke:
            log.info("it %d loss %.3f (%s) lr %.4f %.1f s/it", done, np.mean(losses[-50:]),
                     " ".join(f"{k[5:]} {v.item():.3f}" for k, v in loss_parts.items()), lr, (time.time() - t0) / done)
    minutes = (time.time() - t0) / 60
    log.info("trained %d iterations in %.1f minutes on %s", done, minutes, args.device)
    sidecar = {
        "name": args.name or f"fasterrcnn-fpn-{args.backbone}", "version": args.version if not args.smoke else "smoke", "family": "fasterrcnn",
        "input": {"name": "images", "micrometresPerPixel": cfg.get("micrometres_per_pixel", 0.1)},
        "classes": CLASSES,
        "subtypes": {"of": "WBC", "labels": SUBTYPES, "stage": "cellnet-subtypes.onnx"},
        "groups": {"WBC": SUBTYPES + ["unidentified"]},
        "differential": SUBTYPES,
        "scoreThresholds": {c: 0.7 for c in CLASSES},  # the paper's operating point
        "nmsIou": 0.5, "maxDetections": 300, "redCellClass": "RBC",
        "training": {"backbone": args.backbone, "threads": torch.get_num_threads(), "fpnChannels": args.fpn_channels, "head": args.head, "iterations": done, "minutes": round(minutes, 1), "device": args.device,
                     "config": os.path.basename(args.config)},
    }
    if args.smoke:
        sidecar.pop("subtypes"); sidecar["groups"] = {}; sidecar["differential"] = ["WBC"]
    if args.init:
        sidecar["training"]["init"] = os.path.basename(args.init)
        prior = os.path.splitext(args.init)[0] + ".labels.json"
        if os.path.exists(prior):  # the run it continues, so the card can add up the training time
            sidecar["training"]["before"] = json.load(open(prior)).get("training")
    # The checkpoint resumes a run (--init); it is a build output, not committed.
    checkpoint = os.path.join(REPO, "models", "training", "runs", "fasterrcnn", os.path.splitext(os.path.basename(args.out))[0] + ".pt") if not args.smoke else os.path.splitext(args.out)[0] + ".pt"
    os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
    torch.save(model.state_dict(), checkpoint)
    export(model, args.out, sidecar, crop)
    if args.smoke:
        assert np.mean(losses) > 0, "loss"
        again = build(args.backbone, crop, fpn_channels=args.fpn_channels, head=args.head, width=args.width)
        initial_weights(again, args.out)  # what --init does with an exported graph: every parameter back, exactly
        rebuilt = again.state_dict()
        for k, v in model.state_dict().items():
            assert torch.equal(v, rebuilt[k]), f"--init from the exported graph does not restore {k}"
        print(f"fasterrcnn smoke test passed: {args.out}")


if __name__ == "__main__":
    main()
