#!/usr/bin/env bash
# Shi et al. (2015) Table 1 on one CUDA GPU: the paper's best ConvLSTM (5x5-128-64-64) and its
# FC-LSTM-2048-2048 baseline, trained side by side on the same Moving MNIST data (10,000 / 2,000
# training / validation sequences, batch 16, Adam 1e-3, bf16) for the same wall time, then both
# scored on the same 3,000 test sequences (cross-entropy per sequence, MSE, SSIM, ...).
#
#   scripts/moving_mnist_full.sh OUT_DIR [MINUTES]
#
# OUT_DIR must be new (training refuses a run directory that holds checkpoints; continue one with
# `nowcast train ... --resume`).
#
# CONV_ARCH / FC_ARCH / NUM_TRAIN / NUM_VAL / NUM_TEST / WORKERS / ACCELERATOR / PYTHON override the
# defaults (the CPU check in tests runs it with tiny models); COMPILE=MODE trains both with
# `--compile MODE` (torch.compile; see benchmarks/bench_nowcast_step.py for which mode pays).
# BATCH / LR replace the paper's batch of 16 and Adam's 1e-3: on an H200 a step is bound by the
# host, and batch 64 takes the same wall time as 16 (docs/benchmarks.md).
set -euo pipefail
out=${1:?usage: moving_mnist_full.sh OUT_DIR [MINUTES]}
minutes=${2:-6}
conv=${CONV_ARCH:-convlstm-5x5-128-64-64}
fc=${FC_ARCH:-fc-lstm-2048-2048}
accelerator=${ACCELERATOR:-gpu}
lstmforge=("${PYTHON:-python3}" -m lstmforge)
common=(--dataset moving-mnist --epochs 1000 --patience 0 --max-minutes "$minutes"
        --batch-size "${BATCH:-16}" --lr "${LR:-1e-3}" --seed 0 --accelerator "$accelerator"
        --num-train "${NUM_TRAIN:-10000}" --num-val "${NUM_VAL:-2000}"
        --num-test "${NUM_TEST:-3000}" --num-workers "${WORKERS:-4}"
        ${COMPILE:+--compile "$COMPILE"})
mkdir -p "$out"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # a stopped script stops its trainings too
"${lstmforge[@]}" nowcast train --arch "$conv" --out "$out/convlstm" "${common[@]}" \
    >"$out/convlstm.log" 2>&1 &
conv_pid=$!
"${lstmforge[@]}" nowcast train --arch "$fc" --out "$out/fclstm" "${common[@]}" \
    >"$out/fclstm.log" 2>&1 &
fc_pid=$!
status=0
wait "$conv_pid" || { status=$?; tail -20 "$out/convlstm.log"; }
wait "$fc_pid" || { status=$?; tail -20 "$out/fclstm.log"; }
for run in convlstm fclstm; do  # score whatever trained, even if the other run failed
    if [ ! -f "$out/$run/checkpoints/best.ckpt" ]; then
        echo "moving_mnist_full.sh: $run left no best.ckpt (see $out/$run.log)" >&2
        status=1
        continue
    fi
    "${lstmforge[@]}" nowcast evaluate --checkpoint "$out/$run/checkpoints/best.ckpt" \
        --accelerator "$accelerator" --json "$out/$run.json" --figures "$out/$run-figures" \
        --examples 2 || status=$?
done
exit "$status"
