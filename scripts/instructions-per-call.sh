#!/usr/bin/env bash
# Instructions per call of a doubly recursive fib, counted by valgrind (deterministic, unlike
# wall-clock time on a shared machine): the run of (fib 25) minus the run of (fib 1), divided
# by the 242 785 calls (fib 25) makes. Usage: scripts/instructions-per-call.sh [none|cranelift]
# (default none: the CEK interpreter; JIT_THRESHOLD=N sets --jit-threshold, default 1). Needs valgrind and a release build of the sx CLI
# (cargo build --release -p sx-cli). Run it next to CPython with --python.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-none}
sx=target/release/sx
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ','; }
if [ "$backend" = "--python" ]; then
  for n in 25 1; do printf 'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nfib(%s)\n' "$n" > "$dir/fib$n.py"; done
  py=$(python3 -c 'import sys; print(sys.executable)')
  a=$(count "$py" "$dir/fib25.py"); b=$(count "$py" "$dir/fib1.py")
else
  for n in 25 1; do printf '(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n(define (run) (fib %s))\n' "$n" > "$dir/fib$n.sx"; done
  args=(bench --backend "$backend" --jit-threshold "${JIT_THRESHOLD:-1}" --iterations 1 --warmup 0)
  a=$(count "$sx" "${args[@]}" "$dir/fib25.sx"); b=$(count "$sx" "${args[@]}" "$dir/fib1.sx")
fi
echo "fib $backend: $(( (a - b) / 242785 )) instructions per call"
