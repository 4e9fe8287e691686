#!/usr/bin/python3
"""CI smoke test of the training recipe (no dataset needed, < 60 s on 2 cores):
draws a few toy smear fields itself, trains the real CellNet for a few steps on them, asserts that the
loss decreases, exports ONNX (opset <= 17), passes onnx.checker and decodes. Exits non-zero on failure.

    /usr/bin/python3 models/training/smoke_test.py
"""
import json
import os
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    t0 = time.time()
    import numpy as np
    import torch
    torch.set_num_threads(2)
    torch.manual_seed(0)
    import data as D
    import export as X
    from cellnet import CLASSES, STRIDE, CellNet, ExportWrapper, decode, detection_loss, one_cell_each

    # One cell each (the C# MultiClassNms rules): a cell boxed as two classes keeps its best class; a part of a cell
    # boxed apart goes; a neighbour that overlaps a little, and a small cell of another class lying on it, stay.
    boxes = torch.tensor([[0, 0, 40, 40], [1, 0, 41, 40], [5, 5, 20, 20], [25, 0, 65, 40], [30, 30, 36, 36]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.3, 0.5, 0.6, 0.4])
    classes = torch.tensor([0, 1, 0, 0, 2])
    assert one_cell_each(boxes, scores, classes, 0.5, 0.8).tolist() == [0, 3, 4], "one_cell_each"
    assert one_cell_each(boxes, scores, classes).tolist() == [0, 3, 2, 4, 1], "one_cell_each with the rules off"
    # A white cell and a platelet on it: compared only when both classes are marked.
    assert one_cell_each(boxes, scores, torch.tensor([0, 2, 0, 0, 2]), 0.5, None, ["WBC", "RBC"]).tolist() == [0, 3, 2, 4, 1], "cross_class_of"
    # Two lobes of a white cell scored above the whole cell: the whole is kept, the lobes go (parts_of); one box
    # inside another (a cell inside a wrong, larger box) stays; a red cell inside is not a part.
    lobes = torch.tensor([[10, 10, 30, 30], [32, 12, 50, 30], [5, 5, 55, 55], [100, 100, 120, 120], [95, 95, 150, 150], [12, 34, 22, 44]], dtype=torch.float32)
    lobe_scores = torch.tensor([0.6, 0.5, 0.2, 0.7, 0.1, 0.4])
    lobe_classes = torch.tensor([0, 0, 0, 0, 0, 1])
    assert one_cell_each(lobes, lobe_scores, lobe_classes, 0.5, 0.8, ["WBC", "RBC"], ["WBC"]).tolist() == [3, 5, 2, 4], "parts_of"
    assert one_cell_each(lobes, lobe_scores, lobe_classes, 0.5, 0.8, ["WBC", "RBC"]).tolist() == [3, 0, 1, 5, 2, 4], "parts_of off"
    # Below the operating thresholds (evaluation decodes down to 0.01) a box drops nothing: a red-cell box under the
    # red-cell threshold does not take the white cell it overlaps, as in the service, where it is never decoded.
    twins = torch.tensor([[0, 0, 40, 40], [1, 1, 41, 41]], dtype=torch.float32)
    assert one_cell_each(twins, torch.tensor([0.3, 0.25]), torch.tensor([1, 0]), 0.5, 0.8).tolist() == [0], "cross-class twins"
    assert one_cell_each(twins, torch.tensor([0.3, 0.25]), torch.tensor([1, 0]), 0.5, 0.8,
                         suppressor_floor=[0.2, 0.35, 0.2]).tolist() == [0, 1], "suppressor_floor"
    assert one_cell_each(lobes, lobe_scores, lobe_classes, 0.5, 0.8, ["WBC", "RBC"], ["WBC"],
                         suppressor_floor=[0.3, 0.3, 0.3]).tolist() == [3, 0, 1, 5, 2, 4], "parts_of below the floor"

    rng = np.random.default_rng(0)
    w, h = 128, 96
    samples = [D.make_toy_field(rng, w, h) for _ in range(4)]
    aug = {"scale": [0.8, 1.2], "colour": 0.5, "min_visible": 0.3, "defocus_p": 0.3, "motion_p": 0.2, "eyepiece_p": 0.2}
    # one augmented pass through the real pipeline (scale, flips, crop, colour, degradations) to exercise it
    auged = [D.augment(s, rng, w, h, aug) for s in samples]
    imgs = np.stack([D.image_to_tensor_array(a["image"]) for a in auged])
    tg = [D.encode(a, h // STRIDE, w // STRIDE) for a in auged]
    batch = {k: torch.from_numpy(np.stack([t[k] for t in tg])) for k in tg[0]}
    x = torch.from_numpy(imgs)
    assert batch["reg_mask"].sum() > 0, "no object centres encoded"
    assert (batch["subtype"] >= 0).any(), "no subtype targets encoded"

    # Partial labels. A class the source does not label gets no loss at all (no centres, no negatives); an ignore
    # region takes away its class's negatives; a point label teaches the centre but no size.
    import train as T
    cfg = {"crop": [w, h], "batch": 4}
    rbc, wbc = CLASSES.index("RBC"), CLASSES.index("WBC")
    partial = [D.Sample(s.name, s.image, s.boxes, s.classes, s.subtypes, "toy", labelled=[wbc, CLASSES.index("Platelets")])
               for s in samples]
    filtered = next(iter(T.BatchStream([partial], [1.0], [dict(aug, colour=0.0)], cfg, 0)))
    assert float(filtered["heatmap"][:, rbc].max()) == 0 and float(filtered["neg_weight"][:, rbc].max()) == 0, "unlabelled class still taught"
    assert float(filtered["heatmap"][:, wbc].max()) == 1, "labelled classes lost their centres"
    assert float(next(iter(T.BatchStream([samples], [1.0], [aug], cfg, 0)))["heatmap"][:, rbc].max()) == 1, "fully labelled stream lost red cells"
    s0 = samples[0]
    rb = s0.boxes[s0.classes == rbc][:1]
    t_ign = D.encode_targets(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                             (rb, np.array([rbc])), h // STRIDE, w // STRIDE)
    cx, cy = int((rb[0, 0] + rb[0, 2]) / 2 // STRIDE), int((rb[0, 1] + rb[0, 3]) / 2 // STRIDE)
    assert t_ign["neg_weight"][rbc, cy, cx] == 0 and t_ign["neg_weight"][wbc, cy, cx] == 1, "ignore region must act on its class only"
    loss_a = detection_loss(tuple(torch.zeros(1, *s) for s in ((3, h // STRIDE, w // STRIDE), (2, h // STRIDE, w // STRIDE),
                                                              (2, h // STRIDE, w // STRIDE), (5, h // STRIDE, w // STRIDE))),
                            {k: torch.from_numpy(v[None]) for k, v in t_ign.items()})[0]
    assert torch.isfinite(loss_a), "loss on an image with nothing labelled must be finite"
    pts = D.Sample("pts", s0.image, rb, [rbc], [-1], "toy", labelled=[rbc], size_known=[False], points=True)
    tp = D.encode(D.augment(pts, rng, w, h, {"scale": [1.0, 1.0], "colour": 0.0}), h // STRIDE, w // STRIDE)
    assert tp["heatmap"][rbc].max() == 1 and tp["reg_mask"].sum() == 0, "a point label teaches its centre, not a size"
    # The frame rule: a cell cut by the image's own frame is whole only in part.
    vis = D.frame_visible_fraction(np.array([[0, 10, 20, 50], [30, 30, 70, 70]], np.float32), 100, 100)
    assert vis[0] == 0.5 and vis[1] == 1.0, vis

    net = CellNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    losses = []
    for step in range(12):
        net.train()
        loss, parts = detection_loss(net(x), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert np.isfinite(losses[-1]), f"non-finite loss at step {step}: {parts}"
    first, last = float(np.mean(losses[:3])), float(np.mean(losses[-3:]))
    print(f"loss {first:.3f} -> {last:.3f} over {len(losses)} steps")
    assert last < 0.7 * first, f"loss did not decrease enough: {first:.3f} -> {last:.3f}"

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cellnet.onnx")
        net.eval()
        info = X.export_onnx(net, path)
        assert info["opset"] <= 17
        assert 0.5e6 < info["bytes"] < 20e6, f"unexpected model size {info['bytes']}"
        import onnx
        m = onnx.load(path)
        assert [i.name for i in m.graph.input] == ["image"], [i.name for i in m.graph.input]
        assert [o.name for o in m.graph.output] == X.OUTPUTS, [o.name for o in m.graph.output]
        sc = X.sidecar([0.3] * len(CLASSES))
        json.loads(json.dumps(sc))
        with torch.no_grad():
            outs = ExportWrapper(net)(x[:1])
        hm = outs[0]
        assert tuple(hm.shape) == (1, len(CLASSES), h // STRIDE, w // STRIDE), hm.shape
        assert float(hm.min()) >= 0 and float(hm.max()) <= 1
        peak = torch.nn.functional.max_pool2d(hm, 3, 1, 1)
        assert bool(((hm == peak) | (hm == 0)).all()), "heatmap is not peak-filtered"
        det = decode(outs, [0.05] * len(CLASSES))
        print(f"decoded {len(det['scores'])} detections at threshold 0.05")

        # Test-time scales: resized copies' heatmaps come back on the input's grid; the graph still exports.
        multi = ExportWrapper(net, 0, (0.85, 1.0, 1.15)).eval()
        with torch.no_grad():
            ms = multi(x[:1])
        assert [tuple(o.shape) for o in ms] == [tuple(o.shape) for o in outs], "test scales changed the output shapes"
        assert torch.equal(ms[1], outs[1]) and torch.equal(ms[2], outs[2]), "sizes/offsets must come from the input scale"
        assert not torch.equal(ms[0], outs[0]), "the other scales did not reach the heatmap"
        info = X.export_onnx(net, os.path.join(tmp, "multi.onnx"), 0, (0.85, 1.0, 1.15))
        assert abs(info["bytes"] - os.path.getsize(path)) < 0.1 * os.path.getsize(path), "scales must share one set of weights"

        # The weights come back out of the one-pass graph (BatchNorms folded by the exporter) and compute the same.
        import weights_from_onnx as R
        rebuilt = R.rebuild(path, {})
        with torch.no_grad():
            again = ExportWrapper(rebuilt)(x[:1])
        for name, a, b in zip(X.OUTPUTS, outs, again):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-3), f"rebuilt weights differ in {name}: {float((a - b).abs().max())}"
        print("three-scale graph exported; weights rebuilt from the one-pass graph agree")

    # The marrow model's extra class: plasma_cell after the blood three; a source that boxes only plasma cells
    # (SegPC) rules WBC out at its boxes and teaches nothing else; fine-tuning from a three-class checkpoint starts
    # the new heatmap channel from the WBC one.
    three = CellNet().state_dict()
    D.configure_classes(["WBC", "RBC", "Platelets", "plasma_cell"])
    try:
        pc = CLASSES.index("plasma_cell")
        assert D.LABEL_MAP["plasma cell"] == (pc, -1), "a simulator plasma cell is not the plasma_cell class"
        none = (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
        t = D.encode_targets(np.array([[20, 20, 60, 60]], np.float32), np.array([pc]), np.array([-1]), none,
                             h // STRIDE, w // STRIDE, labelled=[pc], not_at_boxes=[wbc])
        assert t["heatmap"].shape[0] == 4 and t["heatmap"][pc].max() == 1, "plasma_cell centre not encoded"
        assert t["neg_weight"][wbc, 10, 10] == 1 and t["neg_weight"][wbc, 2, 20] == 0, "WBC must learn 'not here' at the box only"
        assert t["neg_weight"][rbc].max() == 0 and t["heatmap"][wbc].max() == 0, "an unlabelled class was taught"
        net4 = CellNet(num_classes=len(CLASSES))
        T.load_init(net4, dict(three))
        w4, w3 = net4.state_dict()["hm_head.1.weight"], three["hm_head.1.weight"]
        assert torch.equal(w4[:3], w3) and torch.equal(w4[3], w3[0]), "new class not started from the WBC channel"
        sc = X.sidecar([0.3] * len(CLASSES), name="edgecounter-cellnet-marrow", licence="CC BY-NC-SA 4.0")
        assert sc["classes"][-1] == "plasma_cell" and "plasma_cell" in sc["groups"]["WBC"] and "plasma_cell" not in sc["differential"]
        assert sc["licence"] == "CC BY-NC-SA 4.0"
    finally:
        D.configure_classes(["WBC", "RBC", "Platelets"])
    assert D.LABEL_MAP["plasma cell"] == (wbc, -1) and "licence" not in X.sidecar([0.3] * 3)
    print("extra class (plasma_cell): targets, partial labels and fine-tuning start checked")
    print(f"smoke test passed in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        print("smoke test FAILED", file=sys.stderr)
        sys.exit(1)
