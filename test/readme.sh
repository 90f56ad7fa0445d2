#!/usr/bin/env bash
# test/readme.sh — every command in README.md's sh blocks runs, as written
# apart from its length: a README whose commands have drifted from the code
# (a renamed key, a moved file, a usage that changed) fails here.
#
#   test/readme.sh          (CI runs it after `make demo`, which made the data)
#   README=FILE test/readme.sh   another file's commands (to try a rule)
#
# It works in a scratch copy beside ../shared (the repository's sources and
# data linked, build/ copied so nothing recompiles), so it writes nothing in
# the repository. Each command is run as written, except:
#   make demo, make test, make test-mpi   skipped: CI runs each on its own
#   ./train CONF ...                      max_steps=2 (4 for resume=1) and a
#                                         short evaluation, unless it sets max_steps
#   ./sweep FILE                          --dry-run when it has many runs or
#                                         evaluation sets; else every run for 2 steps
#   bench/*                               at most 30 s (cut short is a pass)
#   mpirun                                --allow-run-as-root --oversubscribe
# A command none of these rules expects fails: a new kind of command needs a
# rule here.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$repo/../shared" ] || { echo "test/readme.sh: needs ../shared beside the repository (README's data commands read it)"; exit 1; }
[ -e "$repo/data/brown/byte_train_000000.bin" ] || { echo "test/readme.sh: run make data (or make demo) first"; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/hh-readme.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
ln -s "$(cd "$repo/../shared" && pwd)" "$scratch/shared"
work="$scratch/repo"
mkdir -p "$work/data"
for f in "$repo"/* "$repo"/.ci; do
    name=$(basename "$f")
    case "$name" in
        out|data|build) ;;
        train|sample|sweep|recall|analyze) cp -a "$f" "$work/" ;;   # make may relink them (make MPI=1)
        *) ln -s "$f" "$work/$name" ;;
    esac
done
[ -d "$repo/build" ] && cp -a "$repo/build" "$work/build"
# data/: the tools and the fetched corpora linked; directories README commands write are the scratch copy's own
for f in "$repo"/data/*; do
    name=$(basename "$f")
    if [ -d "$f" ] && [ "$name" != brown ] && [ "$name" != cache ]; then continue; fi
    ln -s "$f" "$work/data/$name"
done

pass=0 fail=0 skip=0
n=0
run() {   # run LABEL CMD: CMD in the scratch copy; 0 passes (124 too for a timed bench)
    local label=$1 cmd=$2 ok_timeout=${3:-0}
    n=$((n + 1))
    local log="$scratch/cmd$n.log"
    (cd "$work" && bash -c "$cmd") < /dev/null > "$log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ] || { [ "$ok_timeout" = 1 ] && [ $rc -eq 124 ]; }; then
        pass=$((pass + 1)); echo "ok    $label"
    else
        fail=$((fail + 1)); echo "FAIL  $label (exit $rc; ran: $cmd)"; tail -n 15 "$log" | sed 's/^/      /'
    fi
}

train_short() {   # the ./train arguments, shortened unless they set max_steps
    local args=$1
    case "$args" in
        *--help*|*max_steps=*) echo "$args" ;;
        *resume=1*) echo "$args max_steps=4 eval_batches=2 log_every=0" ;;
        *) echo "$args max_steps=2 eval_every=0 eval_batches=2 log_every=0" ;;
    esac
}

have_mpi=0
command -v mpicc >/dev/null && command -v mpirun >/dev/null && have_mpi=1

# The sh blocks' lines, comments cut off.
cmds=$(awk '/^```sh/ {f = 1; next} /^```/ {f = 0} f' "${README:-$repo/README.md}" | sed -E 's/[[:space:]]+#.*$//' | grep -v '^[[:space:]]*$')
while IFS= read -r c; do
    case "$c" in
        "make demo"*|"make test"|"make test "*|"make test-mpi"*)
            skip=$((skip + 1)); echo "skip  $c (CI runs it on its own)" ;;
        "make MPI=1"*|"mpirun "*)
            if [ $have_mpi = 0 ]; then skip=$((skip + 1)); echo "skip  $c (no mpicc/mpirun: apt-get install libopenmpi-dev openmpi-bin)"; continue; fi
            case "$c" in
                make*) run "$c" "$c" ;;
                *) rest=${c#mpirun }; run "$c" "mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1 $(train_short "$rest")" ;;
            esac ;;
        make|"make "*)
            run "$c" "$c" ;;
        "./train"*)
            run "$c" "$(train_short "$c")" ;;
        "./sweep "*)
            case "$c" in
                *--dry-run*) run "$c" "$c" ;;
                *)
                    file=$(echo "$c" | awk '{print $2}')
                    runs=$(cd "$work" && ./sweep "$file" --dry-run 2>/dev/null | sed -n 's/.*: \([0-9]*\) runs into .*/\1/p')
                    if grep -qE '^[[:space:]]*eval[[:space:]]*=' "$repo/$file" || [ "${runs:-99}" -gt 4 ]; then
                        run "$c (dry run: $runs runs)" "$c --dry-run"
                    else
                        run "$c (each run 2 steps)" "$c max_steps=2 eval_batches=1"
                    fi ;;
            esac ;;
        "bench/"*)
            run "$c (30 s at most)" "timeout 30 $c" 1 ;;
        "./sample "*|"./analyze "*|"./recall "*|"data/prepare "*|"head -c "*|"tail -c "*)
            run "$c" "$c" ;;
        *)
            fail=$((fail + 1)); echo "FAIL  $c (test/readme.sh has no rule for this command: add one)" ;;
    esac
done <<< "$cmds"
# `make MPI=1` left MPI binaries: the README's next `make` restores the plain build (checked above).
echo "test_readme: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
