#!/bin/sh
# docs/results/collect.sh — copy the sweeps' result tables into docs/results/
# (small text, committed so a reader can re-plot) and gather the recall
# accuracies, which ./recall eval prints and the sweep tables do not hold.
#   docs/results/collect.sh        (from the repository root, after the sweeps)
set -eu
here=docs/results
for s in small-seeds convert-stage1 convert-stage2 convert-new-stage1 convert-new-stage2 recall-seeds mqar; do
    [ -f out/sweeps/$s/results.csv ] && cp out/sweeps/$s/results.csv $here/$s.csv
    [ -f out/sweeps/$s/summary.csv ] && cp out/sweeps/$s/summary.csv $here/$s-summary.csv
done
# run,task,val_loss,recall_accuracy for every finished recall and MQAR run
# (./recall eval DIR/model.ckpt > DIR/recall.log) and the recall conversion.
{
    echo "run,task,val_loss,recall_accuracy"
    for d in out/sweeps/recall-seeds/*/ out/sweeps/mqar/*/ out/recall-convert/stage1/ out/recall-convert/stage2/; do
        log=$d/recall.log; [ -f "$log" ] || log=${d%/}-recall.log
        tl=$d/train.log; [ -f "$tl" ] || tl=${d%/}.log
        [ -f "$log" ] && [ -f "$tl" ] || continue
        acc=$(sed -n 's/^recall_accuracy=//p' "$log")
        loss=$(sed -n 's/^val_loss=\([^ ]*\).*/\1/p' "$tl")
        [ -n "$acc" ] && [ -n "$loss" ] || continue
        task=pairs; case $d in *mqar*) task=mqar ;; esac
        echo "$(echo "$d" | sed 's#^out/##; s#/$##'),$task,$loss,$acc"
    done
} > $here/recall.csv
echo "wrote $(ls $here/*.csv | tr '\n' ' ')"
