#!/usr/bin/env bash
# One command to retrain and re-export CellNet from scratch on CPU (fixed seed):
#   models/training/train.sh trainonly  # 1) twin on BCCD train (+ synth): per-class thresholds chosen on val
#   models/training/train.sh            # 2) final model on BCCD trainval + synth fields; evaluates on test,
#                                       #    exports models/cellnet.onnx, the sidecar and the parity fixture,
#                                       #    and each graph variant of the config (cellnet-3scale.onnx, ...)
#   models/training/train.sh all        # 1) then 2)
#   models/training/train.sh longft-trainonly && models/training/train.sh longft
#                                       # the round-2 experiment (3000-iteration fine-tune; not shipped, see
#                                       # experiments.md); writes only under models/training/runs/longft*
# Extra arguments go to train.py (e.g. --device cuda where a GPU is lent, --minutes N time guard).
# Needs /usr/bin/python3 with Debian's torch/torchvision/onnx/cv2/numpy, dotnet (the simulator makes the
# synthetic fields on first use) and BCCD at /work/shared/datasets/bccd (or --bccd DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
which="${1:-final}"
shift || true
if [ "$which" = all ]; then
  /usr/bin/python3 models/training/train.py --config models/training/configs/trainonly.json \
    --run-dir models/training/runs/trainonly --scratch "$@"
  which=final
fi
if [ "$which" = trainonly ]; then
  exec /usr/bin/python3 models/training/train.py --config models/training/configs/trainonly.json \
    --run-dir models/training/runs/trainonly --scratch "$@"
fi
exec /usr/bin/python3 models/training/train.py --config "models/training/configs/${which}.json" "$@"
