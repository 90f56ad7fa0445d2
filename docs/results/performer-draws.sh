#!/bin/sh
# docs/results/performer-draws.sh — does a Performer recall because its
# random features estimate softmax, or because the model fitted itself to
# one draw of them? (docs/results.md §5.3). No training: each probe takes a
# checkpoint, sets the features, and measures recall accuracy on fresh
# sequences (./recall eval) and the validation loss (the trainer's, 8 batches).
#   1. every trained Performer recall model, with the features it was
#      trained with (performer_redraw=0 keeps the checkpoint's) and with five
#      fresh draws (seed=101…105 with performer_redraw=1: one step at lr 0
#      draws new features and changes nothing else);
#   2. softmax's recall model, seed 1, with its attention swapped for
#      Performer (convert=1) at m = 16, 111, 1024 and 8192 features: how well
#      the features estimate the attention of a model that recalls.
# Writes docs/results/performer-draws.csv; the probes' models go to
# out/redraw-probe (a probe already there, with its recall.log, is not redone).
#   docs/results/performer-draws.sh        (from the repository root, after the recall sweeps)
set -eu
P=out/redraw-probe
mkdir -p $P
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# probe PROBE DRAW TRAIN_ARGS...: one lr-0 step into out/redraw-probe/PROBE-draw-DRAW,
# then the CSV row PROBE,DRAW,val_loss,recall_accuracy
probe() {
    name=$1; draw=$2; shift 2
    D=$P/$name-draw-$draw
    mkdir -p "$(dirname $D)"
    if [ ! -f $D/model.ckpt ]; then
        ./train "$@" lr=0 min_lr=0 max_steps=1 warmup_steps=0 out_dir=$D > $D.log 2>&1 ||
            { echo "performer-draws.sh: $name (draw $draw) failed, see $D.log" >&2; exit 1; }
    fi
    [ -s $D/recall.log ] || ./recall eval $D/model.ckpt > $D/recall.log
    acc=$(sed -n 's/^recall_accuracy=//p' $D/recall.log)
    loss=$(sed -n 's/^val_loss=\([^ ]*\).*/\1/p' $D.log)
    echo "$name,$draw,$loss,$acc"
}
{
    echo "probe,draw,val_loss,recall_accuracy"
    for C in out/sweeps/recall-seeds/attention-performer*_seed-*/ out/sweeps/recall-performer-redraw/*_seed-*/; do
        [ -f $C/done ] || continue
        run=$(echo "${C%/}" | sed 's#^out/sweeps/##')
        probe "$run" own $C/config.txt init_from=$C/model.ckpt performer_redraw=0
        for s in 101 102 103 104 105; do
            probe "$run" $s $C/config.txt init_from=$C/model.ckpt seed=$s performer_redraw=1
        done
    done
    T=out/sweeps/recall-seeds/attention-softmax_seed-1/model.ckpt
    for M in 16 111 1024 8192; do
        draws="101 102 103 104 105"; [ $M -le 1024 ] || draws="101 102"   # m = 8192: 3 min a draw on one core
        for s in $draws; do
            probe "softmax-s1-as-performer-m$M" $s configs/recall-softmax.conf attention=performer convert=1 \
                init_from=$T performer_features=$M seed=$s
        done
    done
} > docs/results/performer-draws.csv
echo "wrote docs/results/performer-draws.csv"
