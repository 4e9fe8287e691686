#!/usr/bin/python3
"""The seed paper's Table 1 on public data, from `eval --suite --json` reports of several models (issue 15).

    dotnet run --project src/EdgeCounter -c Release -- eval --suite --json cellnet.json
    dotnet run --project src/EdgeCounter -c Release -- eval --suite --model models/fasterrcnn-fpn.onnx --json frcnn.json
    models/training/table1.py cellnet.json frcnn.json        # a Markdown table, a row per model and box set

Columns as the paper's (COCO AP, AP50, AP75, AP small/medium/large), then per-class AP50, the count error at the
model's operating thresholds and the CPU time per image, for every set of the suite that has boxes.
"""
import json
import sys

COLUMNS = ["AP", "AP50", "AP75", "APsmall", "APmedium", "APlarge"]


def rows(path):
    suite = json.load(open(path))
    for row in suite["rows"]:
        r = row.get("report")
        if not r or r.get("kind") != "voc" or "AP50" not in r:
            continue
        model = f'{r["model"]["name"]} {r["model"]["version"]}'
        per = r["perClass"]
        classes = ", ".join(f'{c} {v["AP50"]:.3f}' for c, v in per.items())
        counts = ", ".join(f'{c} {v["countErrorPct"]:+.1f} %' for c, v in per.items() if "countErrorPct" in v)
        ms = r.get("timing", {}).get("meanMs")
        time = f"{ms:.0f}" if ms else ""
        yield (f'| {row["set"]} (`{row["options"]}`) | {model} | ' + " | ".join(f'{r[c]:.3f}' for c in COLUMNS)
               + f' | {classes} | {counts} | {time} |')


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print("| set | model | AP | AP50 | AP75 | AP S | AP M | AP L | AP50 per class | count error | ms / image (CPU) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    lines = [line for p in paths for line in rows(p)]
    for line in sorted(lines, key=lambda l: l.split(" | ")[0]):  # each set's models side by side
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
