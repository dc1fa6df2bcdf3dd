"""Persistence of a registry: the snapshot format, atomic files and the sidecar lock, the autosave thread
(:mod:`.files`); merging several writers' usage into one file (:mod:`.merge`); the usage journal
(:mod:`.journal`); and keeping a registry in step with all of them: save, load, replay (:mod:`.sync`).

This package's root re-exports the file-level names; import :mod:`.sync` (which needs the catalogue and the memory
store) where it is used.
"""

from .files import (
    FORMAT,
    FORMAT_VERSION,
    AutoSaver,
    FileStamp,
    atomic_write_text,
    backup_path,
    decode_entries,
    decode_history,
    decode_meta,
    encode_entries,
    file_stamp,
    holds_save,
    keep_backup,
    locked,
    read_stamped,
    remove_leftovers,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "AutoSaver",
    "FileStamp",
    "atomic_write_text",
    "backup_path",
    "decode_entries",
    "decode_history",
    "decode_meta",
    "encode_entries",
    "file_stamp",
    "holds_save",
    "keep_backup",
    "locked",
    "read_stamped",
    "remove_leftovers",
]
