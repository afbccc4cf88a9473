"""Where smollab keeps things: the user cache (``SMOLLAB_HOME``) and the data dir."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def smollab_home() -> Path:
    """The user cache (converted models): ``$SMOLLAB_HOME``, default ``$XDG_CACHE_HOME/smollab``."""
    env = os.environ.get("SMOLLAB_HOME")
    path = Path(env).expanduser() if env else Path(user_cache_dir("smollab"))
    return path


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The benchmark data dir: the explicit argument, else ``$SMOLLAB_DATA_DIR``, else None."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SMOLLAB_DATA_DIR")
    return Path(env).expanduser() if env else None
