"""Stage 1 (``hatl resize``): decode videos / frame folders and store them resized, one clip shard per manifest shard."""

from hatl.video.resize import (
    ClipShard,
    ResizeConfig,
    SampleStream,
    Shard,
    iter_shard_samples,
    open_sample,
    read_shard,
    resize_shard,
)

__all__ = [
    "ClipShard", "ResizeConfig", "SampleStream", "Shard", "iter_shard_samples", "open_sample", "read_shard", "resize_shard",
]
