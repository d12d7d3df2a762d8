"""``hdvision check-data``: every split of a data set (files or shards) scanned without training:
counts per class, sizes, modes, and every file or shard member that cannot be used, each named
with why."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from typing import Any


def _members(dataset: Any) -> Iterator[tuple[str, int, bytes | None]]:
    """(name, label, encoded bytes) of every member: a shard member's bytes, or None for a file
    (read from its path)."""
    members = getattr(dataset, "members", None)
    if callable(members):  # a streamed split (hdvision.data.shards.ShardDataset)
        yield from members()
    else:
        for path, label in dataset.samples:
            yield path, label, None


def check_splits(datamodule: Any) -> list[str]:
    """Print each split's statistics, and every problem a training run would meet, of a set-up
    datamodule (listed with ``data.on_bad_image=skip``); returns the problems' messages."""
    from PIL import Image

    from hdvision.data.decode import BadImageError, decode_image

    bad: list[str] = []
    decode = datamodule.decode.at((64, 64))  # small: a decode check, not the training decode
    for split, dataset in datamodule.datasets.items():
        # What listing refused (a missing file, an unknown label, a row that contradicts
        # another, a duplicated file, a link to a folder): a training run stops on these too.
        bad.extend(getattr(datamodule, "problems", {}).get(split, []))
        per_class: Counter = Counter()
        sizes: Counter = Counter()
        modes: Counter = Counter()
        count = 0
        for name, label, data in _members(dataset):
            count += 1
            per_class[datamodule.class_names[label]] += 1
            try:
                # Decoding first: it names every way a file can be refused, before or while
                # decoding; a file it accepts opens for the statistics.
                decode_image(name, decode.size, decode.fit, decode.reduced, decode.max_pixels, data)
                with Image.open(name if data is None else io.BytesIO(data)) as image:
                    sizes[f"{image.width}x{image.height}"] += 1
                    modes[image.mode] += 1
            except BadImageError as err:
                bad.append(str(err))
        print(f"[{split}] {count} images")
        print(f"  per class: {dict(sorted(per_class.items()))}")
        print(f"  sizes: {dict(sizes.most_common(5))}{' ...' if len(sizes) > 5 else ''}")
        print(f"  modes: {dict(modes)}")
    print(f"bad files and entries: {len(bad)}")
    for line in bad:
        print(f"  {line}")
    return bad
