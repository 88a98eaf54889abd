"""Stage 2 (``hatl keypoints``): MediaPipe Holistic landmarks per shard, or conversion of released .npy / demo keypoints."""

from hatl.keypoints.cli import KeypointSettings, ShardReport, keypoints_shard
from hatl.keypoints.convert import npy_record, read_demo_records, read_npy_sequence, remap_record
from hatl.keypoints.holistic import HolisticConfig, HolisticExtractor

__all__ = [
    "HolisticConfig", "HolisticExtractor", "KeypointSettings", "ShardReport", "keypoints_shard",
    "npy_record", "read_demo_records", "read_npy_sequence", "remap_record",
]
