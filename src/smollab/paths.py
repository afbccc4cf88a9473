"""Where smollab keeps things: the user cache (``SMOLLAB_HOME``) and the data dir."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def smollab_home() -> Path:
    """The user cache (converted models, the evaluation cache): ``$SMOLLAB_HOME``, default
    ``$XDG_CACHE_HOME/smollab``; created if missing (a :class:`ConfigError` names it when it
    cannot be)."""
    from smollab.errors import ConfigError

    env = os.environ.get("SMOLLAB_HOME")
    path = Path(env).expanduser() if env else Path(user_cache_dir("smollab"))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "SMOLLAB_HOME" if env else "The default cache folder (XDG_CACHE_HOME/smollab)"
        raise ConfigError(
            f"{what} {str(path)!r} cannot be used as smollab's cache folder: "
            f"{e.strerror or e}. Point SMOLLAB_HOME at a writable folder (it is created if "
            "missing), e.g. `export SMOLLAB_HOME=~/.cache/smollab`."
        ) from None
    if not os.access(path, os.W_OK):
        raise ConfigError(
            f"smollab's cache folder {str(path)!r} (SMOLLAB_HOME) is not writable. Point "
            "SMOLLAB_HOME at a writable folder."
        )
    return path


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The benchmark data dir: the explicit argument, else ``$SMOLLAB_DATA_DIR``, else None. An
    empty explicit value is an error (it would silently mean the environment's folder)."""
    from smollab.errors import ConfigError

    if explicit is not None and not os.fspath(explicit).strip():
        raise ConfigError(
            "data_dir is empty. Pass the folder holding the benchmark data (the one with gsm8k/, "
            "hellaswag/, ...), or leave it out (None) to use $SMOLLAB_DATA_DIR."
        )
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SMOLLAB_DATA_DIR")
    return Path(env).expanduser() if env else None
