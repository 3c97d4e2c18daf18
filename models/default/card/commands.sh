# 2 CPU cores, no GPU. Benchmark: 797 s wall (2026-12-03); the large train split: 899 s
# (2026-12-04). The two networks train side by side, one thread each: 30 epochs of 9,600
# crops in 2,365 s wall (2026-12-04; 2.4.0: 36 epochs of the 4,800 standard train crops).
DATA=data/synth/standard
# generator 2.3.0 (2026-12-04: its dev and test scenes in 615 s beside two trainings; the train split
# is the large train split's first half, the same samples)
liveness synth benchmark --out $DATA --scale standard --seed 0
# 'large' is a superset of 'standard' (same samples at the same indices): its train split
# holds standard's train split and as many new scenes, never a standard dev or test sample
liveness synth benchmark --out data/synth/large-train --scale large --split train --seed 0

for s in 0 1; do
  liveness train --data data/synth/large-train --protocol combined --network flexlive_lite --epochs 30 --seed $s \
    --threads 1 --out runs/default-s$s &
done; wait
# then four fine-tuning stages from each network's own weights, hard species drawn more often
# (silicone masks x3; from the second on also rigid masks and bona fide x1.5): 15 epochs each
# at lr 1e-3 (about 22 min wall per stage side by side), then 12 at 5e-4 and 10 at 3e-4 with
# the corneal glints hidden in 30 % and 50 % of the NIR eyes (about 16 min each; 2026-12-04)
# finetune CONFIG FROM TO SEED: one fine-tuning stage, both networks side by side, each
# from its own weights of the stage FROM (seeds SEED and SEED + 1)
finetune() {
  for s in 0 1; do
    liveness train --config "$1" --init "runs/$2-s$s/checkpoint.pt" --seed $((s + $4)) \
      --out "runs/$3-s$s" &
  done; wait
}
finetune configs/flexlive-lite-finetune1.yaml default default-ft1 10
finetune configs/flexlive-lite-finetune2.yaml default-ft1 default-ft2 20
finetune configs/flexlive-lite-finetune3.yaml default-ft2 default-ft3 50
finetune configs/flexlive-lite-finetune4.yaml default-ft3 default-ft4 70
# (that is 2.6.0) then two stages on generator 2.2.0's training scenes, whose train people
# include 25 CC0 portraits of younger, more varied people: 10 epochs at 3e-4, 6 at 1e-4
# (16 and 10 min wall; the scenes 953 s; 2026-12-04)
liveness synth benchmark --out data/synth/large-train-220 --scale large --split train --seed 0
finetune configs/flexlive-lite-finetune5.yaml default-ft4 default-ft5 80
finetune configs/flexlive-lite-finetune6.yaml default-ft5 default-ft6 90
# (that is 2.7.0) then one stage on generator 2.3.0's training scenes, whose live heads have
# a neck without the grooves and steps below the jaw: 6 epochs at 1e-4 (20 min wall beside
# the benchmark's generation; the scenes 963 s; 2026-12-04)
liveness synth benchmark --out data/synth/large-train-230 --scale large --split train --seed 0
finetune configs/flexlive-lite-finetune7.yaml default-ft6 default-ft7 100
liveness export --checkpoint runs/default-ft7-s0/checkpoint.pt --checkpoint runs/default-ft7-s1/checkpoint.pt \
  --out models/default/flexlive-lite.onnx --data $DATA --protocol combined --version 2.8.0 \
  --training-data "FlexLive synthetic multi-sensor PAD benchmark, generator 2.3.0: real portrait photographs of 481 people (456 public-domain official U.S. Congress portraits; 25 CC0 stock portraits of younger, more varied people, train split only) with fitted 3D face meshes, split by person; trained on the train split of scale 'large' (liveness synth benchmark --scale large --split train --seed 0; a superset of 'standard''s train split, disjoint from its dev and test) for 30 epochs, then seven fine-tuning stages (15, 15, 12, 10, 10, 6, 6 epochs) drawing silicone masks x3 (the second to seventh also rigid masks and bona fide x1.5; the third also hides the corneal glints of 30 % of NIR eyes, the fourth to seventh of 50 %), the first four on generator 2.1.1's scenes, the fifth and sixth (lr 3e-4, then 1e-4) on 2.2.0's, the seventh (lr 1e-4) on 2.3.0's (no groove or step below the jaw); calibrated and tested on generator 2.3.0's 'standard' (--scale standard --seed 0); protocol 'combined' = both sensor profiles (d435 active stereo, sr305 short-range structured light), 9600 training crops (3120 bona fide; print flat/curved/cut-out, replay phone/tablet/monitor, paper/rigid/silicone masks), 112x112 aligned RGB/depth(mm)/IR. SYNTHETIC DATA ONLY: never a real attack."
# the OOD model is fitted on standard's train split (half of the training crops, the same
# distribution); the RGB-expert fusion into the metadata (fitted on a dev set of full frames; ~5 min),
# then every subset with and without the expert (~10 min)
liveness expert calibrate --model models/default/flexlive-lite.onnx --synth-per-cell 40 \
  --networks v2 --out models/default/flexlive-lite.onnx --version 2.8.0
liveness expert eval --synth-per-cell 60 --networks v2 --json runs/card/expert_eval.json
.venv/bin/python benchmarks/real_photos.py --json runs/card/real_photos.json
# the same with the corneal glints left out of the rendered NIR (eyes closed or hidden)
.venv/bin/python benchmarks/real_photos.py --mode rgb+ir --mode rgb+depth+ir --no-glints
# 100 real people unlike the official portraits (CC0; the 'test' half never trained on),
# and prints/replays rendered from them
.venv/bin/python benchmarks/real_photos.py --people benchmarks/real_people --attacks --mode rgb --mode rgb+depth+ir
liveness synth benchmark --out data/synth/alt-std --scale standard --family alt --split test  # 2.3.0, ~5 min
liveness eval --model models/default/flexlive-lite.onnx --data data/synth/alt-std --protocol combined \
  --thresholds model --json runs/card/cross_generator.json
.venv/bin/python benchmarks/pad_baselines.py --data $DATA --protocol combined --json runs/card/baseline.json
.venv/bin/python benchmarks/pad_occlusion.py --model models/default/flexlive-lite.onnx --data $DATA --protocol combined --n 100 --png runs/card/occlusion.png
.venv/bin/python benchmarks/pad_latency.py --model models/default/flexlive-lite.onnx --threads 2 \
  > runs/card/latency.json
liveness eval --model models/default/flexlive-lite.onnx --data $DATA --protocol combined \
  --json runs/card/intra.json

# (the Summary and Limitations sections are hand-written markdown in models/default/card/)
.venv/bin/python benchmarks/pad_model_card.py --model models/default/flexlive-lite.onnx \
  --eval runs/card/intra.json --baseline runs/card/baseline.json --latency runs/card/latency.json \
  --summary models/default/card/summary.md --notes models/default/card/notes.md \
  --commands models/default/card/commands.sh --out models/default/MODEL_CARD.md
