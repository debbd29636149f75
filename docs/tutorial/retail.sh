#!/usr/bin/env bash
# The retail tutorial (docs/tutorial/retail.md) end to end, with the chronorec command line only:
# ingest with the bundled recipe, split by time, train, evaluate, recommend, predict behaviour,
# serve (curl /health, /recommend, /predict-behavior), forecast.
#
#   docs/tutorial/retail.sh [RETAIL_FILE] [WORK_DIR]
#
# RETAIL_FILE: the UCI Online Retail log as published (default: $CHRONOREC_DATA/online-retail/
# online_retail.csv.xz, else /work/shared/data/online-retail/online_retail.csv.xz; CHRONOREC_DATA may
# also name the file itself). WORK_DIR: where everything is written (default runs/tutorial-retail).
# Every step prints its command and its output; WORK_DIR/timings.tsv keeps each step's wall and CPU seconds.
#
# The settings below are the tutorial's; the test (tests/test_tutorial.py) runs this same script on a
# small generated file by overriding them through the environment.
set -euo pipefail

if [[ -n "${1:-}" ]]; then
  DATA="$1"
elif [[ -n "${CHRONOREC_DATA:-}" && -f "${CHRONOREC_DATA}" ]]; then
  DATA="$CHRONOREC_DATA"
elif [[ -n "${CHRONOREC_DATA:-}" ]]; then
  DATA="$CHRONOREC_DATA/online-retail/online_retail.csv.xz"
else
  DATA=/work/shared/data/online-retail/online_retail.csv.xz
fi
WORK="${2:-runs/tutorial-retail}"

CUTOFF="${CUTOFF:-2011-11-01}"                      # test: purchases from 1 November 2011 on
VALIDATION_CUTOFF="${VALIDATION_CUTOFF:-2011-10-01}" # validation: October 2011; training: before
CUSTOMER="${CUSTOMER:-13047}"
THREADS="${THREADS:-2}"
SASREC_EPOCHS="${SASREC_EPOCHS:-3}"
SASREC_DIM="${SASREC_DIM:-64}"
HORIZON_HOURS="${HORIZON_HOURS:-168}"   # predict-behavior: P(buy within 7 days)
BEHAVIOR_CUTOFFS="${BEHAVIOR_CUTOFFS:-8}"
BEHAVIOR_MODEL="${BEHAVIOR_MODEL:-logistic}" # or gbm: 0.01 better ROC-AUC here, 15x the CPU
FORECAST_TOP="${FORECAST_TOP:-10}"
FORECAST_HORIZON="${FORECAST_HORIZON:-14}"
FORECAST_ORIGINS="${FORECAST_ORIGINS:-8}"
SERVE="${SERVE:-1}"                      # 0 skips the serve / curl step

if [[ -n "${CHRONOREC_BIN:-}" ]]; then
  read -r -a CHRONOREC <<<"$CHRONOREC_BIN"
elif command -v chronorec >/dev/null; then
  CHRONOREC=(chronorec)
else
  CHRONOREC=(python -m chronorec)
fi
PYTHON="${PYTHON:-python}"
if [[ "${CHRONOREC[0]}" != chronorec && "${CHRONOREC[0]}" != python ]]; then
  PYTHON="${CHRONOREC[0]}"
fi

[[ -f "$DATA" ]] || { echo "error: retail log $DATA not found (pass its path, or set CHRONOREC_DATA)" >&2; exit 1; }
mkdir -p "$WORK/results"
cd "$WORK"
case "$DATA" in /*) ;; *) DATA="$OLDPWD/$DATA" ;; esac
: >timings.tsv
T_START=$SECONDS

cpu() { # CPU seconds (user + system) of the commands finished so far
  times >.times # in this shell: a pipe would run it in a subshell, which has no finished children
  awk 'NR == 2 { split($0, f, /[ms]+/); print f[1] * 60 + f[2] + f[3] * 60 + f[4] }' .times
}
step() { # step NAME: a heading; the wall and CPU seconds since the last one go to timings.tsv
  local now=$SECONDS c
  cpu >.cpu
  c=$(<.cpu)
  if [[ -n "${STEP_NAME:-}" ]]; then
    printf '%s\t%s\t%.0f\n' "$STEP_NAME" $((now - STEP_T0)) "$(awk -v a="$c" -v b="$STEP_CPU" 'BEGIN { print a - b }')" >>timings.tsv
  fi
  STEP_NAME="$1" STEP_T0=$now STEP_CPU=$c
  printf '\n## %s\n' "$1"
}
run() { # run ARGS...: print the command as a reader would type it, then run chronorec with ARGS
  printf '$ chronorec %s\n' "$*"
  "${CHRONOREC[@]}" "$@"
}
SPLIT=(--split temporal --cutoff "$CUTOFF" --validation-cutoff "$VALIDATION_CUTOFF")

step "1. ingest with the bundled recipe"
run ingest "$DATA" --recipe online-retail --out data/retail

step "2-3. split by time and train"
run train --data data/retail --kind popular "${SPLIT[@]}" --out models/popular
run train --data data/retail --kind buyagain "${SPLIT[@]}" --out models/buyagain
run train --data data/retail --kind sasrec "${SPLIT[@]}" --epochs "$SASREC_EPOCHS" \
  -p dim="$SASREC_DIM" -p max_len=50 -p train_windows=random --threads "$THREADS" --no-progress --out models/sasrec
run train --data data/retail --kind repeat-blend "${SPLIT[@]}" -p 'base={"kind": "ease"}' --out models/blend-ease

step "4. evaluate (repeat-aware, paired against buy-again)"
run evaluate models/buyagain models/popular models/sasrec models/blend-ease --data data/retail "${SPLIT[@]}" \
  --history auto --ks 10,20 --out results/evaluate.json

step "5. recommend for one customer, with explanations"
run recommend --model models/sasrec --users "$CUSTOMER" -k 5 --explain
run recommend --model models/blend-ease --users "$CUSTOMER" -k 5 --explain --include-seen --out results/recs.csv
cat results/recs.csv

step "6. predict-behavior: fit, save, per-user probabilities"
run predict-behavior --data data/retail --tasks target --models "$BEHAVIOR_MODEL" --horizon-hours "$HORIZON_HOURS" \
  --train-cutoffs "$BEHAVIOR_CUTOFFS" --step-hours "$HORIZON_HOURS" --threads "$THREADS" \
  --save models/buy7d --out runs/behavior
head -n 4 runs/behavior/predictions.csv

if [[ "$SERVE" != 0 ]]; then
  step "7. refit on every event, serve, and ask it with curl"
  # the split model's histories stop at the validation cut-off: serve a refit on the whole log,
  # with the epochs and history protocol its validation chose
  run train --refit-from models/sasrec --data data/retail --threads "$THREADS" --no-progress --out models/sasrec-full
  PORT="${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  printf '$ chronorec serve --model models/sasrec-full --behavior-model models/buy7d --state-dir serve-state --port %s &\n' "$PORT"
  "${CHRONOREC[@]}" serve --model models/sasrec-full --behavior-model models/buy7d --state-dir serve-state \
    --port "$PORT" >serve.log 2>&1 &
  SERVER=$!
  trap 'kill "$SERVER" 2>/dev/null || true' EXIT
  for _ in $(seq 240); do
    curl -sf "localhost:$PORT/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat serve.log; exit 1; }
    sleep 0.5
  done
  printf '$ curl -s localhost:%s/health\n' "$PORT"
  curl -sf "localhost:$PORT/health" | tee results/health.json
  printf '\n$ curl -s localhost:%s/recommend -d %s\n' "$PORT" "'{\"user_id\": \"$CUSTOMER\", \"k\": 3, \"explain\": true}'"
  curl -sf "localhost:$PORT/recommend" -H 'content-type: application/json' \
    -d "{\"user_id\": \"$CUSTOMER\", \"k\": 3, \"explain\": true}" | tee results/serve-recommend.json
  printf '\n$ curl -s localhost:%s/predict-behavior -d %s\n' "$PORT" "'{\"user_ids\": [\"$CUSTOMER\", \"99999\"]}'"
  curl -sf "localhost:$PORT/predict-behavior" -H 'content-type: application/json' \
    -d "{\"user_ids\": [\"$CUSTOMER\", \"99999\"]}" | tee results/serve-behavior.json
  echo
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  trap - EXIT
fi

step "8. forecast 14 days of units sold, with intervals"
# forecast reads the log as the named dataset: <data-dir>/online-retail/online_retail.csv.xz
if [[ "$(basename "$DATA")" == online_retail.csv.xz && "$(basename "$(dirname "$DATA")")" == online-retail ]]; then
  DATA_DIR="$(dirname "$(dirname "$DATA")")"
else
  DATA_DIR=data-dir
  mkdir -p data-dir/online-retail
  if [[ "$DATA" == *.xz ]]; then
    ln -sf "$DATA" data-dir/online-retail/online_retail.csv.xz
  else
    "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(open(sys.argv[1], "rb"), lzma.open(sys.argv[2], "wb"))' \
      "$DATA" data-dir/online-retail/online_retail.csv.xz
  fi
fi
run forecast --dataset online-retail --data-dir "$DATA_DIR" --by product --measure units --top "$FORECAST_TOP" \
  --freq day --horizon "$FORECAST_HORIZON" --origins "$FORECAST_ORIGINS" --levels 80,95 --threads "$THREADS" \
  --out runs/forecast 2>results/forecast-log.txt >results/forecast.txt || { cat results/forecast-log.txt; exit 1; }
head -n 1 results/forecast.txt
# the ladder's rolling-origin scores, without the progress bar drawn on the same stream
tr '\r' '\n' <results/forecast-log.txt | grep -o '[a-z_]*: MASE .*' || true
tail -n +2 results/forecast.txt
head -n 4 runs/forecast/total_forecast.csv

step "done"
cpu >.cpu
printf 'total\t%s\t%.0f\n' $((SECONDS - T_START)) "$(<.cpu)" >>timings.tsv
rm -f .cpu .times
echo "step, wall seconds, CPU seconds (user + system, every process):"
cat timings.tsv
