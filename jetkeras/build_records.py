"""Build TFRecord shards from cubes: ``python -m jetkeras.build_records``.

Examples
--------
Render the bundled catalogue synthetically (the embedded default), small for a CPU::

    python -m jetkeras.build_records --source synthetic --frames 16 --size 64 --limit 400

The seed's published npz data set, keeping its own train/val/test folders::

    python -m jetkeras.build_records --source npz --npz-root ml-project-2-jac/data --split seed

Cubes fetched from JSOC (one folder of FITS frames per event id)::

    python -m jetkeras.build_records --source fits --fits-root jsoc/ --workers 4

Inspect a finished folder (table + contact sheet)::

    python -m jetkeras.build_records --describe tfrecords/synthetic

Writes ``<out>/<split>-<i>-of-<n>.tfrecord`` shards and ``<out>/manifest.json`` (see
:mod:`jetkeras.records`). Interrupt it at any time: the same command resumes.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import jetkeras
from jetkeras import _cli
from jetkeras._files import is_disk_full, plain
from jetkeras.catalogue import load_events, load_jets, load_negatives, table_layout
from jetkeras.config import DataConfig, JetConfig, atomic_write_text
from jetkeras.io import match_cubes
from jetkeras.records import (
    SPLITS,
    FORMAT,
    STORAGE,
    Encoding,
    read_build,
    read_manifest,
    read_sidecar,
    SPLIT_FRACTIONS,
    sha256_file,
    shard_name,
    prepare_examples,
    split_events,
    write_prepared,
)

__all__ = ["build_records", "describe_records", "main", "write_manifest"]

SOURCES = ("synthetic", "npz", "fits")
PARALLEL = ("auto", "threads", "processes")


# ------------------------------------------------------------------ what to build
def _limb_distance(events: pd.DataFrame) -> np.ndarray:
    """Distance of each base point from disk centre in solar radii on its date."""
    from jetkeras.synthetic import solar_radius_arcsec

    radius = np.array([solar_radius_arcsec(pd.Timestamp(date).to_pydatetime())
                       for date in events["date"]])
    return np.hypot(events["basepoint_X"], events["basepoint_Y"]).to_numpy() / radius


def _select(events: pd.DataFrame, limit: int | None, seed: int,
            match_position: bool = True) -> pd.DataFrame:
    """A class-balanced, seeded subset of ``limit`` rows (all rows when None).

    With ``match_position``, each chosen jet takes the unused negative nearest to it in
    distance from disk centre (solar radii). The catalogue's jets sit at the limb more
    often than its jet-free intervals (66 % against 46 % beyond 900"), so an unmatched
    subset lets any classifier score "near the limb" instead of "jet": gradient-boosted
    trees on brightness summaries (8 renders per training event, demo geometry, seed 0)
    reached 0.91 ROC AUC unmatched, 0.88 matched, and the pre-bake-off model fell from
    0.87 to 0.63 (bench/README.md).
    """
    if limit is None or limit >= len(events):
        return events
    if limit < 2:
        raise ValueError(f"--limit: expected at least 2 sequences, received {limit}")
    rng = np.random.default_rng(seed)
    jets = events.index[events["label"] == 1].to_numpy()
    negatives = events.index[events["label"] == 0].to_numpy()
    jets = rng.choice(jets, size=min((limit + 1) // 2, len(jets)), replace=False)
    want = min(limit // 2, len(negatives))
    if not match_position:
        chosen = rng.choice(negatives, size=want, replace=False)
        return events.loc[sorted([*jets, *chosen])]
    distance = dict(zip(events.index, _limb_distance(events)))
    free = list(negatives)
    chosen = []
    for jet in jets[:want]:  # jets are in random order: no jet is favoured
        gaps = np.abs(np.array([distance[n] for n in free]) - distance[jet])
        chosen.append(free.pop(int(np.argmin(gaps))))
    return events.loc[sorted([*jets, *chosen])]


def _items_synthetic(events: pd.DataFrame) -> pd.DataFrame:
    items = events.copy()
    items["path"] = ""
    return items


def _is_event_table(catalogue) -> bool:
    """True when ``catalogue`` is an event table (an ``event_id`` column, as
    ``jetkeras.hek`` writes it) rather than the Solar Jet Hunter layout."""
    if catalogue is None or not Path(catalogue).is_file():
        return False
    return table_layout(catalogue) == "events"


def _labelled_table(catalogue, negatives, source: str) -> pd.DataFrame:
    """An event table whose every row is labelled (say, survey events checked by eye)."""
    from jetkeras.catalogue import read_table

    if negatives:
        raise ValueError(f"--negatives: an event table ({catalogue}) carries its own labels; "
                         f"received --negatives {negatives} too")
    if source == "synthetic":
        raise ValueError(f"--catalogue {catalogue}: the synthetic source renders the Solar "
                         f"Jet Hunter catalogue's jet parameters; an event table works with "
                         f"--source npz or fits")
    events = read_table(catalogue)
    unlabelled = [index for index, label in enumerate(events["label"]) if label not in (0, 1)]
    if unlabelled:
        raise ValueError(f"--catalogue {catalogue}: expected a label (1 jet, 0 no jet) in "
                         f"every row to train on, received none in {len(unlabelled)} row(s), "
                         f"first row {unlabelled[0]}")
    events["label"] = events["label"].astype(int)
    if "group" not in events.columns:
        events["group"] = events.get("SOL_event", events["event_id"])
    events["group"] = [str(group) or str(event_id) for group, event_id
                       in zip(events["group"], events["event_id"])]
    return events


def _items_fits(events: pd.DataFrame, root: Path) -> tuple[pd.DataFrame, list[dict]]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--fits-root {root}: folder not found")
    folders = {p.name: p for p in root.iterdir() if p.is_dir()}
    items = events[events["event_id"].isin(folders)].copy()
    items["path"] = items["event_id"].map(lambda e: str(folders[e]))
    orphans = [{"event_id": name, "label": -1, "reason": "folder name is not a catalogue id"}
               for name in sorted(set(folders) - set(events["event_id"]))]
    return items, orphans


def _load_frames(item: dict, source: str, data: dict, seed: int,
                 nuisance: dict | None = None) -> np.ndarray:
    """Frames (T, H, W) float32 DN of one item; raises ValueError when unusable.

    ``nuisance``: the fields of a :class:`jetkeras.synthetic.Nuisance` for the renders."""
    if source == "synthetic":
        from jetkeras.synthetic import Nuisance, render_event

        cube = render_event(item, frames=data["frames"], size=data["size"],
                            cadence_s=data["cadence_s"],
                            field_of_view_arcsec=data["field_of_view_arcsec"], seed=seed,
                            variant=int(item.get("variant", 0)),
                            nuisance=Nuisance(**{key: tuple(value) if isinstance(value, list)
                                                 else value
                                                 for key, value in nuisance.items()})
                            if nuisance else None)
    elif source == "npz":
        from jetkeras.io import read_npz

        cube = read_npz(item["path"], frames=data["frames"], size=data["size"],
                        nan_policy=data["nan_policy"])
    else:
        from jetkeras.io import read_fits_dir

        cube = read_fits_dir(item["path"], frames=data["frames"], cadence_s=data["cadence_s"],
                             cadence_tolerance_s=data["cadence_tolerance_s"], pool=data["pool"],
                             exposure_normalise=data["exposure_normalise"],
                             nan_policy=data["nan_policy"])
    frames = cube.frames
    if frames.shape != (data["frames"], data["size"], data["size"]):
        raise ValueError(
            f"{item.get('path') or item['event_id']}: expected a cube of shape "
            f"({data['frames']}, {data['size']}, {data['size']}), received {frames.shape}"
        )
    return frames


def _prepare_item(item: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """Read or render, then compress, one sequence of ``task``'s shard (no TensorFlow).

    Callers silence the readers' warnings (astropy's header fixes): ``catch_warnings`` is
    process-wide, so it must not be entered from several threads at once.
    """
    try:
        frames = _load_frames(item, task["source"], task["data"], task["seed"],
                              task.get("nuisance"))
        example = (item["event_id"], item["label"], item["group"], frames, None)
    except (ValueError, OSError) as error:
        if is_disk_full(error):  # not this sequence's fault: stop the build (run_main)
            raise
        example = (item["event_id"], item["label"], item["group"], None, str(error))
    return prepare_examples([example], log_stats=task["split"] == "train",
                            encoding=Encoding(**task["encoding"]))[0]


def _prepare_shard(task: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`_prepare_item` for every sequence of one shard (a Dask task)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_prepare_item(item, task) for item in task["items"]]


# ------------------------------------------------------------------------- build
def build_records(
    *,
    source: str = "synthetic",
    out: str | Path | None = None,
    config: JetConfig | None = None,
    seed: int = 0,
    limit: int | None = None,
    split: str = "grouped",
    npz_root: str | Path | None = None,
    fits_root: str | Path | None = None,
    catalogue: str | Path | None = None,
    negatives: str | Path | None = None,
    records_per_shard: int = 32,
    workers: int = 1,
    parallel: str = "auto",
    scheduler: str | None = None,
    progress: bool = True,
    variants: int = 1,
    match_position: bool = True,
    split_fractions: tuple[float, float, float] | None = None,
    nuisance=None,
) -> dict[str, Any]:
    """Build (or resume) a records folder and return its manifest.

    Parameters
    ----------
    source : {"synthetic", "npz", "fits"}
        Render the catalogue, read the seed's npz layout (or ``<event_id>.npz`` cubes),
        or read one folder of AIA FITS frames per event id.
    out : path, optional
        Output folder; default ``tfrecords/<source>``.
    config : JetConfig
        Its ``data`` section fixes frames, size, cadence, pooling and NaN policy.
    seed : int
        Seeds the subset, the split and the renderer.
    limit : int, optional
        Keep a class-balanced subset of this many sequences.
    match_position : bool
        With ``limit``: draw the negatives to match the chosen jets' distances from disk
        centre, so position (limb or disk) does not tell the classes apart.
    split : {"grouped", "seed"}
        ``grouped``: 70/15/15 by HEK event group (or ``split_fractions``), stratified by
        class. ``seed``: the seed's ``_val``/``_test`` folders (npz source only).
    split_fractions : (train, val, test), optional
        Target fractions of the grouped split, each in (0, 1), summing to 1; default
        (0.70, 0.15, 0.15). Larger validation and test splits make the threshold and the
        test figures steadier (the demo uses them).
    records_per_shard : int
        Sequences per shard (the unit of work and of resumption).
    workers : int
        Sequences prepared at once.
    parallel : {"auto", "threads", "processes"}
        How ``workers`` run: threads of this process (reading npz and rendering are NumPy
        and zlib, which release the GIL: no start-up, nothing pickled), or a local Dask
        cluster of processes (astropy's FITS decompression holds the GIL, so threads only
        slow it down). ``auto``: processes for ``fits``, threads otherwise.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    variants : int
        Synthetic source only: independent renders of every *training* event (validation
        and test keep one fixed render). ``train`` counts an epoch as one pass over the
        events, so with ``variants = V`` each epoch mostly meets renders it has not seen:
        new backgrounds, noise, jet shapes and confusers for the same catalogue rows.
    nuisance : jetkeras.synthetic.Nuisance, optional
        Synthetic source only: render every split with these settings (for example a
        confuser family left out of training, ``bench/``); recorded in ``build.json``.
    """
    config = config or JetConfig()
    nuisance_fields = _nuisance_fields(nuisance, source)
    parallel = _check_build_arguments(source=source, split=split,
                                      records_per_shard=records_per_shard, workers=workers,
                                      variants=variants, parallel=parallel)
    fractions = _split_fractions(split_fractions)
    out = Path(out) if out is not None else Path("tfrecords") / source
    events = _labelled_table(catalogue, negatives, source) if _is_event_table(catalogue) \
        else load_events(
            load_jets(catalogue) if catalogue else None,
            load_negatives(negatives) if negatives else None,
        )
    items, orphans = _items(events, source=source, split=split, npz_root=npz_root,
                            fits_root=fits_root)
    missing = len(events) - len(items) if source != "synthetic" else 0
    items = _select(items, limit, seed, match_position)
    items["split"] = _assign_splits(items, split=split, seed=seed, fractions=fractions,
                                    npz_root=npz_root)

    data = config.data
    encoding = Encoding(offset_dn=STORAGE.offset_dn, clip_dn=data.clip_dn)
    identity = _identity(source=source, data=data, seed=seed, limit=limit, split=split,
                         records_per_shard=records_per_shard, variants=variants,
                         match_position=match_position, npz_root=npz_root,
                         fits_root=fits_root, catalogue=catalogue, negatives=negatives,
                         fractions=fractions, nuisance=nuisance_fields)
    _claim_folder(out, identity)
    tasks = _shard_plan(items, out=out, source=source, seed=seed, data=data,
                        encoding=encoding, records_per_shard=records_per_shard,
                        variants=variants, nuisance=nuisance_fields)
    todo = [t for t in tasks if not Path(t["path"] + ".json").is_file()]
    # Each task writes its own sidecar; the manifest then reads them all back.
    try:
        _run_tasks(todo, workers=workers, processes=parallel == "processes" and workers > 1,
                   scheduler=scheduler, progress=progress,
                   total=sum(len(t["items"]) for t in tasks),
                   done=sum(len(t["items"]) for t in tasks if t not in todo))
    except KeyboardInterrupt:
        # Shards are renamed into place before their sidecar: a shard with a sidecar is
        # whole, one without is rebuilt by the next run.
        finished = sum(Path(t["path"] + ".json").is_file() for t in tasks)
        raise _cli.Interrupted(f"after {finished} of {len(tasks)} shards",
                               f"the {finished} finished shard(s) are kept in {out}") from None
    manifest = write_manifest(out, tasks, orphans, missing, config, identity, encoding)
    if progress:
        print(summary_table(manifest), file=sys.stderr)
    return manifest


def _identity(*, source, data, seed, limit, split, records_per_shard, variants,
              match_position, npz_root, fits_root, catalogue, negatives, fractions,
              nuisance) -> dict[str, Any]:
    """What a records folder was built with (``build.json``): a rerun with anything else
    is refused (:func:`_claim_folder`)."""
    identity = {
        "format": FORMAT, "source": source, "frames": data.frames, "size": data.size,
        "cadence_s": data.cadence_s, "field_of_view_arcsec": data.field_of_view_arcsec,
        "pool": data.pool, "nan_policy": data.nan_policy,
        "exposure_normalise": data.exposure_normalise, "clip_dn": data.clip_dn,
        "seed": seed, "limit": limit, "split": split, "records_per_shard": records_per_shard,
        "variants": variants, "match_position": match_position,
        "npz_root": str(npz_root) if npz_root else None,
        "fits_root": str(fits_root) if fits_root else None,
        "catalogue_sha256": sha256_file(catalogue) if catalogue else "bundled",
        "negatives_sha256": sha256_file(negatives) if negatives else "bundled",
    }
    # Absent when default, so that folders built before these existed still resume.
    if fractions != SPLIT_FRACTIONS:
        identity["split_fractions"] = list(fractions.values())
    if nuisance is not None:
        identity["nuisance"] = nuisance
    return identity


def _nuisance_fields(nuisance, source: str) -> dict | None:
    """A :class:`~jetkeras.synthetic.Nuisance` as JSON-friendly fields (tuples as lists),
    or None; refused for a source that is not rendered."""
    if nuisance is None:
        return None
    if source != "synthetic":
        raise ValueError(f"nuisance: renders' settings apply to the synthetic source only, "
                         f"received source {source!r}")
    from dataclasses import asdict

    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(nuisance).items()}


def _check_build_arguments(*, source, split, records_per_shard, workers, variants,
                           parallel) -> str:
    """Refuse bad plain arguments of :func:`build_records`; return the parallel mode."""
    if source not in SOURCES:
        raise ValueError(f"--source: expected one of {list(SOURCES)}, received {source!r}")
    if split not in ("grouped", "seed"):
        raise ValueError(f"--split: expected 'grouped' or 'seed', received {split!r}")
    if records_per_shard < 1:
        raise ValueError(f"--records-per-shard: expected >= 1, received {records_per_shard}")
    if workers < 1:
        raise ValueError(f"--workers: expected >= 1, received {workers}")
    if isinstance(variants, bool) or not isinstance(variants, int) or variants < 1:
        raise ValueError(f"--variants: expected a positive integer, received {variants!r}")
    if variants > 1 and source != "synthetic":
        raise ValueError(f"--variants: only the synthetic source can draw new renders; "
                         f"received --variants {variants} with --source {source}")
    if parallel not in PARALLEL:
        raise ValueError(f"--parallel: expected one of {list(PARALLEL)}, received {parallel!r}")
    if parallel == "auto":
        return "processes" if source == "fits" else "threads"
    return parallel


def _assign_splits(items: pd.DataFrame, *, split, seed, fractions, npz_root) -> np.ndarray:
    """Split name per row: the seed's own folders, or grouped by HEK event."""
    if split == "seed":
        if "seed_split" not in items or not {"val", "test"} <= set(items["seed_split"]):
            raise ValueError(f"--split seed: {npz_root} has no `_val` and `_test` seed folders; "
                             f"use --split grouped")
        return items["seed_split"].to_numpy()
    return split_events(items, seed=seed, fractions=fractions).to_numpy()


def _split_fractions(split_fractions) -> dict[str, float]:
    """``(train, val, test)`` -> the split's fraction table; None -> the 70/15/15 default."""
    if split_fractions is None:
        return dict(SPLIT_FRACTIONS)
    values = [float(value) for value in split_fractions]
    if len(values) != 3 or not all(0.0 < value < 1.0 for value in values) \
            or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"--split-fractions: expected three fractions TRAIN VAL TEST, each "
                         f"in (0, 1), summing to 1; received {list(split_fractions)}")
    return dict(zip(SPLIT_FRACTIONS, values))


def _items(events: pd.DataFrame, *, source, split, npz_root, fits_root
           ) -> tuple[pd.DataFrame, list[dict]]:
    """The catalogue rows to build from (with their cubes' paths), and orphan cubes."""
    orphans: list[dict] = []
    if source == "synthetic":
        if split == "seed":
            raise ValueError("--split seed: the synthetic source has no seed folders; "
                             "use --split grouped")
        items = _items_synthetic(events)
    elif source == "npz":
        if npz_root is None:
            raise ValueError("--npz-root: required with --source npz")
        items, orphans = match_cubes(events, npz_root)
    else:
        if fits_root is None:
            raise ValueError("--fits-root: required with --source fits")
        items, orphans = _items_fits(events, Path(fits_root))
    if items.empty:
        root = npz_root or fits_root
        raise ValueError(f"{root}: expected cubes matching catalogue rows, found none")
    return items, orphans


def _shard_plan(items: pd.DataFrame, *, out: Path, source, seed, data, encoding,
                records_per_shard, variants, nuisance=None) -> list[dict[str, Any]]:
    """Deterministic shards: each split in a seeded order, cut into fixed chunks."""
    tasks = []
    data_dict = {f: getattr(data, f) for f in DataConfig.__dataclass_fields__}
    for split_name in SPLITS:
        part = items[items["split"] == split_name]
        if part.empty:
            continue
        if split_name == "train" and variants > 1:
            part = pd.concat([part.assign(variant=v) for v in range(variants)])
        order = np.random.default_rng([seed, SPLITS.index(split_name)]).permutation(len(part))
        part = part.iloc[order]
        count = -(-len(part) // records_per_shard)
        for index in range(count):
            chunk = part.iloc[index * records_per_shard:(index + 1) * records_per_shard]
            tasks.append({
                "path": str(out / shard_name(split_name, index, count)),
                "split": split_name, "source": source, "seed": seed, "data": data_dict,
                "nuisance": nuisance,
                "encoding": {"offset_dn": encoding.offset_dn, "clip_dn": encoding.clip_dn},
                "items": [_plain(row) for _, row in chunk.iterrows()],
            })
    return tasks


def _plain(row: pd.Series) -> dict[str, Any]:
    """A JSON/pickle-friendly dict of one item (NaN stays float)."""
    return {key: plain(value) for key, value in row.items()}


def _claim_folder(out: Path, identity: dict[str, Any]) -> None:
    """Refuse a folder that holds records of another configuration."""
    build_path = out / "build.json"
    previous = read_build(out)
    if previous is not None:
        for key in sorted(set(previous) | set(identity)):
            if previous.get(key) != identity.get(key):
                raise ValueError(
                    f"{out}: holds records built with {key}={previous.get(key)!r}, this build "
                    f"asks {key}={identity.get(key)!r}; choose another --out or delete the folder"
                )
        return
    if out.exists() and any(out.glob("*.tfrecord")):
        raise ValueError(f"{out}: holds TFRecord shards without build.json; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(build_path, json.dumps(identity, indent=2, sort_keys=True))


def _run_tasks(tasks, *, workers, processes, scheduler, progress, total, done) -> None:
    """Prepare sequences in threads, or shards on Dask processes; write the shards here.

    Preparing only reads, renders and compresses, without TensorFlow. In threads, one
    sequence is a unit of work, so every thread stays busy to the end. On Dask (a local
    cluster of ``workers`` processes, or the running cluster at ``scheduler``, whose
    workers need this package and the data paths) a shard is, which keeps the scheduler's
    overhead per task small. Either way this process writes the shards, in order.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=done, unit="seq", desc="build_records",
               disable=not progress, file=sys.stderr)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # covers the threads too: filters are global
            if scheduler or processes:
                _run_on_dask(tasks, workers=workers, scheduler=scheduler, bar=bar)
            else:
                _run_in_threads(tasks, workers=workers, bar=bar)
    finally:
        bar.close()


def _run_in_threads(tasks, *, workers, bar) -> None:
    """One thread task per sequence; shards are written here, in order."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        # Shards are submitted in order and at most two ahead of the one being written
        # (more while that keeps fewer than 2 sequences per thread queued), so memory
        # stays bounded and a kill loses only what was not yet written.
        pending: collections.deque = collections.deque()
        upcoming = iter(tasks)
        for _ in tasks:
            while len(pending) < 2 or sum(len(f) for _, f in pending) < 2 * workers:
                task = next(upcoming, None)
                if task is None:
                    break
                pending.append((task, [pool.submit(_prepare_item, item, task)
                                       for item in task["items"]]))
            task, shard_futures = pending.popleft()
            write_prepared(Path(task["path"]), [f.result() for f in shard_futures])
            bar.update(len(task["items"]))
    finally:
        # On Ctrl-C, drop the queued sequences instead of preparing them all first.
        pool.shutdown(wait=True, cancel_futures=True)


def _run_on_dask(tasks, *, workers, scheduler, bar) -> None:
    """One Dask task per shard; each shard is written here as soon as it is ready."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if not scheduler:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        with Client(scheduler or cluster) as client:
            futures = client.map(_prepare_shard, tasks, pure=False)
            paths = {future.key: task["path"] for future, task in zip(futures, tasks)}
            for future in as_completed(futures):
                sidecar = write_prepared(Path(paths[future.key]), future.result())
                bar.update(len(sidecar["written"]) + len(sidecar["rejected"]))
                future.release()  # free the payloads
    finally:
        if cluster is not None:
            cluster.close()


def write_manifest(out, tasks, orphans, missing, config, identity, encoding):
    """Write ``manifest.json`` from the shards' sidecars (``build_records``, ``crossval``).

    Counts per split and class, groups, the training split's normalisation statistics,
    the rejected sequences (``orphans`` first) and ``missing`` catalogue rows.
    """
    splits: dict[str, Any] = {}
    rejected = list(orphans)
    totals = {"count": 0, "sum": 0.0, "sum_sq": 0.0, "log_sum": 0.0, "log_sum_sq": 0.0}
    for task in tasks:
        path = Path(task["path"])
        sidecar = read_sidecar(path)
        entry = splits.setdefault(task["split"], {"shards": [], "counts": {"jet": 0, "no_jet": 0},
                                                  "groups": set()})
        entry["shards"].append({"name": path.name, "sha256": sidecar["sha256"],
                                "bytes": sidecar["bytes"], "count": len(sidecar["written"])})
        for record in sidecar["written"]:
            entry["counts"]["jet" if record["label"] == 1 else "no_jet"] += 1
            entry["groups"].add(record["group"])
        rejected.extend(sidecar["rejected"])
        if task["split"] == "train":
            for key in totals:
                totals[key] += sidecar["sums"][key]
    for name, entry in splits.items():
        entry["groups"] = sorted(entry["groups"])
        entry["count"] = entry["counts"]["jet"] + entry["counts"]["no_jet"]
        # Renders per event: train's epoch is count / variants sequences.
        entry["variants"] = identity.get("variants", 1) if name == "train" else 1
    if totals["count"] == 0:
        raise ValueError(f"{out}: no training sequence could be written; "
                         f"see the rejected list in the shard sidecars")
    mean = totals["sum"] / totals["count"]
    log_mean = totals["log_sum"] / totals["count"]
    normalisation = {
        "computed_on": "train",
        "clip_dn": encoding.clip_dn,
        "mean": mean,
        "std": float(np.sqrt(max(totals["sum_sq"] / totals["count"] - mean**2, 1e-12))),
        "log_mean": log_mean,
        "log_std": float(np.sqrt(max(totals["log_sum_sq"] / totals["count"] - log_mean**2,
                                     1e-12))),
        "seed_constants": {"mean": 50.564544677734375, "std": 49.94772720336914},
    }
    manifest = {
        "format": FORMAT,
        "jetkeras_version": jetkeras.__version__,
        "source": identity["source"],
        "build": identity,
        "config": config.to_dict(),
        "frames": config.data.frames,
        "size": config.data.size,
        "encoding": encoding.to_dict(),
        "normalisation": normalisation,
        "splits": splits,
        "count": sum(entry["count"] for entry in splits.values()),
        "rejected": rejected,
        "catalogue_rows_without_cube": int(missing),
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


# ---------------------------------------------------------------------- describe
def summary_table(manifest: dict[str, Any]) -> str:
    """Counts per split and class, shard sizes and normalisation, as aligned text."""
    lines = [f"{'split':<6} {'jets':>6} {'no-jet':>7} {'groups':>7} {'shards':>7} {'MB':>8}"]
    for name in SPLITS:
        entry = manifest["splits"].get(name)
        if entry is None:
            continue
        megabytes = sum(s["bytes"] for s in entry["shards"]) / 1e6
        lines.append(f"{name:<6} {entry['counts']['jet']:>6} {entry['counts']['no_jet']:>7} "
                     f"{len(entry['groups']):>7} {len(entry['shards']):>7} {megabytes:>8.1f}")
    norm = manifest["normalisation"]
    per_seq = sum(s["bytes"] for e in manifest["splits"].values() for s in e["shards"]) / max(
        manifest["count"], 1)
    lines.append(f"sequences {manifest['count']} of {manifest['frames']}x{manifest['size']}x"
                 f"{manifest['size']}, {per_seq / 1e6:.2f} MB each; rejected "
                 f"{len(manifest['rejected'])}; train mean {norm['mean']:.2f} DN, "
                 f"std {norm['std']:.2f} DN (clip {norm['clip_dn']:g})")
    return "\n".join(lines)


def describe_records(records_dir: str | Path, *, per_class: int = 2,
                     sheet: str | Path | None = None) -> Path:
    """Print the manifest as a table and write a contact sheet of a few records.

    Returns the path of the PNG (default ``<records_dir>/describe.png``).
    """
    from jetkeras.pipeline import iterate_records
    from jetkeras.plotting import contact_sheets

    manifest = read_manifest(records_dir)
    print(summary_table(manifest))
    for record in manifest["rejected"][:10]:
        print(f"rejected {record['event_id']}: {record['reason']}")
    cubes, titles = [], []
    for split in manifest["splits"]:
        taken = {0: 0, 1: 0}
        for record in iterate_records(records_dir, split):
            if taken[record["label"]] < per_class:
                taken[record["label"]] += 1
                cubes.append(record["frames"][..., 0])
                titles.append(f"{split} {'jet' if record['label'] else 'no jet'} "
                              f"{record['event_id']}")
            if min(taken.values()) >= per_class:
                break
    sheet = Path(sheet) if sheet else Path(records_dir) / "describe.png"
    contact_sheets(cubes, sheet, titles=titles)
    print(f"contact sheet: {sheet}")
    return sheet


# --------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = _cli.make_parser(
        "build_records",
        "Turn jet and jet-free cubes (synthetic renders of the catalogue, npz cubes or FITS "
        "frames) into TFRecord shards split into train, val and test by HEK event, with a "
        "manifest.json. Interrupt it at any time: the same command resumes.",
        ["--source synthetic --frames 16 --size 64 --limit 400",
         "--source npz --npz-root ml-project-2-jac/data --split seed",
         "--source fits --fits-root jsoc/ --workers 4",
         "--describe tfrecords/synthetic"])
    parser.add_argument("--describe", metavar="DIR", type=_cli.existing_folder,
                        help="print the manifest of a records folder and write a contact sheet "
                             "(describe.png in it); default: build instead")
    parser.add_argument("--source", choices=SOURCES, default="synthetic",
                        help="where cubes come from; default synthetic (render the catalogue)")
    parser.add_argument("--npz-root", type=_cli.existing_folder,
                        help="seed npz layout root (data0/, data1/, ...) or a folder of "
                             "<event_id>.npz cubes; required with --source npz")
    parser.add_argument("--fits-root", type=_cli.existing_folder,
                        help="folder holding one sub-folder of FITS per event id; required with "
                             "--source fits")
    parser.add_argument("--catalogue", type=_cli.existing_file,
                        help="jet catalogue CSV (Solar Jet Hunter layout), or an event table "
                             "with an event_id column and a 0/1 label in every row (npz or "
                             "fits source); default: the bundled catalogue")
    parser.add_argument("--negatives", type=_cli.existing_file,
                        help="jet-free intervals CSV; default: the bundled one")
    parser.add_argument("--out", help="output folder; default tfrecords/<source>")
    parser.add_argument("--config", type=_cli.existing_file,
                        help="JetConfig JSON whose data section is used; default the built-in "
                             "defaults")
    parser.add_argument("--frames", type=_cli.bounded_int(2, _cli.MAX_FRAMES),
                        help=f"frames per sequence, 2 to {_cli.MAX_FRAMES}; default 30 (or the "
                             f"--config's)")
    parser.add_argument("--size", type=_cli.bounded_int(16, _cli.MAX_SIZE),
                        help=f"pixels per side after pooling, 16 to {_cli.MAX_SIZE}; default 166 "
                             f"(or the --config's)")
    parser.add_argument("--limit", type=_cli.bounded_int(2),
                        help="class-balanced subset of N >= 2 sequences; default all")
    parser.add_argument("--split", choices=("grouped", "seed"), default="grouped",
                        help="grouped: by HEK event, 70/15/15 %% (or --split-fractions); seed: "
                             "the seed's own train/val/test folders; default grouped")
    parser.add_argument("--split-fractions", nargs=3, type=_cli.probability,
                        metavar=("TRAIN", "VAL", "TEST"),
                        help="target fractions of the grouped split, summing to 1; default "
                             "0.70 0.15 0.15")
    parser.add_argument("--records-per-shard", type=_cli.positive_int, default=32,
                        help="sequences per shard file; default 32")
    parser.add_argument("--workers", type=_cli.bounded_int(1, _cli.MAX_WORKERS), default=1,
                        help="sequences prepared at once (threads or processes); default 1")
    parser.add_argument("--parallel", choices=PARALLEL, default="auto",
                        help="threads (npz, synthetic) or a local Dask cluster of processes "
                             "(FITS); default auto")
    parser.add_argument("--scheduler", help="address of a Dask scheduler to run on "
                                            "(tcp://host:8786); default none (local)")
    parser.add_argument("--no-match-position", dest="match_position", action="store_false",
                        help="with --limit: draw negatives at random instead of matching "
                             "the jets' distances from disk centre; default: match")
    parser.add_argument("--variants", type=_cli.positive_int, default=1,
                        help="synthetic only: independent renders of each training event "
                             "(an epoch of train is one pass over the events); default 1")
    _cli.add_seed_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    _cli.quiet_tensorflow()
    args = _parser().parse_args(argv)

    def run():
        if args.describe:
            describe_records(args.describe)
            return
        config = JetConfig.from_json(args.config) if args.config else JetConfig()
        changes = {key: value for key, value in (("frames", args.frames), ("size", args.size))
                   if value is not None}
        config = config.replace(data=changes) if changes else config
        build_records(source=args.source, out=args.out, config=config, seed=args.seed,
                      limit=args.limit, split=args.split, npz_root=args.npz_root,
                      fits_root=args.fits_root, catalogue=args.catalogue,
                      negatives=args.negatives, records_per_shard=args.records_per_shard,
                      workers=args.workers, parallel=args.parallel,
                      scheduler=args.scheduler, variants=args.variants,
                      match_position=args.match_position,
                      split_fractions=args.split_fractions)

    # The shard plan is a pure function of the flags: the same command picks up the
    # shards without a sidecar (build.json refuses a changed configuration).
    return _cli.run_main(run, "build_records", resume=_cli.resume_command("build_records", argv))


if __name__ == "__main__":
    raise SystemExit(main())
