#!/usr/bin/env bash
# One command to retrain and re-export CellNet from scratch on CPU (fixed seeds):
#   models/training/train.sh            # the detector (configs/v2.json): every source with its partial labels,
#                                       # thresholds on the pooled validation set; exports models/cellnet.onnx,
#                                       # the sidecar, the parity fixture and each graph variant (cellnet-3scale.onnx)
#   models/training/train.sh subtypes   # the white-cell subtype stage (configs/subtypes.json): models/cellnet-subtypes.onnx
#   models/training/train.sh all        # both
#   models/training/train.sh marrow     # the opt-in marrow model: the shipped detector's weights plus a plasma_cell
#                                       # class, fine-tuned with SegPC-2021 (CC BY-NC-SA 4.0) in two stages
#                                       # (configs/marrow-stage1.json, then configs/marrow.json); exports
#                                       # models/training/runs/marrow/cellnet-marrow.onnx + sidecar, not shipped (~60 min, 2-core CPU)
#   models/training/train.sh pseudo     # rebuild the partial-label cache (models/training/pseudo/*.json) with the
#                                       # reference model (committed; only needed for a new source)
# Extra arguments go to the Python script (e.g. --device cuda where a GPU is lent, --minutes N time guard).
# Needs /usr/bin/python3 with Debian's torch/torchvision/onnx/cv2/numpy, dotnet (the simulator makes the
# synthetic fields on first use) and the datasets under ../shared/datasets beside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
which="${1:-detector}"
shift || true
case "$which" in
  detector) exec /usr/bin/python3 models/training/train.py --config models/training/configs/v2.json "$@" ;;
  subtypes) exec /usr/bin/python3 models/training/subtypes.py --config models/training/configs/subtypes.json "$@" ;;
  all) /usr/bin/python3 models/training/train.py --config models/training/configs/v2.json "$@"
       exec /usr/bin/python3 models/training/subtypes.py --config models/training/configs/subtypes.json ;;
  marrow) mkdir -p models/training/runs/marrow-stage1
          /usr/bin/python3 models/training/weights_from_onnx.py models/cellnet.onnx models/training/configs/v2.json models/training/runs/marrow-stage1/init.pt
          /usr/bin/python3 models/training/train.py --config models/training/configs/marrow-stage1.json --init models/training/runs/marrow-stage1/init.pt --no-export "$@"
          exec /usr/bin/python3 models/training/train.py --config models/training/configs/marrow.json --init models/training/runs/marrow-stage1/model.pt "$@" ;;
  pseudo) exec /usr/bin/python3 models/training/pseudo.py --config models/training/configs/v2.json "$@" ;;
  *) echo "usage: $0 [detector|subtypes|all|marrow|pseudo] [args]" >&2; exit 2 ;;
esac
