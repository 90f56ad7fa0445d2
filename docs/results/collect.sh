#!/bin/sh
# docs/results/collect.sh — copy the sweeps' result tables into docs/results/
# (small text, committed so a reader can re-plot) and gather the recall
# accuracies, which ./recall eval prints and the sweep tables do not hold.
#   docs/results/collect.sh        (from the repository root, after the sweeps)
set -eu
here=docs/results
# Runs finished on an earlier machine are not in out/ here, so a sweep's
# table is copied only when every run done in the committed one is done in
# it too; otherwise the committed table stays (recall.csv below keeps such
# runs' rows, and recall-summary.csv their losses too).
done_runs() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "status") c = i; next } $c == "done" { print $1 }' "$1" | sort; }
had=$(mktemp) has=$(mktemp)
trap 'rm -f "$had" "$has"' EXIT
for s in small-seeds scale-2x convert-stage1 convert-stage2 convert-new-stage1 convert-new-stage2 recall-seeds recall-performer-redraw mqar-allpos mqar; do
    [ -f out/sweeps/$s/results.csv ] || continue
    if [ -f $here/$s.csv ]; then
        done_runs $here/$s.csv > "$had"; done_runs out/sweeps/$s/results.csv > "$has"
        if [ -n "$(comm -23 "$had" "$has")" ]; then
            echo "$s: out/sweeps/$s lacks runs done in $here/$s.csv (an earlier machine's); kept that table" >&2
            continue
        fi
    fi
    cp out/sweeps/$s/results.csv $here/$s.csv
    [ -f out/sweeps/$s/summary.csv ] && cp out/sweeps/$s/summary.csv $here/$s-summary.csv
done
# run,task,val_loss,recall_accuracy for every finished recall and MQAR run
# (./recall eval DIR/model.ckpt > DIR/recall.log) and the recall conversion,
# merged with the committed rows: a run measured here replaces its row, the
# rows of runs not on this machine stay; sorted by run.
measured_rows() {
    for d in out/sweeps/recall-seeds/*/ out/sweeps/recall-performer-redraw/*/ out/sweeps/mqar-allpos/*/ out/sweeps/mqar/*/ out/recall-convert/*/; do
        log=$d/recall.log; [ -f "$log" ] || log=${d%/}-recall.log
        tl=$d/train.log; [ -f "$tl" ] || tl=${d%/}.log
        [ -f "$log" ] && [ -f "$tl" ] || continue
        acc=$(sed -n 's/^recall_accuracy=//p' "$log")
        loss=$(sed -n 's/^val_loss=\([^ ]*\).*/\1/p' "$tl")
        [ -n "$acc" ] && [ -n "$loss" ] || continue
        task=pairs; case $d in *mqar*) task=mqar ;; esac
        echo "$(echo "$d" | sed 's#^out/##; s#/$##'),$task,$loss,$acc"
    done
}
{
    echo "run,task,val_loss,recall_accuracy"
    { measured_rows; [ ! -f $here/recall.csv ] || sed 1d $here/recall.csv; } |
        awk -F, '!seen[$1]++' | LC_ALL=C sort -t, -k1,1
} > $here/recall.csv.tmp
mv $here/recall.csv.tmp $here/recall.csv

# Gap fraction (1+ELU − X) / (1+ELU − softmax) of every language-model
# variant, per seed (paired: the same seed's softmax and 1+ELU) and mean ±
# sample std, on each whole-set loss: small-seeds into gap-fraction.csv,
# the twice-as-wide scale point into gap-fraction-scale-2x.csv.
gap_fraction() {
awk -F, '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
$col["status"] == "done" {
    v = $col["variant"]; s = $col["seed"]
    if (!(v in seen)) { seen[v] = 1; order[++nv] = v }
    if (s + 0 > max_seed) max_seed = s + 0
    for (k = 1; k <= 2; k++) loss[v, s, k] = $col[k == 1 ? "brown_loss" : "wt103_loss"]
}
END {
    split("brown wt103", set, " ")
    print "variant,set,n,per_seed,mean,std"
    for (i = 1; i <= nv; i++) {
        v = order[i]
        if (v == "attention-softmax" || v == "attention-elu") continue
        for (k = 1; k <= 2; k++) {
            n = 0; sum = 0; sq = 0; list = ""
            for (s = 1; s <= max_seed; s++) {
                if (loss[v, s, k] == "" || loss["attention-elu", s, k] == "" || loss["attention-softmax", s, k] == "") continue
                e = loss["attention-elu", s, k]
                f = (e - loss[v, s, k]) / (e - loss["attention-softmax", s, k])
                n++; sum += f; sq += f * f; list = list sprintf("%s%s=%.3f", list == "" ? "" : " ", s, f)
            }
            if (n == 0) continue
            m = sum / n; sd = n > 1 ? sqrt((sq - n * m * m) / (n - 1)) : 0
            printf "%s,%s,%d,%s,%.3f,%.3f\n", v, set[k], n, list, m, sd
        }
    }
}' "$1"
}
gap_fraction $here/small-seeds.csv > $here/gap-fraction.csv
[ ! -f $here/scale-2x.csv ] || gap_fraction $here/scale-2x.csv > $here/gap-fraction-scale-2x.csv

# Recall accuracy of every row over its seeds: mean ± sample std, min–max;
# and its validation loss, mean ± sample std.
awk -F, '
function sd(n, sum, sq) { return n > 1 ? sqrt((sq - sum * sum / n) / (n - 1)) : 0 }
NR == 1 { next }
{
    row = $1; sub(/_seed-[0-9]+$/, "", row)
    if (!(row in n)) order[++nr] = row
    n[row]++; sum[row] += $4; sq[row] += $4 * $4; lsum[row] += $3; lsq[row] += $3 * $3
    if (!(row in lo) || $4 < lo[row]) lo[row] = $4
    if (!(row in hi) || $4 > hi[row]) hi[row] = $4
}
END {
    print "row,task,n,accuracy_mean,accuracy_std,accuracy_min,accuracy_max,val_loss_mean,val_loss_std"
    for (i = 1; i <= nr; i++) {
        r = order[i]
        printf "%s,%s,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", r, r ~ /mqar/ ? "mqar" : "pairs", n[r],
            sum[r] / n[r], sd(n[r], sum[r], sq[r]), lo[r], hi[r], lsum[r] / n[r], sd(n[r], lsum[r], lsq[r])
    }
}' $here/recall.csv > $here/recall-summary.csv
echo "wrote $(ls $here/*.csv | tr '\n' ' ')"
