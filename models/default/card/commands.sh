# 2 CPU cores, no GPU. The two networks train side by side, one thread each: 25.0 min wall,
# weights bit-identical to the bundled model's (checked by rerunning these commands).
DATA=data/synth/standard
liveness synth benchmark --out $DATA --scale standard --seed 0      # generator 1.3.0, 13.9 min

# the bundled model: two flexlive_lite networks (widths 24/48/96), seeds 0 and 1, both
# sensor profiles (protocol "combined"), exported as one ensemble graph (mean logit)
for s in 0 1; do
  liveness train --data $DATA --protocol combined --model flexlive_lite --epochs 24 --seed $s \
    --threads 1 --out runs/default-s$s &
done; wait
liveness export --checkpoint runs/default-s0/checkpoint.pt --checkpoint runs/default-s1/checkpoint.pt \
  --out models/default/flexlive-lite.onnx --data $DATA --protocol combined --version 1.2.0 \
  --training-data "FlexLive synthetic multi-sensor PAD benchmark (liveness synth benchmark --scale standard --seed 0, generator 1.3.0, models/synth at commit e422b23): protocol 'combined' = both sensor profiles (d435 active stereo, sr305 short-range structured light), 4800 training crops (1560 bona fide; print flat/curved/cut-out, replay phone/tablet/monitor, paper/rigid/silicone masks), 112x112 aligned RGB/depth(mm)/IR. SYNTHETIC DATA ONLY."
for p in combined intra intra_sr305; do
  liveness eval --model models/default/flexlive-lite.onnx --data $DATA --protocol $p \
    --json runs/card/$p.json
done
python benchmarks/pad_latency.py --model models/default/flexlive-lite.onnx --threads 2 \
  > runs/card/latency.json
python benchmarks/pad_baselines.py --data $DATA --protocol combined --json runs/card/baseline.json

# cross-profile and unified vs specialists: one flexlive_lite network (same width, 12 epochs),
# trained on the d435 profile only (protocol "intra" = cross_profile's train/dev)
liveness train --data $DATA --protocol intra --model flexlive_lite --epochs 12 --seed 0 \
  --threads 1 --out runs/intra-13
liveness export --checkpoint runs/intra-13/checkpoint.pt --out runs/intra-13/model.onnx --data $DATA \
  --protocol intra --name flexlive-lite-d435
liveness eval --model runs/intra-13/model.onnx --data $DATA --protocol cross_profile \
  --json runs/card/cross_profile.json
python benchmarks/pad_specialists.py --data $DATA --protocol intra --model flexlive_lite \
  --unified runs/intra-13/model.onnx --epochs 12 --threads 1 --out runs/specialists-13 \
  --json runs/card/specialists.json
# unseen attacks: the narrower flexlive_lite_small, 8 epochs, one model per held-out species
python benchmarks/pad_unseen.py --data $DATA --model flexlive_lite_small --epochs 8 --threads 1 \
  --out runs/unseen-13 --json runs/card/unseen.json

# (the Summary and Limitations sections are hand-written markdown in models/default/card/)
python benchmarks/pad_model_card.py --model models/default/flexlive-lite.onnx \
  --eval runs/card/combined.json --eval runs/card/intra.json --eval runs/card/intra_sr305.json \
  --eval runs/card/cross_profile.json --baseline runs/card/baseline.json \
  --specialists runs/card/specialists.json --unseen runs/card/unseen.json \
  --latency runs/card/latency.json --summary models/default/card/summary.md --notes models/default/card/notes.md \
  --commands models/default/card/commands.sh --out models/default/MODEL_CARD.md
