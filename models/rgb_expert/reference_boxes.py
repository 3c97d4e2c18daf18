"""Record the publisher's face boxes on real photographs (offline measurement tool).

MiniFASNet was trained on crops around the boxes of the publisher's own face detector (an
SSD-style "RetinaFace" Caffe model in their repository, ``resources/detection_model/``).
FlexLive detects faces with MTCNN, whose boxes have a different extent; to build the
publisher's crop from an MTCNN detection we measure both detectors on the same real
photographs. This script runs the publisher's detector exactly as their demo does (the
image scaled to about 192×192 pixels of area, BGR mean (104, 117, 123), the most
confident box) and writes ``{path: [x, y, w, h]}`` as JSON (paths as given on the command line).

It needs OpenCV 4 (OpenCV 5 dropped the Caffe importer) and the two detector files from
the publisher's repository (Apache-2.0), neither of which FlexLive ships or installs::

    python3 -m venv /tmp/cv4 && /tmp/cv4/bin/pip install opencv-python-headless==4.14.0.94
    /tmp/cv4/bin/python models/rgb_expert/reference_boxes.py --detector-dir DIR \
        --out models/rgb_expert/reference_boxes.json synth/assets/holdout/*[0-9a-z].jpg

``models.rgb_expert.crop`` fits the MTCNN → publisher box mapping from the JSON file.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np


def publisher_box(net: cv2.dnn.Net, image: np.ndarray) -> tuple[list[int], float]:
    h, w = image.shape[:2]
    aspect = w / h
    small = image
    if w * h >= 192 * 192:
        size = (int(192 * math.sqrt(aspect)), int(192 / math.sqrt(aspect)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    net.setInput(cv2.dnn.blobFromImage(small, 1, mean=(104, 117, 123)), "data")
    out = net.forward("detection_out").squeeze()
    best = int(np.argmax(out[:, 2]))
    left, right = out[best, 3] * w, out[best, 5] * w
    top, bottom = out[best, 4] * h, out[best, 6] * h
    box = [int(left), int(top), int(right - left + 1), int(bottom - top + 1)]
    return box, float(out[best, 2])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument(
        "--detector-dir",
        type=Path,
        required=True,
        help="folder with deploy.prototxt and Widerface-RetinaFace.caffemodel",
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--min-confidence", type=float, default=0.9)
    args = ap.parse_args(argv)
    net = cv2.dnn.readNetFromCaffe(  # type: ignore[attr-defined]  # OpenCV 4 only
        str(args.detector_dir / "deploy.prototxt"),
        str(args.detector_dir / "Widerface-RetinaFace.caffemodel"),
    )
    boxes = {}
    for path in args.images:
        image = cv2.imread(str(path))
        if image is None:
            continue
        box, conf = publisher_box(net, image)
        if conf >= args.min_confidence:
            boxes[path.as_posix()] = box
    args.out.write_text(json.dumps(boxes, sort_keys=True).replace("], ", "],\n ") + "\n")
    print(f"{len(boxes)} boxes -> {args.out}")


if __name__ == "__main__":
    main()
