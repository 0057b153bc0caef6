#!/usr/bin/env bash
# Instructions per call of a doubly recursive function, counted by valgrind (deterministic,
# unlike wall-clock time on a shared machine): fib (fib 25, 242 785 calls) or, with FN=tak,
# tak (tak 18 12 6, 63 609 calls). SX: a process running it 3 times minus one running it once,
# divided by twice the calls (the steady state, collections included, as in a benchmark's
# timed iterations). Python (--python): a script calling it once minus one making one call.
# Usage: [FN=fib|tak] scripts/instructions-per-call.sh [none|cranelift|--python]
# (default none: the CEK interpreter; JIT_THRESHOLD=N sets --jit-threshold, default 1). Needs
# valgrind and a release build of the sx CLI (cargo build --release -p sx-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-none}
fn=${FN:-fib}
sx=${SX:-target/release/sx}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ','; }
case "$fn" in
  fib)
    sx_def='(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))'
    py_def=$'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)'
    big='25'; small='1'; calls=242785 ;;
  tak)
    sx_def='(define (tak x y z) (if (< y x) (tak (tak (- x 1) y z) (tak (- y 1) z x) (tak (- z 1) x y)) z))'
    py_def=$'def tak(x, y, z):\n    return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y)) if y < x else z'
    big='18 12 6'; small='1 2 3'; calls=63609 ;;
  *) echo "FN must be fib or tak" >&2; exit 2 ;;
esac
if [ "$backend" = "--python" ]; then
  for k in big small; do printf '%s\n%s(%s)\n' "$py_def" "$fn" "$(echo "${!k}" | tr ' ' ',')" > "$dir/$k.py"; done
  py=$(python3 -c 'import sys; print(sys.executable)')
  a=$(count "$py" "$dir/big.py"); b=$(count "$py" "$dir/small.py")
  counted=$((calls - 1))
else
  printf '%s\n(define (run) (%s %s))\n' "$sx_def" "$fn" "$big" > "$dir/big.sx"
  args=(bench --backend "$backend" --jit-threshold "${JIT_THRESHOLD:-1}" --warmup 0)
  a=$(count "$sx" "${args[@]}" --iterations 3 "$dir/big.sx"); b=$(count "$sx" "${args[@]}" --iterations 1 "$dir/big.sx")
  counted=$((calls * 2))
fi
echo "$fn $backend: $(( (a - b) / counted )) instructions per call"
