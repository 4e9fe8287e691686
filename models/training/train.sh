#!/usr/bin/env bash
# One command to retrain and re-export CellNet from scratch on CPU (fixed seed):
#   models/training/train.sh            # final recipe: synth fields (C# simulator) + BCCD trainval
#   models/training/train.sh early      # short run on BCCD train only
# Needs: /usr/bin/python3 with Debian's torch/torchvision/onnx/cv2/numpy, dotnet (for the simulator),
# the BCCD dataset at /work/shared/datasets/bccd (or edit "bccd" in the config).
set -euo pipefail
cd "$(dirname "$0")/../.."
config="models/training/configs/${1:-final}.json"
shift || true
exec /usr/bin/python3 models/training/train.py --config "$config" "$@"
