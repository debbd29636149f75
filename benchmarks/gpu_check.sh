#!/usr/bin/env bash
# The GPU checks of chronorec, as one script for a lent GPU machine (CI has none).
# Expects: the repository as working directory, python3 with torch (CUDA), wheels of the
# missing pure-Python dependencies in .whl/ (optional), ML-1M under $DATA (default gpu_data),
# and $OUT for the results. Each stage has its own time limit so partial results survive.
set -u
OUT=${OUT:-/tmp/chronorec-gpu}
DATA=${DATA:-gpu_data}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
export CHRONOREC_NO_PROGRESS=1 PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/device.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/device.txt"
# 1. the test suite's model, loss and device tests, on the GPU ("auto" device)
timeout "${T_TESTS:-170}" python3 -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_losses.py \
  tests/test_large_models.py tests/test_train.py 2>&1 | tail -40 | tee "$OUT/pytest.log"
# 2. epoch time: float32 vs bf16 autocast vs bf16 + torch.compile
timeout "${T_SPEED:-130}" python3 benchmarks/scaling.py --data-dir "$DATA" --sizes '' --speed --speed-epochs 5 \
  --no-progress --out "$OUT/speed-gpu.json" 2>&1 | tail -8
# 3. layers x width vs quality and epoch time (time budget per size)
timeout "${T_SIZES:-230}" python3 benchmarks/scaling.py --data-dir "$DATA" --sizes "${SIZES:-2x64,4x128,4x256}" \
  --budget-s "${BUDGET:-45}" --no-progress --out "$OUT/scaling-gpu.json" 2>&1 | tail -12
