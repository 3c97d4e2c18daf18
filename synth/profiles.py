"""Sensor profiles: the camera models a synthetic scene is rendered through.

A profile fixes resolution, optics, the working range, how depth noise grows with range,
where depth fails (edges, dark or glossy surfaces) and what the near-infrared image looks
like (flood illuminator vs projector dot pattern). Two profiles that differ in all of these
make cross-profile tests meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SensorProfile:
    name: str
    description: str
    #: Frame size (width, height) of the registered RGB/depth/IR grid.
    frame_size: tuple[int, int]
    #: Horizontal field of view of the registered grid, degrees.
    hfov_deg: float
    #: Range of subject distances (mm) the scene sampler draws from.
    distance_mm: tuple[float, float]
    #: Valid depth range of the sensor (mm); beyond it depth is a hole.
    depth_range_mm: tuple[float, float]
    #: Depth noise sigma (mm) at 1 m; grows with range² (stereo/triangulation).
    noise_at_1m_mm: float
    #: Depth quantisation step of the disparity/code (mm at 1 m, also ∝ range²).
    quant_at_1m_mm: float
    #: Baseline (mm) between projector/imager: width of occlusion shadows at depth edges.
    baseline_mm: float
    #: Side of the foreground on which the occlusion shadow falls (-1 left, +1 right).
    shadow_side: int
    #: Depth dropout on dark (low NIR) surfaces and on glossy ones.
    dark_dropout: float
    glossy_dropout: float
    #: NIR illuminator strength (IR level of a white surface at 0.5 m before exposure).
    ir_power: float
    #: Projector dot pattern visible in the IR image (active stereo with emitter on).
    ir_dots: bool
    #: Ambient NIR (sunlight/lamps) reaching the IR image, as a fraction of full scale.
    ir_ambient: float
    #: RGB sensor read noise (fraction of full scale) and JPEG-like softness (blur sigma px).
    rgb_noise: float
    rgb_blur: float
    ir_noise: float


PROFILE_SPECS: dict[str, SensorProfile] = {
    "sr305": SensorProfile(
        name="sr305",
        description="short-range coded structured light (RealSense SR305-like): 480×360, "
        "strong flood NIR, short range, low noise, holes on dark and glossy surfaces",
        frame_size=(480, 360),
        hfov_deg=68.0,
        distance_mm=(300.0, 750.0),
        depth_range_mm=(200.0, 1500.0),
        noise_at_1m_mm=4.0,
        quant_at_1m_mm=2.0,
        baseline_mm=25.0,
        shadow_side=1,
        dark_dropout=0.55,
        glossy_dropout=0.6,
        ir_power=0.95,
        ir_dots=False,
        ir_ambient=0.02,
        rgb_noise=0.012,
        rgb_blur=0.6,
        ir_noise=0.02,
    ),
    "d435": SensorProfile(
        name="d435",
        description="active stereo (RealSense D435-like): 640×480, longer range, stereo noise "
        "growing with range², projector dot pattern in the IR image",
        frame_size=(640, 480),
        hfov_deg=64.0,
        distance_mm=(450.0, 1300.0),
        depth_range_mm=(280.0, 6000.0),
        noise_at_1m_mm=7.0,
        quant_at_1m_mm=4.0,
        baseline_mm=50.0,
        shadow_side=-1,
        dark_dropout=0.3,
        glossy_dropout=0.35,
        ir_power=0.6,
        ir_dots=True,
        ir_ambient=0.08,
        rgb_noise=0.02,
        rgb_blur=0.8,
        ir_noise=0.03,
    ),
}

PROFILES: tuple[str, ...] = tuple(PROFILE_SPECS)


def get_profile(name: str) -> SensorProfile:
    try:
        return PROFILE_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown sensor profile '{name}'; choose one of {PROFILES}") from None
