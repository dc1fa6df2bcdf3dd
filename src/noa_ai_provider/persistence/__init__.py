"""Persistence of a registry: the snapshot format, atomic files and the sidecar lock, the autosave thread
(:mod:`.files`); merging several writers' usage into one file (:mod:`.merge`); the usage journal
(:mod:`.journal`); and keeping a registry in step with all of them: save, load, replay (:mod:`.sync`).

This package's root re-exports the file-level names; import :mod:`.sync` (which needs the catalogue and the memory
store) where it is used.
"""

from . import files
from .files import *  # noqa: F403 - the file-level names, importable from here as before the package

__all__ = files.__all__
