#!/usr/bin/env bash
# Interleaved side-by-side run of `medvl bench model` and llama.cpp's llama-bench on the same weights, ROUNDS times each,
# so both see the same machine state (the dev box is shared). Make the weights with tools/bench/make_llama_pair.py.
# Usage: tools/bench/model_side_by_side.sh MODEL_DIR LLAMA_BENCH_BINARY [ROUNDS] [THREADS]
#   MODEL_DIR holds config.json + model.safetensors (medvl) and model-f32.gguf (llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=$1; LLAMA_BENCH=$2; ROUNDS=${3:-3}; THREADS=${4:-$(nproc)}
dotnet build src/MedVL.Cli -c Release -v q -nologo >/dev/null
CLI="dotnet src/MedVL.Cli/bin/Release/net10.0/MedVL.Cli.dll"
lscpu | grep "Model name" >&2; date -u >&2
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r medvl (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  $CLI bench model --model "$MODEL" --prompt 128 --gen 32 --runs 5 --threads "$THREADS" --json
  $CLI bench model --model "$MODEL" --prompt 128 --gen 32 --runs 5 --threads "$THREADS" --json --no-mmap
  echo "# round $r llama.cpp (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$LLAMA_BENCH" -m "$MODEL/model-f32.gguf" -p 128 -n 32 -r 5 -t "$THREADS" -mmp 1,0 -o jsonl
done
