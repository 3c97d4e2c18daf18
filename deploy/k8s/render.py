"""Render a kustomize overlay without kustomize: the subset of it these manifests use.

There is no kubectl or kustomize binary on the project's machines (and none on PyPI), so
the test suite renders ``deploy/k8s/overlays/*`` with this and validates the result.
Operators use ``kubectl kustomize`` / ``kubectl apply -k``; this renderer must agree with
it on these files, which is why it refuses any kustomization field it does not implement.

Supported: ``resources`` (files and directories holding a kustomization), ``patches``
given by ``path`` (strategic merge: maps merge, lists of maps with a ``name`` merge by
name, other lists and scalars are replaced; the target is the resource with the patch's
kind and metadata.name) and ``images`` (``name`` → ``newName``/``newTag``).

    python deploy/k8s/render.py deploy/k8s/overlays/gpu > gpu.yaml
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images"}


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge of ``patch`` into ``base`` (a new object; inputs are untouched)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    named = (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in [*base, *patch])
    )
    if named:
        out_list = [copy.deepcopy(x) for x in base]
        index = {x["name"]: i for i, x in enumerate(out_list)}
        for item in patch:
            if item["name"] in index:
                out_list[index[item["name"]]] = merge(out_list[index[item["name"]]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("containers", []), *spec.get("initContainers", [])]


def _set_images(docs: list[dict[str, Any]], images: list[dict[str, Any]]) -> None:
    for rule in images:
        for doc in docs:
            for container in _containers(doc):
                image = container.get("image", "")
                name = image.split("@")[0].rsplit(":", 1)[0] if ":" in image else image
                if name != rule["name"]:
                    continue
                tag = rule.get("newTag", image[len(name) + 1 :] if ":" in image else "")
                container["image"] = rule.get("newName", name) + (f":{tag}" if tag else "")


def render(directory: str | Path) -> list[dict[str, Any]]:
    """The resources of the kustomization in ``directory``, patched, in order."""
    directory = Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: kustomization fields not supported: {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for spec in kustomization.get("patches", []):
        if set(spec) != {"path"}:
            raise ValueError(f"{directory}: only patches by 'path' are supported: {spec}")
        for patch in yaml.safe_load_all((directory / spec["path"]).read_text()):
            key = (patch["kind"], patch["metadata"]["name"])
            hits = [i for i, d in enumerate(docs) if (d["kind"], d["metadata"]["name"]) == key]
            if len(hits) != 1:
                raise ValueError(f"{directory}/{spec['path']}: {key} matches {len(hits)} resources")
            docs[hits[0]] = merge(docs[hits[0]], patch)
    _set_images(docs, kustomization.get("images", []))
    return docs


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: render.py OVERLAY_DIR", file=sys.stderr)
        return 2
    yaml.safe_dump_all(render(argv[0]), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
