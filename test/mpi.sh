#!/usr/bin/env bash
# test/mpi.sh — data-parallel training's promises (docs/distributed.md), run
# by `make test-mpi`: N ranks give bitwise the run of one process with
# grad_accum × N, for every attention kind; checkpoints resume across 1 <-> 2
# ranks bitwise; a killed rank ends the job with an error in seconds; ranks
# that disagree on the configuration or the data are refused; SIGTERM
# checkpoints every rank once. Usage: test/mpi.sh MPI_TRAIN PLAIN_TRAIN
# (the MPI build's trainer, and the plain build's as the one-process reference).
set -u
MPI_TRAIN=$1 PLAIN_TRAIN=$2
pass=0 fail=0 skip=0
dir=$(mktemp -d /tmp/hh_test_mpi_XXXXXX)
check() {   # check CONDITION-STATUS MESSAGE
    if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2"; fi
}
MPIRUN="mpirun --oversubscribe --allow-run-as-root --mca btl self,vader"
if [ -f data/brown/byte_train_000000.bin ]; then DATA=$(pwd)/data/brown
else
    # No fetched corpus: shards of the shared Brown text (docs/data.md).
    DATA=$dir/data
    if [ -f ../shared/data/brown/brown_detagged.txt ]; then
        head -c 400000 ../shared/data/brown/brown_detagged.txt > $dir/text.txt
        data/prepare --tokenizer byte --out $DATA/byte_train $dir/text.txt > /dev/null
        data/prepare --tokenizer byte --out $DATA/byte_val $dir/text.txt > /dev/null
    else
        echo "SKIP: no Brown text (make data, or ../shared/data beside the repo): data-parallel tests skipped"
        echo "test_mpi: 0 passed, 0 failed, 1 skipped"
        exit 0
    fi
fi
COMMON="n_layer=2 n_head=2 n_embd=32 seq_len=64 vocab_size=256 tokenizer=byte train_data=$DATA/byte_train_*.bin
 val_data=$DATA/byte_val_*.bin batch_size=2 warmup_steps=2 eval_every=3 eval_batches=3 log_every=0
 checkpoint_every=0 lr=3e-3 chunk_size=16 performer_redraw=3 threads=1"
# The weights, moments, step and data state of two checkpoints (past the
# header's config length field and the config text, which name other out_dirs).
same_state() {
    local la lb
    la=$(od -An -t d4 -j 40 -N 4 "$1" | tr -d ' ') lb=$(od -An -t d4 -j 40 -N 4 "$2" | tr -d ' ')
    cmp -s <(tail -c +$((1024 + la + 1)) "$1") <(tail -c +$((1024 + lb + 1)) "$2") &&
        cmp -s <(head -c 1024 "$1" | tail -c +45) <(head -c 1024 "$2" | tail -c +45)
}

# 1. Two ranks against one process with twice the accumulation, every kind.
while read -r kind extra; do
    name=${kind}${extra:+-${extra//[ =]/-}}
    $MPIRUN -np 2 $MPI_TRAIN $COMMON attention=$kind $extra max_steps=6 grad_accum=1 out_dir=$dir/two-$name \
        > $dir/two-$name.log 2>&1 < /dev/null
    check $? "$name: 2 ranks run"
    $PLAIN_TRAIN $COMMON attention=$kind $extra max_steps=6 grad_accum=2 out_dir=$dir/one-$name > $dir/one-$name.log 2>&1 < /dev/null
    check $? "$name: 1 process runs"
    same_state $dir/one-$name/model.ckpt $dir/two-$name/model.ckpt
    check $? "$name: 2 ranks × grad_accum 1 is bitwise 1 process × grad_accum 2"
    l1=$(grep '^val_loss=' $dir/one-$name.log); l2=$(grep '^val_loss=' $dir/two-$name.log)
    [ -n "$l1" ] && [ "$l1" = "$l2" ]; check $? "$name: the same validation loss printed ($l1 / $l2)"
done <<'KINDS'
softmax
elu
taylor
performer
hedgehog
hedgehog hedgehog_map=softmax
hedgehog hedgehog_map=joint
hedgehog hedgehog_per_head=1 distill_weight=0.5
t2r
KINDS
$MPIRUN -np 2 $MPI_TRAIN $COMMON attention=hedgehog max_steps=4 grad_accum=2 out_dir=$dir/two-ga2 > $dir/two-ga2.log 2>&1
$PLAIN_TRAIN $COMMON attention=hedgehog max_steps=4 grad_accum=4 out_dir=$dir/one-ga4 > $dir/one-ga4.log 2>&1
same_state $dir/one-ga4/model.ckpt $dir/two-ga2/model.ckpt
check $? "2 ranks × grad_accum 2 is bitwise 1 process × grad_accum 4"
$MPIRUN -np 3 $MPI_TRAIN $COMMON max_steps=4 grad_accum=1 out_dir=$dir/three > $dir/three.log 2>&1
$PLAIN_TRAIN $COMMON max_steps=4 grad_accum=3 out_dir=$dir/one-ga3 > $dir/one-ga3.log 2>&1
same_state $dir/one-ga3/model.ckpt $dir/three/model.ckpt
check $? "3 ranks is bitwise 1 process × grad_accum 3"
grep -q "optimizer: this rank holds the AdamW moments of" $dir/three.log
check $? "ZeRO-1: each rank reports its share of the moments"

# 2. Checkpoints resume across 1 <-> 2 ranks: 4 steps one way, 4 the other,
# against 8 straight (min_lr = lr: the same learning rates either way).
RES="$COMMON attention=performer min_lr=3e-3"
$PLAIN_TRAIN $RES max_steps=8 grad_accum=2 out_dir=$dir/straight > /dev/null 2>&1
$MPIRUN -np 2 $MPI_TRAIN $RES max_steps=4 grad_accum=1 out_dir=$dir/r21 > /dev/null 2>&1
$PLAIN_TRAIN $RES max_steps=8 grad_accum=2 resume=1 out_dir=$dir/r21 > /dev/null 2>&1
same_state $dir/straight/model.ckpt $dir/r21/model.ckpt
check $? "2 ranks for 4 steps, then 1 process resumed to 8: bitwise the straight run"
$PLAIN_TRAIN $RES max_steps=4 grad_accum=2 out_dir=$dir/r12 > /dev/null 2>&1
$MPIRUN -np 2 $MPI_TRAIN $RES max_steps=8 grad_accum=1 resume=1 out_dir=$dir/r12 > /dev/null 2>&1
same_state $dir/straight/model.ckpt $dir/r12/model.ckpt
check $? "1 process for 4 steps, then 2 ranks resumed to 8: bitwise the straight run"

# 3. A rank killed (SIGKILL) ends the job, with mpirun's message, in seconds.
$MPIRUN -np 2 $MPI_TRAIN $COMMON max_steps=1000000 out_dir=$dir/kill > $dir/kill.log 2>&1 &
job=$!
for _ in $(seq 50); do [ -f $dir/kill/metrics.csv ] && break; sleep 0.2; done
sleep 1
victim=$(pgrep -f "out_dir=$dir/kill" | while read -r p; do ps -o args= -p "$p" | grep -q "^$MPI_TRAIN" && echo "$p"; done | tail -n 1)
t0=$(date +%s%N)
kill -9 "$victim"
wait $job; rc=$?
secs=$(( ($(date +%s%N) - t0) / 1000000000 ))
[ $rc -ne 0 ] && [ $secs -le 15 ] && grep -q "exited on signal 9" $dir/kill.log
check $? "a killed rank ends the job (status $rc) within 15 s (took ${secs} s) with a message"

# 4. Ranks that disagree stop at start, naming the difference.
$MPIRUN -np 1 $MPI_TRAIN $COMMON max_steps=2 out_dir=$dir/mismatch : -np 1 $MPI_TRAIN $COMMON n_layer=3 max_steps=2 \
    out_dir=$dir/mismatch > $dir/mismatch.log 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "rank 1: its configuration has 'n_layer = 3' where rank 0's has 'n_layer = 2'" $dir/mismatch.log
check $? "a configuration mismatch between ranks is refused, naming the key (status $rc)"
# The same file name on two "machines" (working directories), other contents.
mkdir -p $dir/a $dir/b
cp $DATA/byte_val_000000.bin $dir/a/v.bin
cp $DATA/byte_val_000000.bin $dir/b/v.bin
printf '\001' | dd of=$dir/b/v.bin bs=1 seek=1030 conv=notrunc 2>/dev/null   # one token changed
TRAINABS=$(cd "$(dirname "$MPI_TRAIN")" && pwd)/$(basename "$MPI_TRAIN")
$MPIRUN -np 1 -wdir $dir/a $TRAINABS $COMMON val_data=v.bin max_steps=2 out_dir=$dir/mismatch2 : \
    -np 1 -wdir $dir/b $TRAINABS $COMMON val_data=v.bin max_steps=2 out_dir=$dir/mismatch2 > $dir/mismatch2.log 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "rank 1: its validation data differ from rank 0's" $dir/mismatch2.log
check $? "the same data file name with other contents is refused (status $rc)"

# 5. SIGTERM to the job: every rank stops at the same step, one checkpoint, which resumes.
$MPIRUN -np 2 $MPI_TRAIN $COMMON max_steps=1000000 out_dir=$dir/sig > $dir/sig.log 2>&1 &
job=$!
for _ in $(seq 50); do [ -f $dir/sig/metrics.csv ] && break; sleep 0.2; done
sleep 1
kill -TERM $job
wait $job
grep -q "stopped by signal 15 after step" $dir/sig.log && [ -f $dir/sig/model.ckpt ]
check $? "SIGTERM: the job checkpoints and stops"
step=$(grep -o "after step [0-9]*" $dir/sig.log | grep -o "[0-9]*$")
$MPIRUN -np 2 $MPI_TRAIN $dir/sig/config.txt resume=1 max_steps=$((step + 2)) > $dir/sig-resume.log 2>&1
check $? "the signalled job resumes"

[ $fail -eq 0 ] && rm -rf $dir
echo "test_mpi: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
