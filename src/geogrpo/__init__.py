"""geogrpo: post-train video generators with GRPO so that what they generate obeys 3D geometry."""

__version__ = "0.1.0"
