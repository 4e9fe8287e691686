#!/usr/bin/env bash
# INT8 CellNet from the shipped fp32 graph (models/training/quantize.py says how): probe graph, activation ranges on
# fields of every training source through the service's own ONNX Runtime, QDQ graph, sidecar; then the subtype stage
# the same way on white-cell crops. The detector's sources by their training splits (BCCD train, Chula train, the
# simulator's training seed); the PBC crops, which the detector never trains on, are 4 per class of the stage's
# held-out tenth, read for their stain only (no label is used). The stage: crops of its training-split cells.
#   models/training/quantize.sh   # writes models/cellnet-int8.onnx, models/cellnet-subtypes-int8.onnx and their sidecars
# Needs /usr/bin/python3 with python3-onnx, python3-numpy, python3-opencv and python3-torch (the stage's crop code),
# dotnet, and ../shared/datasets beside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${DATASETS:-../shared/datasets}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dotnet build src/EdgeCounter -c Release -v q -nologo >/dev/null
E="dotnet src/EdgeCounter/bin/Release/net10.0/EdgeCounter.dll"
/usr/bin/python3 models/training/quantize.py probe models/cellnet.onnx "$work/probe.onnx"
# The simulator's fields (the training source's seed), and every 10th PBC crop of each class (4 per class).
$E synth --out "$work/synth" --fields 30 --seed 7 >/dev/null
mkdir -p "$work/pbc"
for c in neutrophil eosinophil basophil lymphocyte monocyte ig erythroblast platelet; do
  ls "$D/pbc/$c" | awk 'NR % 10 == 1' | head -4 | while read -r f; do ln -s "$(realpath "$D/pbc/$c/$f")" "$work/pbc/${c}_$f"; done
done
# Each source at the model's 0.1 um/px, as training sees it: BCCD 0.075 (x0.75), Chula 0.18 (x1.8), PBC and synth 0.1.
$E calibrate "$work/probe.onnx" --images "$D/bccd/JPEGImages" --ids "$D/bccd/ImageSets/Main/train.txt" --input-scale 0.75 --max 40 --out "$work/bccd.json"
$E calibrate "$work/probe.onnx" --images "$D/chula-rbc12/images" --ids "$D/chula-rbc12/splits/train.txt" --input-scale 1.8 --max 20 --out "$work/chula.json"
$E calibrate "$work/probe.onnx" --images "$work/pbc" --out "$work/pbc.json"
$E calibrate "$work/probe.onnx" --images "$work/synth/JPEGImages" --out "$work/synth.json"
/usr/bin/python3 models/training/quantize.py quantize models/cellnet.onnx models/cellnet-int8.onnx "$work"/{bccd,chula,pbc,synth}.json
/usr/bin/python3 models/training/quantize.py sidecar models/cellnet.labels.json models/cellnet-int8.labels.json --calibration bccd chula pbc synth \
  --stage cellnet-subtypes-int8.onnx
# The subtype stage the same way: its input is a 96x96 crop of each white cell, so it is calibrated on such crops of
# the stage's training-split cells (PBC, BCCD, simulator), made as the C# stage makes them.
/usr/bin/python3 models/training/subtypes.py --config models/training/configs/subtypes.json --calibration-crops "$work/stagecal" --per-source 48
/usr/bin/python3 models/training/quantize.py probe models/cellnet-subtypes.onnx "$work/stage-probe.onnx"
$E calibrate "$work/stage-probe.onnx" --images "$work/stagecal" --max 500 --out "$work/stage.json"
/usr/bin/python3 models/training/quantize.py quantize models/cellnet-subtypes.onnx models/cellnet-subtypes-int8.onnx "$work/stage.json"
/usr/bin/python3 models/training/quantize.py sidecar models/cellnet-subtypes.labels.json models/cellnet-subtypes-int8.labels.json --calibration pbc bccd synth
