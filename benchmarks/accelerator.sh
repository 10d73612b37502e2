#!/usr/bin/env bash
# The generation benchmarks on an accelerator JAX sees (a GPU), in one go:
# the original implementation, then ours against it and keras_hub's
# T5Seq2SeqLM, then float32 / bfloat16 / int8 weights. Each step writes its
# log (and the original its JSON) into the folder given, default ./bench-out.
#
#   bash benchmarks/accelerator.sh /path/to/unified-io-inference [out-dir]
#
# Needs jax with a GPU plugin, keras_uio's dependencies, and for the
# original flax and einops (see benchmarks/original_generate.py).
set -uo pipefail
src=${1:?a checkout of allenai/unified-io-inference}
out=${2:-bench-out}
repeats=${REPEATS:-5}
mkdir -p "$out"
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
here=$(dirname "$0")

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 |
    tee "$out/device.txt"

timeout "${ORIGINAL_TIMEOUT:-120}" python3 "$here/original_generate.py" \
    --src "$src" --repeats "$repeats" --wait-idle 0 --max-extra 0 \
    --skip-eager --skip-image-sampled --json-out "$out/original.json" \
    2>&1 | tee "$out/original.log"

original=()
[ -s "$out/original.json" ] && original=(--original "$out/original.json")
timeout "${GENERATE_TIMEOUT:-200}" python3 "$here/generate.py" \
    --repeats "$repeats" --vqgan-direct "${original[@]}" \
    2>&1 | tee "$out/generate.log"

timeout "${LOW_PRECISION_TIMEOUT:-120}" python3 "$here/low_precision.py" \
    --repeats "$repeats" 2>&1 | tee "$out/low_precision.log"
