#!/usr/bin/env bash
# Interleaved side-by-side run of `medvl bench kernels --json` and the NumPy+OpenBLAS baseline, ROUNDS times each,
# so both see the same machine state (the dev box is shared; interleaving keeps the comparison fair).
# Usage: tools/bench/side_by_side.sh [ROUNDS] [THREADS]   (builds the CLI in Release first)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}; THREADS=${2:-0}
dotnet build src/MedVL.Cli -c Release -v q -nologo >/dev/null
CLI="dotnet src/MedVL.Cli/bin/Release/net10.0/MedVL.Cli.dll"
PYTHREADS=$THREADS; [ "$PYTHREADS" = 0 ] && PYTHREADS=$(nproc)
lscpu | grep "Model name" >&2; date -u >&2
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r medvl (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  $CLI bench kernels --json --threads "$THREADS"
  echo "# round $r numpy+openblas (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  /usr/bin/python3 tools/bench/numpy_openblas_bench.py --threads "$PYTHREADS"
done
