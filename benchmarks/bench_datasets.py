"""Data-loading throughput of each training pipeline (images / s with 2 DataLoader workers).

    python benchmarks/bench_datasets.py                 # embedded data + synthetic ADE/Places-sized images
    python benchmarks/bench_datasets.py --ade-root /data/ADEChallengeData2016 --places-root /data/places365

Pipelines: segmentation "paper" (random batches, and batches grouped by orientation with
AspectRatioBatchSampler) and "mmseg" (ADE20KDataset + build_transform + pad_collate),
inpainting (PlacesDataset train crop/flip + a DeepFill v2 free-form MaskGenerator).
Sources: the embedded data (~256 px), and synthetic JPEGs at typical real sizes
(ADE20K ~512x683, Places high-res ~512x683), so decode and resize costs are realistic.
Writes benchmarks/results/datasets_<name>.json (name defaults to cpu<N>, no host name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import albumentations  # noqa: E402
import cv2  # noqa: E402
from torch.utils.data import DataLoader, RandomSampler, Sampler  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from datasets._testdata import make_ade, make_image_tree  # noqa: E402
from datasets.ade20k import ADE20KDataset, build_transform  # noqa: E402
from datasets.collate import AspectRatioBatchSampler, pad_collate  # noqa: E402
from datasets.embedded import ensure_places_photos, ensure_texture_scenes  # noqa: E402
from datasets.masks import MaskGenerator  # noqa: E402
from datasets.places import PlacesDataset  # noqa: E402


class _Repeat(Sampler):
    """Repeats an epoch-style batch sampler forever (new epoch each pass)."""

    def __init__(self, inner):
        self.inner = inner

    def __iter__(self):
        epoch = 0
        while True:
            self.inner.set_epoch(epoch)
            yield from self.inner
            epoch += 1


def measure(
    ds: ADE20KDataset | PlacesDataset, batch_size: int, workers: int, seconds: float, grouped: bool = False,
    warmup: int = 2,
) -> dict:
    if grouped:  # landscape / portrait batches (less padding for the paper pipeline)
        bs = _Repeat(AspectRatioBatchSampler(ds.orientation_groups(), batch_size, seed=0))
        dl = DataLoader(ds, batch_sampler=bs, num_workers=workers, collate_fn=pad_collate)
    else:
        sampler = RandomSampler(ds, replacement=True, num_samples=10**7)
        dl = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=pad_collate)
    it = iter(dl)
    for _ in range(warmup):
        next(it)
    n_img, n_batches, t0 = 0, 0, time.perf_counter()
    while True:
        batch = next(it)
        n_img += batch["image"].shape[0]
        n_batches += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n_batches >= 3:
            break
    del it
    return {"images_per_s": n_img / elapsed, "images": n_img, "batches": n_batches, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ade-root", help="real ADE20K (ADEChallengeData2016) instead of the embedded scenes")
    ap.add_argument("--places-root", help="real Places365 root instead of the embedded photos")
    ap.add_argument("--data", default=str(REPO / "data"), help="where the embedded data lives / is generated")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic real-size sources")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seg-batch", type=int, default=8)
    ap.add_argument("--inpaint-batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0, help="measuring time per case")
    ap.add_argument("--name", default=f"cpu{os.cpu_count()}", help="result file suffix (no host names)")
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="bench_datasets_")
    seg_sources = []
    if args.ade_root:
        seg_sources.append(("ade20k (given root)", Path(args.ade_root)))
    else:
        seg_sources.append(
            ("texture scenes (embedded, 224-320 px)", ensure_texture_scenes(Path(args.data) / "texture_scenes"))
        )
    places_sources = []
    if args.places_root:
        places_sources.append(("places (given root)", Path(args.places_root)))
    else:
        places_sources.append(
            ("places photos (embedded, 256 px)", ensure_places_photos(Path(args.data) / "places_photos"))
        )
    if not args.no_synthetic:
        ade_syn = make_ade(Path(tmp.name) / "ade", sizes=[(512, 683), (683, 512), (512, 640), (480, 640)] * 6,
                           splits=("training",), quality=90)  # fmt: skip
        seg_sources.append(("synthetic ADE-size JPEG (~512x683)", ade_syn))
        make_image_tree(Path(tmp.name) / "places", [f"train/c{i % 4}/{i:04d}.jpg" for i in range(24)], size=(512, 683))
        places_sources.append(("synthetic Places-hires JPEG (512x683)", Path(tmp.name) / "places"))

    cases = []
    for data_name, root in seg_sources:
        for pipe, grouped in (("paper", False), ("paper", True), ("mmseg", False)):
            ds = ADE20KDataset(root, "training", transform=build_transform(pipe))
            name = f"seg_{pipe}" + ("_grouped" if grouped else "")
            cases.append((name, data_name, ds, args.seg_batch, grouped))
    for data_name, root in places_sources:
        ds = PlacesDataset(root, "train", size=256, masks=MaskGenerator(256, seed=0))
        cases.append(("inpaint_places_256_freeform", data_name, ds, args.inpaint_batch, False))

    load_before = os.getloadavg()[0]
    results = []
    print(f"{'pipeline':30s} {'data':40s} {'batch':>5s} {'img/s':>8s}")
    for pipe, data_name, ds, bs, grouped in cases:
        r = measure(ds, bs, args.workers, args.seconds, grouped=grouped)
        r.update({"pipeline": pipe, "data": data_name, "batch_size": bs, "workers": args.workers})
        results.append(r)
        print(f"{pipe:30s} {data_name:40s} {bs:5d} {r['images_per_s']:8.1f}", flush=True)

    out = {
        "benchmark": "datasets: DataLoader throughput per training pipeline",
        "machine": describe("cpu")
        | {"cpu_count": os.cpu_count(), "albumentations": albumentations.__version__, "opencv": cv2.__version__},
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "workers": args.workers,
        "seconds_per_case": args.seconds,
        "results": results,
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"datasets_{args.name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
