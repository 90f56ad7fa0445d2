#!/usr/bin/env bash
# test/run.sh — run every test binary given, add up their closing lines, and
# print one total. Exit non-zero when any test failed or any binary crashed.
set -u
pass=0; fail=0; skip=0; crashed=0
for t in "$@"; do
    echo "== $t"
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[A-Za-z0-9_]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then echo "!! $t exited $rc without a summary line"; crashed=$((crashed + 1)); continue; fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${s:-0}))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then echo "!! $t exited $rc"; crashed=$((crashed + 1)); fi
done
fail=$((fail + crashed))
echo "tests: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
