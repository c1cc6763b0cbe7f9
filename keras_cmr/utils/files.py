"""Files written atomically (a crash leaves the old version or the new one, never half of one),
and a JSON object read with an error that names the file."""

import contextlib
import json
import os
import shutil
import tempfile


def umask():
    """The process' file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; moves it onto `path` only on success.

    The file written there is flushed to disk before the rename, and gets the mode a plain
    `open()` would give it.
    """
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]  # keras insists on the ".keras" ending
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(temporary, 0o666 & ~umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def atomic_directory(directory, marker, kind):
    """Yields an empty temporary folder beside `directory`; on success it replaces `directory`.

    An existing `directory` is replaced only when it is empty or holds the file `marker` (a
    folder of this `kind`, e.g. "a saved keras_cmr index", written before): anything else
    raises ValueError, so a user's folder is never deleted by mistake.
    """
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not os.path.isfile(os.path.join(directory, marker)):
        if not os.path.isdir(directory) or os.listdir(directory):
            raise ValueError(f"{directory!r} exists and is not {kind}: refusing to "
                             "replace it.")
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        yield temporary
        # mkdtemp makes the folder private (0700); give it the mode mkdir would.
        os.chmod(temporary, 0o777 & ~umask())
        old = None
        if os.path.exists(directory):
            old = tempfile.mkdtemp(prefix=".old-", dir=parent)
            os.rmdir(old)
            os.rename(directory, old)
        os.rename(temporary, directory)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)


def read_json_object(path, label):
    """The JSON object in `path`; errors name the file as `label` does ("no such file" etc.)."""
    try:
        with open(path) as stream:
            content = json.load(stream)
    except FileNotFoundError:
        raise ValueError(f"{label}: no such file {path!r}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{label} {path}: not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise ValueError(f"{label} {path}: expected a JSON object, got "
                         f"{type(content).__name__}")
    return content
