# 2 CPU cores, no GPU. Benchmark: 797 s wall (2026-12-03). The two networks train side by
# side, one thread each: 36 epochs in 1,570 s wall (2026-12-04; the 2.3.0 network had 24).
DATA=data/synth/standard
liveness synth benchmark --out $DATA --scale standard --seed 0      # generator 2.1.1

for s in 0 1; do
  liveness train --data $DATA --protocol combined --network flexlive_lite --epochs 36 --seed $s \
    --threads 1 --out runs/default-s$s &
done; wait
liveness export --checkpoint runs/default-s0/checkpoint.pt --checkpoint runs/default-s1/checkpoint.pt \
  --out models/default/flexlive-lite.onnx --data $DATA --protocol combined --version 2.4.0 \
  --training-data "FlexLive synthetic multi-sensor PAD benchmark, generator 2.1.1 (liveness synth benchmark --scale standard --seed 0): real public-domain portrait photographs of 456 people (official U.S. Congress portraits) with fitted 3D face meshes, split by person; protocol 'combined' = both sensor profiles (d435 active stereo, sr305 short-range structured light), 4800 training crops (1560 bona fide; print flat/curved/cut-out, replay phone/tablet/monitor, paper/rigid/silicone masks), 112x112 aligned RGB/depth(mm)/IR. SYNTHETIC DATA ONLY: never a real attack."
# the RGB-expert fusion into the metadata (fitted on a dev set of full frames; ~5 min),
# then every subset with and without the expert (~10 min)
liveness expert calibrate --model models/default/flexlive-lite.onnx --synth-per-cell 40 \
  --networks v2 --out models/default/flexlive-lite.onnx --version 2.4.0
liveness expert eval --synth-per-cell 60 --networks v2 --json runs/card/expert_eval.json
.venv/bin/python benchmarks/real_photos.py --json runs/card/real_photos.json
liveness synth benchmark --out data/synth/alt-std --scale standard --family alt --split test  # 2.1.1, ~5 min
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
