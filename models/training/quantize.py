#!/usr/bin/python3
"""INT8 CellNet: static QDQ quantisation of models/cellnet.onnx (issue 17), with the onnx package and the C# ORT.

There is no ONNX Runtime for Python here. So:
  1. `probe` writes a copy of the graph whose outputs are every activation to quantise (each input of a Conv, Add
     or Resize that is not a weight), and
  2. the service's own ONNX Runtime runs it on fields of every training source (`EdgeCounter calibrate`: the
     service's pre-processing, per tensor the mean over images of its minimum and maximum), then
  3. `quantize` inserts QuantizeLinear/DequantizeLinear pairs: activations uint8 (asymmetric, the calibrated
     range widened to hold 0), Conv weights int8 per output channel (symmetric), Conv biases int32 at input scale x
     weight scale. ONNX Runtime fuses DQ -> Conv -> (Relu) -> Q into its integer QLinearConv, DQ -> Add -> Q into
     QLinearAdd, so the trunk and neck run on int8 (VNNI where the CPU has it). The head's last convolutions, whose
     outputs are the heatmap, size, offset and subtype logits, end in integer kernels too (their input and output ranges
     are the extremes over the calibration images), then dequantise. The input's normalisation is folded into the
     first QuantizeLinear and the subtype Softmax is spelt out so that ONNX Runtime needs no transposes for it.

    models/training/quantize.sh      # the three steps on the shared datasets; writes models/cellnet-int8.onnx
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QUANTISED_CONSUMERS = {"Conv", "Add", "Resize"}


def feeds_a_conv(model):
    """Tensors from which a Conv can be reached: the trunk and neck. The rest (the heads' last convolutions and what
    follows them) makes the outputs the decoder reads."""
    consumers = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    reach = set()
    for n in reversed(model.graph.node):
        for t in n.output:
            if any(c.op_type == "Conv" or any(o in reach for o in c.output) for c in consumers.get(t, [])):
                reach.add(t)
    return reach


def head_convs(nodes, reach):
    """The heads' last convolutions: their outputs lead on to no other Conv (they are the logits the decoder scores)."""
    return [n for n in nodes if n.op_type == "Conv" and not any(o in reach for o in n.output)]


def quantised_node(n, reach):
    """Every Conv (the heads' last ones too: their int8 input lets the convolution before them end in an integer
    kernel, and those are the heads' widest layers), and the Add and Resize nodes of the trunk and neck (leading on to
    a Conv)."""
    return n.op_type == "Conv" or (n.op_type in QUANTISED_CONSUMERS and any(o in reach for o in n.output))


def activations(model):
    """Names of the activation tensors to quantise: the data inputs of the quantised nodes (quantised_node)."""
    weights = {i.name for i in model.graph.initializer}
    constants = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    reach = feeds_a_conv(model)
    heads = head_convs(model.graph.node, reach)
    names = []
    for n in model.graph.node:
        if not quantised_node(n, reach):
            continue
        inputs = n.input[:1] if n.op_type in ("Conv", "Resize") else n.input
        for t in inputs:
            if t and t not in weights and t not in constants and t not in names:
                names.append(t)
        if n in heads:
            names.append(n.output[0])  # a head's logits: its last convolution ends in an integer kernel too
    return names


def probe(src, dst):
    model = onnx.load(src)
    names = activations(model)
    del model.graph.output[:]
    for t in names:
        model.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    onnx.save(model, dst)
    print(f"probe with {len(names)} activation outputs -> {dst}")


def merge_ranges(paths):
    """Per tensor, the widest of the sets' mean ranges (every source's fields must fit), and the extremes over every
    image of every set."""
    merged = {}
    for p in paths:
        for t, r in json.load(open(p))["ranges"].items():
            lo, hi, xlo, xhi = merged.get(t, (0.0, 0.0, 0.0, 0.0))
            merged[t] = (min(lo, r["min"]), max(hi, r["max"]), min(xlo, r.get("lowest", r["min"])), max(xhi, r.get("highest", r["max"])))
    return merged


def quantize(src, dst, ranges):
    model = onnx.load(src)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    names = activations(model)
    missing = [t for t in names if t not in ranges]
    if missing:
        raise SystemExit(f"no calibrated range for {len(missing)} tensors, e.g. {missing[:3]}: calibrate with this graph's probe")
    new_inits, act_scale = [], {}
    # A Resize's output is quantised as its input is: its values lie within the input's range, and with the same
    # scale and zero point ONNX Runtime resizes the uint8 tensor itself instead of dequantising around it.
    reach = feeds_a_conv(model)
    same_as = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Resize" and quantised_node(n, reach)
               and n.output[0] in names and n.input[0] in names}
    # The heads' last convolutions read and write the values the decoder scores: their input and output take the
    # extremes over every calibration image (the mean maximum clipped the most confident cells; platelets AP50 -0.01).
    heads = head_convs(g.node, reach)
    head_outputs = {n.output[0] for n in heads}
    head_tensors = {n.input[0] for n in heads} | head_outputs
    # Activations: uint8, zero point so that 0 is exact (Relu outputs start there, padding is 0).
    qdq_nodes = []
    for t in names:
        r = ranges[same_as.get(t, t)]
        lo, hi = (r[2], r[3]) if t in head_tensors else (r[0], r[1])
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = max((hi - lo) / 255.0, 1e-8)
        zp = int(np.clip(round(-lo / scale), 0, 255))
        act_scale[t] = scale
        s_name, z_name = f"{t}_scale", f"{t}_zero_point"
        new_inits += [numpy_helper.from_array(np.array(scale, np.float32), s_name), numpy_helper.from_array(np.array(zp, np.uint8), z_name)]
        qdq_nodes.append((t, helper.make_node("QuantizeLinear", [t, s_name, z_name], [f"{t}_q"], name=f"{t}_QuantizeLinear"),
                          helper.make_node("DequantizeLinear", [f"{t}_q", s_name, z_name], [f"{t}_dq"], name=f"{t}_DequantizeLinear")))
    quantised = set(names)
    for n in g.node:
        for k, t in enumerate(n.input):
            if t in head_outputs:
                n.input[k] = f"{t}_dq"
    for n in g.node:
        if not quantised_node(n, reach):
            continue
        for k, t in enumerate(n.input):
            if t in quantised and (k == 0 or n.op_type == "Add"):
                n.input[k] = f"{t}_dq"
    # Conv weights int8 per output channel, biases int32.
    weight_nodes = []
    for n in g.node:
        if n.op_type != "Conv" or n.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        s_w = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1) / 127.0, 1e-12).astype(np.float32)
        w_q = np.clip(np.round(w / s_w.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
        base = n.input[1]
        new_inits += [numpy_helper.from_array(w_q, f"{base}_int8"), numpy_helper.from_array(s_w, f"{base}_wscale"),
                      numpy_helper.from_array(np.zeros(len(s_w), np.int8), f"{base}_wzp")]
        weight_nodes.append(helper.make_node("DequantizeLinear", [f"{base}_int8", f"{base}_wscale", f"{base}_wzp"], [f"{base}_dqw"], axis=0, name=f"{base}_DequantizeWeight"))
        n.input[1] = f"{base}_dqw"
        if len(n.input) > 2 and n.input[2] in inits and n.input[0].endswith("_dq"):
            b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
            s_b = (act_scale[n.input[0][:-3]] * s_w.astype(np.float64)).astype(np.float32)
            b_q = np.round(b / s_b).astype(np.int32)
            bb = n.input[2]
            new_inits += [numpy_helper.from_array(b_q, f"{bb}_int32"), numpy_helper.from_array(s_b, f"{bb}_bscale"),
                          numpy_helper.from_array(np.zeros(len(s_b), np.int32), f"{bb}_bzp")]
            weight_nodes.append(helper.make_node("DequantizeLinear", [f"{bb}_int32", f"{bb}_bscale", f"{bb}_bzp"], [f"{bb}_dqb"], axis=0, name=f"{bb}_DequantizeBias"))
            n.input[2] = f"{bb}_dqb"
    # Each Q/DQ pair right after the node that makes its tensor (the graph stays topologically sorted).
    producer = {o: i for i, n in enumerate(g.node) for o in n.output}
    nodes = list(g.node)
    after = {}
    for t, q, dq in qdq_nodes:
        after.setdefault(producer.get(t, -1), []).extend([q, dq])
    ordered = weight_nodes + after.get(-1, [])
    for i, n in enumerate(nodes):
        ordered.append(n)
        ordered.extend(after.get(i, []))
    del g.node[:]
    g.node.extend(ordered)
    g.initializer.extend(new_inits)
    fold_input_normalisation(g)
    decompose_softmax(g)
    used = {t for n in g.node for t in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f"{len(names)} activations and {len(weight_nodes)} weight/bias tensors quantised -> {dst} ({os.path.getsize(dst) / 1e6:.1f} MB)")


def fold_input_normalisation(g):
    """(image - mean) / std then QuantizeLinear(S, Z) as one per-channel QuantizeLinear of the image: scale std_c * S,
    zero point Z - mean_c / (std_c * S), rounded (off by at most half a step, ~0.6/255 of the pixel range). Two float
    passes over the frame and their thread wake-ups less."""
    producer = {o: n for n in g.node for o in n.output}
    inits = {i.name: i for i in g.initializer}
    for n in list(g.node):
        if n.op_type != "QuantizeLinear" or n.input[0] not in producer:
            continue
        div = producer[n.input[0]]
        if div.op_type != "Div" or div.input[0] not in producer or producer[div.input[0]].op_type != "Sub":
            continue
        sub = producer[div.input[0]]
        if sub.input[1] not in inits or div.input[1] not in inits:
            continue  # a normalisation computed from the input itself (the subtype stage's per-crop statistics)
        x = sub.input[0]
        mean = numpy_helper.to_array(inits[sub.input[1]]).ravel().astype(np.float64)
        std = numpy_helper.to_array(inits[div.input[1]]).ravel().astype(np.float64)
        S = float(numpy_helper.to_array(inits[n.input[1]]))
        Z = int(numpy_helper.to_array(inits[n.input[2]]))
        zc = Z - mean / (std * S)
        if (np.round(zc) < 0).any() or (np.round(zc) > 255).any():
            raise SystemExit(f"input range does not hold x = 0..1 for every channel: zero points {zc}")
        g.initializer.extend([numpy_helper.from_array((std * S).astype(np.float32), "image_qscale"),
                              numpy_helper.from_array(np.round(zc).astype(np.uint8), "image_qzero")])
        n.input[0], n.input[1], n.input[2] = x, "image_qscale", "image_qzero"
        n.attribute.append(helper.make_attribute("axis", 1))
        if not any(div.output[0] in m.input for m in g.node if m is not n):
            g.node.remove(div); g.node.remove(sub)
        break


def decompose_softmax(g):
    """Softmax over the channel axis as ReduceMax, Sub, Exp, ReduceSum, Div: the same values, without the two
    transposes ONNX Runtime's Softmax makes for an axis that is not the last (0.9 of ~1.0 ms)."""
    nodes = list(g.node)
    for i, n in enumerate(nodes):
        if n.op_type == "Softmax":
            x, y = n.input[0], n.output[0]
            ax = [a.i for a in n.attribute if a.name == "axis"][0]
            rep = [helper.make_node("ReduceMax", [x], [x + "_max"], axes=[ax], keepdims=1),
                   helper.make_node("Sub", [x, x + "_max"], [x + "_c"]),
                   helper.make_node("Exp", [x + "_c"], [x + "_e"]),
                   helper.make_node("ReduceSum", [x + "_e", "softmax_axes"], [x + "_s"], keepdims=1),
                   helper.make_node("Div", [x + "_e", x + "_s"], [y])]
            g.initializer.append(numpy_helper.from_array(np.array([ax], np.int64), "softmax_axes"))
            nodes[i:i + 1] = rep
            break
    del g.node[:]
    g.node.extend(nodes)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe"); p.add_argument("src"); p.add_argument("dst")
    q = sub.add_parser("quantize"); q.add_argument("src"); q.add_argument("dst"); q.add_argument("ranges", nargs="+")
    s = sub.add_parser("sidecar"); s.add_argument("src"); s.add_argument("dst"); s.add_argument("--calibration", nargs="+", default=[])
    s.add_argument("--stage", help="the subtype stage the INT8 detector names (its own INT8 stage)")
    a = ap.parse_args()
    if a.cmd == "probe":
        probe(a.src, a.dst)
    elif a.cmd == "quantize":
        quantize(a.src, a.dst, merge_ranges(a.ranges))
    else:
        side = json.load(open(a.src))
        side["name"] = side["name"] + "-int8"
        side["quantisation"] = {"method": "static QDQ: activations uint8 (mean min/max over calibration fields; the heads' last convolutions: extremes), Conv weights int8 per channel, biases int32",
                                "calibration": a.calibration, "from": os.path.basename(a.src).replace(".labels.json", ".onnx")}
        if a.stage:
            side["subtypes"]["stage"] = a.stage
        json.dump(side, open(a.dst, "w"), indent=2)
        print(f"sidecar -> {a.dst}")


if __name__ == "__main__":
    main()
