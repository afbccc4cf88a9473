#!/usr/bin/env bash
# Times `make demo` from a clean clone: set-up (venv, torch, package, system packages) and the
# study itself, separately, then prints the study's per-stratum accuracies.
#   bash benchmarks/bench_demo.sh [CLONE_DIR]
# Writes benchmarks/results/demo.json in the current checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-/tmp/smollab-demo-clone}
rm -rf "$dest"
git clone -q "$here" "$dest"
cd "$dest"
t0=$(date +%s)
make setup system-deps >/dev/null
t1=$(date +%s)
.venv/bin/smollab run problems/multiplication.md
t2=$(date +%s)
mkdir -p "$here/benchmarks/results"
.venv/bin/python - "$dest" "$((t1 - t0))" "$((t2 - t1))" "$here/benchmarks/results/demo.json" <<'PY'
import json, os, platform, sys
dest, setup_s, study_s, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
res = json.load(open(os.path.join(dest, "outputs/multiplication/results/results.json")))
acc = {c: {s: round(b["exact_match"]["estimate"], 4) for s, b in v["tasks"]["mul"]["strata"].items()}
       for c, v in res["conditions"].items()}
summary = {"setup_s": setup_s, "study_s": study_s, "total_s": setup_s + study_s,
           "accuracy": acc, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
           "pdf": os.path.exists(os.path.join(dest, "outputs/multiplication/paper/paper.pdf"))}
json.dump(summary, open(out, "w"), indent=2)
print(json.dumps(summary))
PY
