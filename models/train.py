"""Training a flexible-modal network on a crop-folder protocol (``liveness train``).

Loss: BCE on the bona fide logit + ``pixel_weight`` × pixel-wise BCE on the coarse map
(ones on the face region of bona fide samples, zeros for attacks). AdamW, linear warm-up
then cosine decay, seeded and deterministic. The checkpoint carries its configuration, so
``liveness export`` rebuilds the same network and preprocessing from it alone.

A run can be described by a YAML file of :class:`TrainConfig` fields (``configs/*.yaml``,
``liveness train --config``). After every epoch the whole training state (weights,
optimiser, schedule, random generators, history) is written to ``OUT/last.pt``; with
``resume`` a run continues from it and ends with the same weights as an uninterrupted one.

Several processes (``torchrun --nproc_per_node N -m service.cli train ...``, one or more
nodes) train one model with ``DistributedDataParallel``: each rank takes its share of every
epoch (``DistributedSampler``, seeded), gradients are averaged across ranks (gloo on CPU,
NCCL on GPUs), rank 0 alone writes checkpoints, and every rank writes the digest of its
final weights to ``OUT/ddp/rank<r>.json`` (they are identical when training was correct).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.crop import FACE_SCALE, face_ellipse_mask
from models.datasets.crops import Augment, CropCache, ModalityDropout, protocol_path
from models.datasets.torch_dataset import PadDataset, RepeatAwareSampler
from models.from_onnx import FOLDED_KEY, freeze_batchnorm
from models.metrics import eer
from models.nets import create_model
from models.nets.base import FlexModalNet
from models.nets.ensemble import FlexModalEnsemble
from models.spec import MODALITIES, PreprocessSpec, parse_subset

log = logging.getLogger(__name__)


class SetupError(ValueError):
    """A run that cannot start as configured (the message says what to change)."""


@dataclass
class TrainConfig:
    data: str
    protocol: str = "intra"
    #: Further data roots whose ``protocol`` train split joins ``data``'s (the dev split
    #: stays ``data``'s): more renders of the training people, or your captures beside a
    #: public dataset.
    extra_data: list[str] = field(default_factory=list)
    out: str = "runs/flexlive-lite"
    model: str = "flexlive_lite"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    pixel_weight: float = 0.5
    seed: int = 0
    p_drop_rgb: float = 0.2
    p_drop_depth: float = 0.5
    p_drop_ir: float = 0.5
    augment: bool = True
    subset: str | None = None  # train a specialist on one modality subset (no dropout)
    depth_encoding: str = "mm16"
    depth_range_mm: float = 120.0
    num_workers: int = 0
    threads: int = 2
    max_steps: int | None = None  # stop early (smoke tests)
    progress: bool = True
    resume: bool = False  # continue from OUT/last.pt when it exists
    device: str = "auto"  # "auto" (cuda when torch sees a GPU), "cpu", "cuda"
    amp: bool = True  # on a GPU: bf16 autocast (mixed precision); no effect on the CPU
    #: Start from this checkpoint's weights (fine-tuning, e.g. the bundled model's networks
    #: on your own data); its network must be the one ``model``/``model_overrides`` build.
    init: str | None = None
    #: Sampling weight per species (``bona_fide`` for live faces; unnamed species weigh 1):
    #: an epoch draws ``len(train)`` samples with replacement in these proportions.
    species_weight: dict[str, float] = field(default_factory=dict)
    #: Rate at which a training sample's NIR eyes lose their corneal glints (blinks,
    #: glasses), every species alike, so that no glint never reads as an attack.
    hide_glints: float = 0.0
    #: Keep every batch norm in eval mode while training (running statistics fixed, scale
    #: and shift still learnt). Required to fine-tune a network rebuilt from an exported
    #: ONNX file (``liveness checkpoints``), whose statistics are folded into its weights.
    freeze_batchnorm: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.hide_glints, bool) or not 0.0 <= float(self.hide_glints) <= 1.0:
            raise ValueError(f"hide_glints must be a rate in [0, 1], got {self.hide_glints!r}")

    #: Fields that change how a run executes, not what it computes: a resumed run may
    #: differ from the one it continues in these.
    RUNTIME_FIELDS = ("out", "num_workers", "threads", "progress", "resume", "device", "amp")

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """A config from a mapping (a YAML file's); unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; known: {sorted(known)}")
        if "data" not in values:
            raise ValueError(f"{source}: 'data' (the data root) is required")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """The run described by a YAML file; ``overrides`` (e.g. from the command line) win."""
        import yaml

        text = Path(path).read_text()
        values = yaml.safe_load(text) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of TrainConfig fields")
        return cls.from_mapping({**values, **overrides}, source=str(path))


def base_spec(
    net: FlexModalNet | FlexModalEnsemble, depth_range_mm: float = 120.0
) -> PreprocessSpec:
    """The preprocessing contract training feeds the network with (the export writes it,
    with the operating points calibrated then, into the model's spec)."""
    return PreprocessSpec(input_size=net.input_size, depth_range_mm=depth_range_mm)


def face_region(size: int, face_scale: float = FACE_SCALE) -> torch.Tensor:
    """The crop convention's face ellipse (:func:`models.crop.face_ellipse_mask`) as a
    ``size``×``size`` tensor (1 inside): the pixel-map target of a bona fide face."""
    return torch.from_numpy(face_ellipse_mask(size, face_scale))


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def sample_weights(species: list[str], weights: dict[str, float]) -> torch.Tensor:
    """Per-sample drawing weights from per-species ones; a species the data lacks, or a
    weight that is not a positive number, is refused by name."""
    unknown = sorted(set(weights) - set(species))
    if unknown:
        raise SetupError(
            f"species_weight names {unknown}, not in the training data "
            f"(it has {sorted(set(species))})"
        )
    bad = {
        k: v
        for k, v in weights.items()
        if isinstance(v, bool) or not (isinstance(v, int | float) and v > 0)
    }
    if bad:
        raise SetupError(f"species_weight must be positive numbers, got {bad}")
    return torch.tensor([float(weights.get(s, 1.0)) for s in species], dtype=torch.double)


def make_loader(
    ds: PadDataset, cfg: TrainConfig, shuffle: bool, dist: Distributed | None = None
) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(cfg.seed)
    sampler: torch.utils.data.Sampler[int] | None = None
    if shuffle and cfg.species_weight:
        if dist is not None and dist.world > 1:
            raise SetupError("species_weight is not supported with several processes (torchrun)")
        sampler = RepeatAwareSampler(
            sample_weights(ds.crops.species, cfg.species_weight), len(ds), g
        )
    elif shuffle and dist is not None and dist.world > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(
            ds, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed,
            drop_last=True,
        )  # fmt: skip
    # this rank's samples (a Sampler's __len__ is not in its type)
    share = len(sampler) if sampler is not None else len(ds)  # type: ignore[arg-type]
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=cfg.num_workers,
        generator=g,
        drop_last=shuffle and share > cfg.batch_size,
        persistent_workers=cfg.num_workers > 0,
    )


@dataclass(frozen=True)
class Distributed:
    """This process's place in a multi-process run (``torchrun`` sets the environment)."""

    rank: int = 0
    world: int = 1
    #: This process's index on its node (``LOCAL_RANK``): its GPU there.
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> Distributed:
        """Join the process group: NCCL when the ranks train on GPUs (``device`` auto with
        a GPU, or cuda), gloo on CPUs. NCCL needs a GPU of its own per process: more
        processes on a node than GPUs is refused before any group is formed."""
        import os

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as td

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        on_gpu = device != "cpu" and torch.cuda.is_available()
        if on_gpu:
            per_node = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
            gpus = torch.cuda.device_count()
            if per_node > gpus:
                raise SetupError(
                    f"{per_node} training processes on this node but {gpus} GPU(s): each "
                    f"process needs a GPU of its own (NCCL); start --nproc_per_node {gpus}, "
                    "or train on the CPUs with --device cpu (gloo)"
                )
        if not td.is_initialized():
            td.init_process_group("nccl" if on_gpu else "gloo")
        return cls(rank=td.get_rank(), world=td.get_world_size(), local_rank=local_rank)


def weights_digest(net: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer, in state-dict order."""
    import hashlib

    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def loss_fn(
    out: dict[str, torch.Tensor], label: torch.Tensor, pixel_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    cls = F.binary_cross_entropy_with_logits(out["logit"], label)
    pl = out["pixel_logit"]
    target = label.view(-1, 1, 1, 1) * face_region(pl.shape[-1]).to(pl)
    pix = F.binary_cross_entropy_with_logits(pl, target.expand_as(pl))
    return cls + pixel_weight * pix, cls


def resolve_device(name: str, dist: Distributed | None = None) -> torch.device:
    """``auto``: the GPU when torch sees one (this rank's under torchrun), else the CPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise SetupError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SetupError("--device cuda: torch sees no GPU (a CPU build of torch, or no driver)")
    index = dist.local_rank if dist is not None else 0
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _to(b: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    if device.type == "cpu":
        return b
    return {k: v.to(device, non_blocking=True) for k, v in b.items()}


def _init_from(net: FlexModalNet, cfg: TrainConfig) -> None:
    """Load ``cfg.init``'s weights into ``net``; another network is refused by name."""
    path = Path(cfg.init or "")
    if not path.is_file():
        raise SetupError(f"init: no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model" not in ckpt:
        raise SetupError(f"init: {path} is not a checkpoint.pt written by liveness train")
    if ckpt["model"] != net.config():
        raise SetupError(
            f"init: {path} holds {ckpt['model']}, this run builds {net.config()}; "
            "set model/model_overrides to match"
        )
    if ckpt.get(FOLDED_KEY) and not cfg.freeze_batchnorm:
        raise SetupError(
            f"init: {path} was rebuilt from an exported model and its batch norms are folded "
            "into the convolutions; fine-tune it with --freeze-batchnorm (config key "
            "freeze_batchnorm: true)"
        )
    net.load_state_dict(ckpt["state_dict"])
    log.info("starting from the weights of %s", path)


def _dev_crops(cfg: TrainConfig, kw: dict[str, Any]) -> CropCache | None:
    """The dev split, or None when its list is empty (a training-only dataset)."""
    path = protocol_path(cfg.data, cfg.protocol, "dev")
    if path.is_file() and not path.read_text().strip():
        log.warning("%s is empty: no dev EER per epoch", path)
        return None
    return CropCache.from_protocol(cfg.data, cfg.protocol, "dev", **kw)


@torch.no_grad()
def predict(
    net: FlexModalNet, loader: DataLoader, device: torch.device | None = None
) -> np.ndarray:
    device = device or torch.device("cpu")
    net.eval()
    scores = []
    for b in loader:
        b = _to(b, device)
        out = net(b["rgb"], b["depth"], b["ir"], b["present"])["score"]
        scores.append(out.float().cpu().numpy())
    return np.concatenate(scores)


def train(cfg: TrainConfig) -> Path:
    """Train and write ``<out>/checkpoint.pt`` (+ ``config.json``, ``history.json``)."""
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    dist = Distributed.from_env(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device, dist)
    net = create_model(cfg.model, **cfg.model_overrides)  # same seed: same init on every rank
    if cfg.init:
        _init_from(net, cfg)
    net.to(device)
    amp = cfg.amp and device.type == "cuda"
    spec = base_spec(net, cfg.depth_range_mm)
    kw = {"depth_encoding": cfg.depth_encoding, "depth_range_mm": cfg.depth_range_mm}
    train_crops = CropCache.from_protocols([cfg.data, *cfg.extra_data], cfg.protocol, "train", **kw)
    dev_crops = _dev_crops(cfg, kw)
    subset = parse_subset(cfg.subset) if cfg.subset else None
    dropout = (
        None
        if subset is not None
        else ModalityDropout(cfg.p_drop_rgb, cfg.p_drop_depth, cfg.p_drop_ir)
    )
    train_ds = PadDataset(
        train_crops,
        spec,
        Augment(hide_glints=cfg.hide_glints) if cfg.augment else None,
        dropout,
        subset,
        cfg.seed,
    )
    train_loader = make_loader(train_ds, cfg, shuffle=True, dist=dist)
    model: torch.nn.Module = net
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    dev_ds = None if dev_crops is None else PadDataset(dev_crops, spec, subset=subset or MODALITIES)
    dev_loader = None if dev_ds is None else make_loader(dev_ds, cfg, shuffle=False)

    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise SetupError(
            f"{len(train_ds)} training samples over {dist.world} process(es) give no batch; "
            "lower --batch-size or add data"
        )
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    log.info(
        "training %s (%d params) on %d samples, %d dev, %d steps",
        cfg.model,
        sum(p.numel() for p in net.parameters()),
        len(train_ds),
        0 if dev_ds is None else len(dev_ds),
        total,
    )
    history: list[dict[str, float | None]] = []
    step, t0, first_epoch = 0, time.perf_counter(), 0
    state_path = out / "last.pt"
    if cfg.resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        _check_resumable(state["config"], cfg, state_path)
        net.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        train_loader.generator.set_state(state["loader_rng"])  # type: ignore[union-attr]
        first_epoch, step, history = state["epoch"], state["step"], state["history"]
        log.info("resuming %s after epoch %d (step %d)", state_path, first_epoch, step)
    for epoch in range(first_epoch, cfg.epochs):
        if step >= total:
            break
        train_ds.set_epoch(epoch)
        sampler = train_loader.sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        model.train()
        if cfg.freeze_batchnorm:
            freeze_batchnorm(model)
        losses = []
        # The bar counts the steps this epoch will really take (the last epoch may stop
        # early at --max-steps) and is closed before the epoch's log line.
        bar = tqdm(
            total=min(steps_per_epoch, total - step),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="step",
            disable=not cfg.progress or not dist.main,
        )
        for b in train_loader:
            b = _to(b, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                o = model(b["rgb"], b["depth"], b["ir"], b["present"])
                loss, cls = loss_fn(o, b["label"], cfg.pixel_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            bar.update(1)
            step += 1
            if step >= total:
                break
        bar.close()
        # A training-only dataset (``synth benchmark --split train``) has no dev split:
        # the history then records no dev EER; export calibrates on another dataset's dev.
        dev_eer: float | None = None
        if dev_loader is not None and dev_crops is not None and len(set(dev_crops.labels)) > 1:
            dev_eer = float(eer(predict(net, dev_loader, device), dev_crops.labels)[0])
        history.append(
            {"epoch": epoch + 1, "loss": float(np.mean(losses)), "dev_eer": dev_eer, "steps": step}
        )
        log.info(
            "epoch %d: loss %.4f, dev EER (%s) %s",
            epoch + 1,
            history[-1]["loss"],
            "+".join(subset or MODALITIES),
            "n/a (no dev split)" if dev_eer is None else f"{dev_eer:.4f}",
        )
        if not dist.main:
            continue
        # Everything a resumed run needs to continue exactly here (written atomically).
        state = {
            "config": asdict(cfg),
            "state_dict": net.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "loader_rng": train_loader.generator.get_state(),  # type: ignore[union-attr]
            "epoch": epoch + 1,
            "step": step,
            "history": history,
        }
        torch.save(state, state_path.with_suffix(".tmp"))
        state_path.with_suffix(".tmp").replace(state_path)
    seconds = time.perf_counter() - t0
    if dist.world > 1:
        import torch.distributed as td

        # DDP keeps parameters equal; batch-norm running statistics are broadcast from rank
        # 0 at each forward, and each rank's last forward updated its own: take rank 0's.
        for buf in net.buffers():
            td.broadcast(buf, src=0)
        ddp_dir = out / "ddp"
        ddp_dir.mkdir(exist_ok=True)
        digest = {"rank": dist.rank, "world": dist.world, "weights_sha256": weights_digest(net)}
        (ddp_dir / f"rank{dist.rank}.json").write_text(json.dumps(digest))
        td.barrier()
        if not dist.main:
            td.destroy_process_group()
            return out / "checkpoint.pt"
    ckpt = {
        "config": asdict(cfg),
        "model": net.config(),
        # CPU tensors: a network trained on a GPU loads anywhere (export runs on CPUs).
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "depth_range_mm": cfg.depth_range_mm,
        "history": history,
        "train_seconds": seconds,
        "train_samples": len(train_ds),
        "torch_version": torch.__version__,
    }
    path = out / "checkpoint.pt"
    torch.save(ckpt, path)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    (out / "history.json").write_text(json.dumps(history, indent=2))
    log.info("trained in %.0f s → %s", seconds, path)
    if dist.world > 1:
        import torch.distributed as td

        td.destroy_process_group()
    return path


class ResumeError(SetupError):
    """``OUT/last.pt`` belongs to another run."""


def _check_resumable(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    """A run resumes only the run it continues: same config except runtime fields. A field
    added since ``saved`` was written counts as its default there."""
    now = asdict(cfg)
    defaults = asdict(TrainConfig(data=cfg.data))
    differ = sorted(
        k
        for k in now
        if k not in TrainConfig.RUNTIME_FIELDS and saved.get(k, defaults[k]) != now[k]
    )
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in differ)
        raise ResumeError(f"{path} was written by another run ({detail}); drop --resume or --out")


def load_checkpoint(path: str | Path) -> tuple[FlexModalNet, dict[str, Any]]:
    """Rebuild the trained network (in eval mode) and return it with the checkpoint dict."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    net = create_model(ckpt["model"]["name"], **ckpt["model"]["overrides"])
    net.load_state_dict(ckpt["state_dict"])
    net.eval()
    return net, ckpt
