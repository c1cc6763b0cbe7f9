#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md in one run on a GPU machine that has jax, torch and
# CUDA but no keras: training (gpu_training.py), then top-k retrieval and the 10^6 gallery
# (retrieval.py) on the jax and torch backends, faiss-cpu beside them.
#
#   bash benchmarks/gpu_run.sh [OUT_DIR]      # logs and JSON land in OUT_DIR (default $OUT)
#
# Wheels of keras (and namex, optree, faiss-cpu) for that machine's Python are expected in
# .whl/ (see benchmarks/README.md); nothing is downloaded.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-/tmp/keras-cmr-gpu}}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
# No tensorflow there: keras must not default to it (workers set their own backend).
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND="${KERAS_BACKEND:-jax}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import jax, torch, keras; print('jax', jax.__version__, jax.devices(), '| torch',
torch.__version__, torch.cuda.is_available(), '| keras', keras.__version__)" | tee -a "$out/gpu.txt"
timeout 270 python3 benchmarks/gpu_training.py --json "$out/gpu_training.json" \
    2>&1 | tee "$out/gpu_training.log"
timeout 120 python3 benchmarks/retrieval.py topk --backends jax,torch \
    --json "$out/gpu_topk.json" 2>&1 | tee "$out/gpu_topk.log"
timeout 150 python3 benchmarks/retrieval.py scale --backends jax,torch \
    --json "$out/gpu_scale.json" 2>&1 | tee "$out/gpu_scale.log"
