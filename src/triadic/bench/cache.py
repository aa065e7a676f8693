"""Peer results cached as JSON files, so that a re-run recomputes only triadic.

The key covers everything a peer's result depends on: the clip (path, size and modification time,
or a hash of the samples for synthetic clips), the number of frames, the codec and its settings, the
thread count and the library versions. Change any of them and the peer runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

#: Bump when the meaning of a cached result changes (e.g. how bytes are counted).
CACHE_FORMAT = 1


def clip_identity(clip) -> dict:
    """What identifies a clip's frames: the file's path, size and mtime, or a digest of the samples."""
    if os.path.isfile(clip.path):
        st = os.stat(clip.path)
        return {"path": clip.path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    digest = hashlib.sha256()
    for planes in clip.frames:
        for plane in planes:
            digest.update(plane.tobytes())
    return {"path": clip.path, "sha256": digest.hexdigest()}


def cache_key(**parts) -> str:
    """Stable hex digest of ``parts`` (JSON with sorted keys)."""
    blob = json.dumps({"cache_format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class ResultCache:
    """A folder of ``<key>.json`` files; ``None`` as folder disables caching."""

    def __init__(self, folder: str | None, enabled: bool = True):
        self.folder = folder
        self.enabled = enabled and folder is not None

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, f"{key}.json")

    def get(self, key: str) -> dict | None:
        if not self.enabled:
            return None
        try:
            with open(self._path(key), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict) -> None:
        if self.folder is None:
            return
        os.makedirs(self.folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1, sort_keys=True)
        os.replace(tmp, self._path(key))
