"""The synthetic benchmark generator: determinism, geometry, registration, protocols."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.crop import crop_modalities
from models.datasets.protocol import read_protocol
from synth import PROFILES, SPECIES, Scene, render_scene, render_sequence
from synth.geometry import Pose
from synth.scene import render_params, sample_params

EXPECTED_SPECIES = (
    "print_flat",
    "print_curved",
    "print_cutout",
    "replay_phone",
    "replay_tablet",
    "replay_monitor",
    "mask_paper",
    "mask_rigid",
    "mask_silicone",
)


def frontal(species: str, seed: int = 3, profile: str = "d435", tz: float = 600.0) -> Scene:
    """A clean frontal capture: the geometry tests must not depend on a lucky pose."""
    p = sample_params(species, profile, seed)
    p = replace(
        p,
        pose=Pose(0.0, 0.0, 0.0, 0.0, 0.0, tz),
        nuisance=replace(p.nuisance, depth_quality=1.0, motion_blur_px=0.0),
    )
    return render_params(p)


def face_relief_mm(scene: Scene) -> float:
    """Depth range (p95 − p5, mm) of valid pixels in the inner face region."""
    lm = scene.landmarks
    ied = float(np.linalg.norm(lm[1] - lm[0]))
    cx = lm[:, 0].mean()
    x0, x1 = int(cx - 0.9 * ied), int(cx + 0.9 * ied)
    y0, y1 = int(lm[0, 1] - 0.5 * ied), int(lm[3, 1] + 0.3 * ied)
    d = scene.depth[y0:y1, x0:x1].astype(np.float64)
    v = d[d > 0]
    assert v.size > 50, "face region has no depth"
    return float(np.percentile(v, 95) - np.percentile(v, 5))


def test_public_names() -> None:
    assert SPECIES == EXPECTED_SPECIES
    assert {"sr305", "d435"} <= set(PROFILES)


@pytest.mark.parametrize("species", ("bona_fide", *EXPECTED_SPECIES))
def test_scene_contract(species: str) -> None:
    profile = PROFILES[len(species) % len(PROFILES)]
    s = render_scene(species, profile, seed=11)
    h, w = s.rgb.shape[:2]
    assert s.rgb.dtype == np.uint8 and s.rgb.shape == (h, w, 3)
    assert s.depth.dtype == np.uint16 and s.depth.shape == (h, w)
    assert s.ir.dtype == np.uint8 and s.ir.shape == (h, w)
    assert s.depth_scale == 0.001
    assert s.label == int(species == "bona_fide") and s.species == species
    assert s.profile == profile
    assert s.landmarks.shape == (5, 2) and s.box.shape == (4,)
    x1, y1, x2, y2 = s.box
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    # Landmarks lie inside the box, image-left eye left of image-right eye.
    assert np.all((s.landmarks[:, 0] > x1) & (s.landmarks[:, 0] < x2))
    assert np.all((s.landmarks[:, 1] > y1) & (s.landmarks[:, 1] < y2))
    assert s.landmarks[0, 0] < s.landmarks[1, 0] and s.landmarks[3, 0] < s.landmarks[4, 0]
    assert s.rgb.std() > 10 and s.ir.std() > 2


def test_same_seed_same_bytes() -> None:
    a = render_scene("replay_phone", "d435", seed=5)
    b = render_scene("replay_phone", "d435", seed=5)
    c = render_scene("replay_phone", "d435", seed=6)
    for m in ("rgb", "depth", "ir"):
        assert getattr(a, m).tobytes() == getattr(b, m).tobytes()
    assert np.array_equal(a.landmarks, b.landmarks)
    assert a.rgb.tobytes() != c.rgb.tobytes()


def test_depth_relief_orders_species() -> None:
    live = face_relief_mm(frontal("bona_fide"))
    flat = face_relief_mm(frontal("print_flat"))
    curved = face_relief_mm(frontal("print_curved", seed=4))
    rigid = face_relief_mm(frontal("mask_rigid"))
    # A fitted face mesh: nose tip to cheeks within ±0.9 IED of the centre (a real face
    # has 30-50 mm there).
    assert live > 30, live
    assert flat < 15, flat
    assert live > 3 * flat
    assert flat < curved < live, (flat, curved, live)
    # A rigid mask has a face's relief: depth alone cannot tell it from a face.
    assert rigid > 0.6 * live, (rigid, live)


def test_nose_is_nearest_point_near_nose_landmark() -> None:
    s = frontal("bona_fide", seed=8)
    lm = s.landmarks
    ied = float(np.linalg.norm(lm[1] - lm[0]))
    r = int(0.6 * ied)
    nx, ny = np.round(lm[2]).astype(int)
    win = s.depth[ny - r : ny + r + 1, nx - r : nx + r + 1].astype(np.float32)
    win = cv2.medianBlur(np.where(win == 0, 65535, win).astype(np.float32), 5)
    iy, ix = np.unravel_index(np.argmin(win), win.shape)
    assert np.hypot(ix - r, iy - r) < 0.25 * ied


@pytest.mark.parametrize("species", ["bona_fide", "print_curved", "replay_monitor", "mask_rigid"])
def test_wall_never_hides_a_far_subject(species: str) -> None:
    # Generator 1.2 drew the wall at 1.1-4 m whatever the subject's distance, so a subject
    # far from the camera could vanish behind it and leave a crop of bare wall (labelled
    # bona fide or attack). 4.5 m is beyond any wall 1.2 drew.
    s = frontal(species, seed=5, tz=4500.0)
    if species != "replay_monitor":  # a monitor is placed farther, beyond the depth range
        nose = np.round(s.landmarks[2]).astype(int)
        z = s.depth[nose[1] - 2 : nose[1] + 3, nose[0] - 2 : nose[0] + 3]
        z = z[z > 0]
        assert z.size and abs(float(np.median(z)) - s.info["distance_mm"]) < 250, (
            np.median(z) if z.size else None,
            s.info["distance_mm"],
        )
    # Eyes and mouth may show the holder through cut-out holes or a mask's eye holes;
    # the nose and at least three of five landmarks are always on the presented face.
    assert s.info["face_visible"] >= 0.6
    if species in ("bona_fide", "print_curved", "replay_monitor"):
        assert s.info["face_visible"] == 1.0


def test_cutout_holes_sit_on_the_eye_landmarks() -> None:
    s = frontal("print_cutout", seed=2)
    d = cv2.medianBlur(s.depth, 3).astype(np.float32)

    def at(p: np.ndarray) -> float:
        x, y = np.round(p).astype(int)
        v = d[y - 1 : y + 2, x - 1 : x + 2]
        v = v[v > 0]
        assert v.size, "no depth at landmark"
        return float(np.median(v))

    paper = at(s.landmarks[2])
    for eye in s.landmarks[:2]:
        assert at(eye) > paper + 8.0  # the eye behind the hole is farther than the sheet


def test_rgb_and_ir_are_registered() -> None:
    """A print shows the same image in RGB and (through carbon ink) in IR: zero shift."""
    s = frontal("print_flat", seed=1)
    rgb, _, ir, _ = crop_modalities(s.landmarks, 112, s.rgb, None, s.ir)
    assert rgb is not None and ir is not None
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    irf = ir.astype(np.float32)
    win = cv2.createHanningWindow((112, 112), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(lum, irf, win)
    assert abs(dx) < 1.0 and abs(dy) < 1.0, (dx, dy)


def test_sequence_moves_smoothly() -> None:
    frames = render_sequence("bona_fide", "sr305", n_frames=3, seed=4, fps=30)
    assert len(frames) == 3
    pairs = zip(frames, frames[1:], strict=False)
    steps = [np.abs(b.landmarks - a.landmarks).max() for a, b in pairs]
    assert all(0.0 < st < 15.0 for st in steps), steps
    assert frames[0].rgb.tobytes() != frames[1].rgb.tobytes()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synth import generate_benchmark

    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate_benchmark(out, scale="tiny", seed=0, progress=False, workers=1)
    return out


def test_tiny_benchmark_end_to_end(tiny: Path) -> None:
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["scale"] == "tiny" and manifest["seed"] == 0
    names = set(manifest["protocols"])
    assert {
        "intra",
        "cross_profile",
        "unseen_mask_rigid",
        "unseen_replay_monitor",
        "unseen_print_flat",
    } <= names
    seen_species: set[str] = set()
    for name in names:
        for split in ("train", "dev", "test"):
            entries = read_protocol(tiny / "protocols" / name / f"{split}.txt")
            assert len(entries) == manifest["protocols"][name][split]["total"]
            for e in entries:
                for rel in (e.rgb, e.depth, e.ir):
                    assert (tiny / rel).is_file(), rel
                seen_species.add(e.species)
                assert (e.label == 1) == (e.species == "bona_fide")
    assert seen_species == {"bona_fide", *EXPECTED_SPECIES}
    e = read_protocol(tiny / "protocols" / "intra" / "train.txt")[0]
    rgb = cv2.imread(str(tiny / e.rgb), cv2.IMREAD_UNCHANGED)
    depth = cv2.imread(str(tiny / e.depth), cv2.IMREAD_UNCHANGED)
    ir = cv2.imread(str(tiny / e.ir), cv2.IMREAD_UNCHANGED)
    assert rgb.shape == (112, 112, 3) and rgb.dtype == np.uint8
    assert depth.shape == (112, 112) and depth.dtype == np.uint16 and depth.max() > 200
    assert ir.shape == (112, 112) and ir.dtype == np.uint8


def test_protocol_semantics(tiny: Path) -> None:
    def species(name: str, split: str) -> set[str]:
        return {e.species for e in read_protocol(tiny / "protocols" / name / f"{split}.txt")}

    for held in ("mask_rigid", "replay_monitor", "print_flat"):
        assert held not in species(f"unseen_{held}", "train") | species(f"unseen_{held}", "dev")
        assert species(f"unseen_{held}", "test") == {"bona_fide", held}

    def profiles(name: str, split: str) -> set[str]:
        return {
            Path(e.rgb).stem.split("_")[0]
            for e in read_protocol(tiny / "protocols" / name / f"{split}.txt")
        }

    assert profiles("cross_profile", "train") == profiles("cross_profile", "dev") == {"d435"}
    assert profiles("cross_profile", "test") == {"sr305"}
    assert profiles("intra", "test") == {"d435"}
    train = {e.rgb for e in read_protocol(tiny / "protocols" / "intra" / "train.txt")}
    test = {e.rgb for e in read_protocol(tiny / "protocols" / "intra" / "test.txt")}
    assert not train & test


def test_tiny_dev_and_test_splits_hold_bona_fide_and_attacks(tiny: Path) -> None:
    """Every protocol of the smallest scale can be calibrated (dev EER) and evaluated."""
    for name in json.loads((tiny / "manifest.json").read_text())["protocols"]:
        for split in ("train", "dev", "test"):
            labels = [e.label for e in read_protocol(tiny / "protocols" / name / f"{split}.txt")]
            assert 1 in labels and 0 in labels, (name, split, labels)


def test_eval_and_export_run_on_tiny(tiny: Path, tmp_path: Path) -> None:
    """The first thing a user tries on the smallest scale: `liveness eval` with the bundled
    model, and `liveness train` (one step) then `liveness export` (dev-calibrated)."""
    from click.testing import CliRunner

    from models import DEFAULT_MODEL_PATH
    from models.spec import ModelSpec
    from service.cli import main

    runner = CliRunner()
    args = ["--data", str(tiny), "--protocol", "intra"]
    res = runner.invoke(main, ["eval", "--model", str(DEFAULT_MODEL_PATH), *args])
    assert res.exit_code == 0, res.output
    assert "rgb+depth+ir" in res.output
    run = tmp_path / "run"
    res = runner.invoke(
        main, ["train", *args, "--out", str(run), "--epochs", "1", "--max-steps", "1"]
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "tiny.onnx"
    ckpt = str(run / "checkpoint.pt")
    res = runner.invoke(main, ["export", "--checkpoint", ckpt, *args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    spec = ModelSpec.from_metadata(meta)
    assert set(spec.operating_points) >= {"eer", "apcer1"}


def test_benchmark_bytes_reproduce(tiny: Path, tmp_path: Path) -> None:
    from synth.benchmark import plan, render_sample

    spec = plan("tiny", 0)[7]
    for m in ("rgb", "depth", "ir"):
        (tmp_path / "crops" / m).mkdir(parents=True)
    render_sample(spec, tmp_path)
    for m in ("rgb", "depth", "ir"):
        rel = Path("crops") / m / f"{spec.id}.png"
        assert (tmp_path / rel).read_bytes() == (tiny / rel).read_bytes()


def test_scenes_command_writes_ground_truth(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from synth.command import synth

    res = CliRunner().invoke(
        synth, ["scenes", "--out", str(tmp_path), "--n", "2", "--profile", "sr305"]
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "scenes.json").read_text())
    assert [s["species"] for s in meta["scenes"]][0] == "bona_fide"
    rec = meta["scenes"][1]
    depth = cv2.imread(str(tmp_path / rec["depth"]), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (360, 480)
    assert len(rec["landmarks"]) == 5 and len(rec["box"]) == 4


def test_project_face_detector_finds_the_faces() -> None:
    """The face stage's MTCNN finds rendered faces near the ground-truth landmarks."""
    from service.face.config import FaceStageConfig
    from service.face.detectors import mtcnn

    det = mtcnn.MTCNNDetector(FaceStageConfig())
    found = 0
    cases = ("bona_fide", "print_flat", "replay_tablet", "mask_silicone", "bona_fide", "mask_paper")
    for i, species in enumerate(cases):
        s = render_scene(species, PROFILES[i % 2], seed=500 + i)
        ied = float(np.linalg.norm(s.landmarks[1] - s.landmarks[0]))
        errs = [
            np.linalg.norm(d.landmarks - s.landmarks, axis=1).mean() / ied
            for d in det.detect(s.rgb)
        ]
        found += bool(errs) and min(errs) < 0.25
    assert found >= len(cases) - 1


def test_global_statistics_baseline_runs(tiny: Path) -> None:
    from synth.sanity import evaluate

    res = evaluate(tiny, "combined", subsets=(("rgb",), ("rgb", "depth", "ir")))
    assert set(res) == {"rgb", "rgb+depth+ir"}
    for r in res.values():
        assert 0.0 <= r["acer"] <= 1.0 and 0.0 <= r["worst_species_apcer"] <= 1.0


def test_preview_contact_sheet(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from synth.command import synth

    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(synth, ["preview", "--out", str(out), "--per-species", "1"])
    assert res.exit_code == 0, res.output
    sheet = cv2.imread(str(out))
    assert sheet.shape[0] == 10 * 112  # one row per species incl. bona fide


def test_identities_are_split_by_person(tiny: Path) -> None:
    """No person's photograph serves two splits, and held-out people serve none."""
    from synth.faces import identities, manifest

    rows = manifest()
    holdout = {r["id"] for r in rows if r["split"] == "holdout"}
    assert len(identities()) >= 300 and len(holdout) >= 10
    split_of = {r["id"]: r["split"] for r in rows}
    for split in ("train", "dev", "test"):
        assert {split_of[i] for i in identities(split)} == {split}
    assert not holdout & set(identities())
    # Every photograph names its source and licence.
    assert all(
        r["source"]
        and r["source_path"]
        and ("public domain" in r["licence"] or "CC0" in r["licence"])
        for r in rows
    )
    # The benchmark draws each split's victims (and attackers) from that split's people.
    seen: dict[str, set[str]] = {"train": set(), "dev": set(), "test": set()}
    for line in (tiny / "samples.jsonl").read_text().splitlines():
        rec = json.loads(line)
        seen[rec["split"]] |= {rec["victim"], rec["attacker"]}
    for split, people in seen.items():
        assert people and {split_of[p] for p in people} == {split}, split


def test_the_independent_real_people_never_reach_the_generator() -> None:
    """People of ``benchmarks/real_people`` added to the library are train identities only,
    none of its test people is among them, and backdrops stay the portraits' own (so adding
    people changes no dev or test scene)."""
    import csv

    from synth.faces import backdrop_identities, identities, manifest

    root = Path(__file__).resolve().parents[2] / "benchmarks" / "real_people"
    people = {r["id"]: r["split"] for r in csv.DictReader((root / "people.csv").open())}
    added = [r for r in manifest() if r["source"].startswith("cjdowner/interfaces")]
    assert added and all(r["split"] == "train" for r in added)
    for r in added:
        assert r["id"].startswith("if") and people[r["id"][2:]] == "library", r["id"]
    assert {p for p, s in people.items() if s == "test"}.isdisjoint(r["id"][2:] for r in added)
    backdrops = set(backdrop_identities())
    assert backdrops and not backdrops & {r["id"] for r in added}
    assert backdrops <= set(identities())


def test_live_face_is_the_unwarped_photograph() -> None:
    """A face is varied by the camera and the 3D pose, never by warping the photograph."""
    from synth.appearance import make_look
    from synth.faces import identities, load_face

    face = load_face(identities("train")[0])
    for seed in range(6):
        look = make_look(face, np.random.default_rng(seed))
        rgb = np.round(look.rgb * 255).astype(np.uint8)
        assert np.array_equal(rgb, face.rgb) or np.array_equal(rgb, face.rgb[:, ::-1])
        # Mirroring moves the landmarks with the texture: image-left eye stays left.
        assert look.landmarks[0, 0] < look.landmarks[1, 0]


def test_real_photo_nir_shows_the_corneal_glints_of_a_live_face() -> None:
    """The NIR rendered for a real photograph is a live face as the generator draws one
    (skin and the emitter's glints on both corneas), so a network that learned the glints
    is not handed a live person without them (a glint-less live render once read as a
    silicone mask)."""
    from synth.realcheck import holdout_photos, live_depth_ir

    for photo in holdout_photos()[:4]:
        _, ir = live_depth_ir(photo)
        lm = photo.landmarks
        ied = float(np.linalg.norm(lm[1] - lm[0]))
        yy, xx = np.mgrid[0 : ir.shape[0], 0 : ir.shape[1]]
        for ex, ey in lm[:2]:
            r = np.hypot(xx - ex, yy - ey)
            # The glint's brightest pixels against the skin around the eye (without
            # glints: 5-28 grey levels above it; with them: 45-87).
            spot = float(np.percentile(ir[r <= 0.1 * ied], 90))
            ring = float(np.median(ir[(r > 0.15 * ied) & (r < 0.3 * ied)]))
            assert spot > ring + 36, (photo.name, spot, ring)


def test_live_head_has_no_groove_or_step_below_the_jaw() -> None:
    """Below the jaw the head comes down to the neck and shoulders without a groove along
    the neck's sides or a step across the frame at chin height: both shade as thin dark
    lines in NIR and colour that no real neck shows, a live cue of the renders alone
    (generator 2.2.0 had them: grooves 2.6-3.9 mm deep, slopes up to 4.6-6.9 mm per mm;
    2.3.0: none, at most 1.8-3.0)."""
    from synth.faces import IED_MM, mesh_triangles
    from synth.realcheck import holdout_photos
    from synth.relief import CHIN, head_relief

    for photo in holdout_photos()[:8]:
        lm = photo.landmarks
        ied = float(np.linalg.norm(lm[1] - lm[0]))
        mm_per_px = IED_MM / ied
        height, alpha, face = head_relief(
            photo.rgb.shape[:2], photo.mesh, mesh_triangles(), photo.person, mm_per_px
        )
        # Away from the silhouette (a dome falls off steeply there) and from the face.
        keep = cv2.erode(
            (alpha > 0.5).astype(np.uint8), np.ones((3, 3)), iterations=int(0.15 * ied)
        )
        near_face = cv2.dilate(face.astype(np.uint8), np.ones((3, 3)), iterations=int(0.1 * ied))
        rows = np.arange(height.shape[0])[:, None] > photo.mesh[CHIN, 1] - 0.5 * ied
        region = (keep > 0) & (near_face == 0) & rows
        assert region.sum() > 1000, photo.name
        gy, gx = np.gradient(height.astype(np.float64))
        slope = np.hypot(gx, gy) / mm_per_px
        assert slope[region].max() < 3.5, (photo.name, float(slope[region].max()))
        k = max(2, int(0.05 * ied))
        dip = np.minimum(height[:, : -2 * k], height[:, 2 * k :]) - height[:, k:-k]
        assert dip[region[:, k:-k]].max() < 0.5, (photo.name, float(dip[region[:, k:-k]].max()))


def test_prints_show_a_captured_photograph_of_the_victim() -> None:
    """Prints and replays show a bona fide capture of the victim (same renderer and camera),
    so that 'was rendered' or 'has a background' cannot tell live from attack."""
    from synth.scene import victim_photo

    params = sample_params("print_flat", "d435", 21, split="train")
    photo = victim_photo(params)
    h, w = photo.rgb.shape[:2]
    lm = photo.landmarks
    assert (w, h) == (240, 300) and photo.rgb.min() >= 0.0 and photo.rgb.max() <= 1.0
    assert np.all((lm[:, 0] > 0) & (lm[:, 0] < w) & (lm[:, 1] > 0) & (lm[:, 1] < h))
    ied = float(np.linalg.norm(lm[1] - lm[0]))
    assert 0.12 * w < ied < 0.3 * w
    scene = render_params(params)
    assert scene.info["victim"] == params.victim


def test_alt_family_is_another_camera_and_room_main_unchanged() -> None:
    """The cross-generator family changes the capture, not the scene's ground truth, and
    leaves the main family's bytes alone."""
    main_a = render_scene("bona_fide", "d435", 7, split="test")
    main_b = render_scene("bona_fide", "d435", 7, split="test", family="main")
    alt = render_scene("bona_fide", "d435", 7, split="test", family="alt")
    assert main_a.rgb.tobytes() == main_b.rgb.tobytes()
    assert main_a.depth.tobytes() == main_b.depth.tobytes()
    for m in ("rgb", "depth", "ir"):
        a, b = getattr(main_a, m), getattr(alt, m)
        assert a.shape == b.shape and a.dtype == b.dtype and a.tobytes() != b.tobytes()
    np.testing.assert_array_equal(main_a.landmarks, alt.landmarks)
    assert main_a.info["victim"] == alt.info["victim"]
    # Depth stays a face at the same range: median over the face within a few cm.
    x1, y1, x2, y2 = np.round(main_a.box).astype(int)
    da, db = main_a.depth[y1:y2, x1:x2], alt.depth[y1:y2, x1:x2]
    assert abs(float(np.median(da[da > 0])) - float(np.median(db[db > 0]))) < 30
    with pytest.raises(ValueError, match="rendering family"):
        render_scene("bona_fide", "d435", 7, family="nope")


def test_alt_family_flying_pixels_stay_between_surfaces() -> None:
    """Flying pixels mix the two surfaces at a depth edge; a hole is no surface. Every valid
    alt pixel lies within the range of the main render's valid depths around it (2.1.0 mixed
    holes in and put points a few millimetres from the lens on every face)."""
    main = render_scene("bona_fide", "d435", 7, split="test")
    alt = render_scene("bona_fide", "d435", 7, split="test", family="alt")
    k = np.ones((3, 3), np.uint8)
    valid = main.depth > 0
    lo = cv2.erode(np.where(valid, main.depth, 65535).astype(np.uint16), k)
    hi = cv2.dilate(main.depth, k)
    inside = (alt.depth > 0) & valid
    d = alt.depth[inside].astype(np.float32)
    # the range noise (≤ 0.6 % of range) on top of the mix
    slack = 0.03 * d + 5
    assert np.all(d >= lo[inside] - slack) and np.all(d <= hi[inside] + slack)
    assert int(alt.depth[alt.depth > 0].min()) > 100


def test_alt_family_benchmark_records_its_family(tmp_path: Path) -> None:
    from synth import generate_benchmark

    manifest = generate_benchmark(tmp_path, scale="tiny", progress=False, workers=1, family="alt")
    assert json.loads(manifest.read_text())["family"] == "alt"
    recs = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert {r["family"] for r in recs} == {"alt"}


def test_benchmark_renders_only_the_splits_asked(tmp_path: Path) -> None:
    from synth import generate_benchmark
    from synth.benchmark import plan

    manifest = json.loads(
        generate_benchmark(
            tmp_path, scale="tiny", progress=False, workers=1, splits=("test",)
        ).read_text()
    )
    recs = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    expected = [s for s in plan("tiny", 0) if s.split == "test"]
    assert manifest["splits"] == ["test"] and len(recs) == len(expected) > 0
    assert {r["split"] for r in recs} == {"test"}
    # the same samples (seeds) as in the whole benchmark
    assert sorted(r["seed"] for r in recs) == sorted(s.seed for s in expected)
    combined = tmp_path / "protocols" / "combined"
    assert (combined / "train.txt").read_text().strip() == ""
    assert len((combined / "test.txt").read_text().splitlines()) == len(expected)
    with pytest.raises(ValueError, match="splits"):
        generate_benchmark(tmp_path / "x", scale="tiny", progress=False, splits=("nope",))


def test_each_scale_contains_the_smaller_ones() -> None:
    """A model trained on ``large``'s train split never sees ``standard``'s dev or test
    samples: the same index is the same sample (id, seed, split) at every scale."""
    from synth.benchmark import SCALES, plan

    by_scale = {scale: {s.id: s for s in plan(scale, 0)} for scale in SCALES}
    ordered = sorted(SCALES, key=lambda k: SCALES[k])
    for small, big in zip(ordered[:-1], ordered[1:], strict=True):
        assert len(by_scale[big]) > len(by_scale[small])
        for sid, spec in by_scale[small].items():
            assert by_scale[big][sid] == spec
    large_train = {sid for sid, s in by_scale["large"].items() if s.split == "train"}
    held_out = {sid for sid, s in by_scale["standard"].items() if s.split != "train"}
    assert large_train and not large_train & held_out
