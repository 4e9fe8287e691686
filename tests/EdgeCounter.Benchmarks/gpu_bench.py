# Usage: python3 gpu_bench.py [CHECKPOINT=model.pt] [DIR_WITH_cellnet.py=.]   (writes gpu_bench.json to $OUT or .)
# GPU latency of the shipped detector network (the same graph the ONNX model holds: CellNet + ExportWrapper),
# in PyTorch on CUDA, per field: host->device copy of the input, forward, device->host copy of the outputs.
import json, statistics, sys, time, torch
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else ".")
from cellnet import CellNet, ExportWrapper
ck = torch.load(sys.argv[1] if len(sys.argv) > 1 else "model.pt", map_location="cpu")
net = CellNet(**((ck.get("config") or {}).get("model") or {})).eval()
net.load_state_dict(ck["model"])
model = ExportWrapper(net).eval().cuda()
dev = torch.cuda.get_device_name(0)
res = {"device": dev, "torch": torch.__version__, "params": sum(p.numel() for p in net.parameters())}
def bench(h, w, half=False, cl=False, n=300):
    m = model.half() if half else model.float()
    if cl: m = m.to(memory_format=torch.channels_last)
    x_host = torch.rand(1, 3, h, w).pin_memory()
    times, fwd = [], []
    with torch.inference_mode():
        for i in range(n + 50):
            torch.cuda.synchronize(); t0 = time.perf_counter()
            x = x_host.cuda(non_blocking=True)
            if half: x = x.half()
            if cl: x = x.to(memory_format=torch.channels_last)
            torch.cuda.synchronize(); t1 = time.perf_counter()
            out = m(x)
            torch.cuda.synchronize(); t2 = time.perf_counter()
            _ = [o.float().cpu() for o in (out if isinstance(out, (list, tuple)) else [out])]
            t3 = time.perf_counter()
            if i >= 50: times.append((t3 - t0) * 1e3); fwd.append((t2 - t1) * 1e3)
    return {"end_to_end_ms_median": round(statistics.median(times), 3), "end_to_end_ms_p95": round(sorted(times)[int(0.95 * len(times))], 3),
            "forward_ms_median": round(statistics.median(fwd), 3)}
for (h, w) in [(480, 640), (768, 1024), (1920, 2560)]:
    res[f"fp32_{w}x{h}"] = bench(h, w)
    res[f"fp16_channels_last_{w}x{h}"] = bench(h, w, half=True, cl=True)
print(json.dumps(res, indent=1))
import os; open(os.path.join(os.environ.get("OUT", "."), "gpu_bench.json"), "w").write(json.dumps(res, indent=1))
