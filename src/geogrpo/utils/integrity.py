"""Files from disk are checked before they are used, and outputs are checked before work starts.

* :func:`verify_manifest`: a model folder's ``manifest.json`` lists the sha256 of every weight
  file (``{"sha256": {"transformer/model.safetensors": "<hex>", ...}}``). Every listed file must
  exist and match, and no weight file may be there unlisted. A mismatch is an
  :class:`IntegrityError` naming the file, the two digests and the way to skip the check for a
  user's own edits (``verify=False`` on the loaders, ``--no-verify-weights`` on the command
  line, ``model.verify_weights: false`` in a training config).
* :func:`load_json` / :func:`load_safetensors`: a missing, non-JSON, truncated or corrupt file is
  an error that names it and says what to do, not the parser's bare message.
* :func:`check_output_dir` / :func:`check_output_file`: an ``--out`` that is a file, unwritable
  or impossible is refused before any work, with a message that names it.

Digests are cached per (path, inode, size, mtime, ctime) within a process, so loading the same
shipped model again costs a ``stat`` (ctime catches a rewrite whose mtime was put back). A file
modified within the last two seconds is never cached: its times may not have ticked yet after a
rewrite of the same size (git's "racy clean" rule).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from geogrpo.utils.io import file_sha256

MANIFEST = "manifest.json"
# Files a model loader may read weights from: each must be listed in the folder's manifest (a
# pretraining's ``.pt`` train state and cached data are never loaded as a model).
WEIGHT_SUFFIXES = (".safetensors", ".bin")
SKIP_HINT = (
    "if you changed these weights on purpose, load them unverified with verify=False, "
    "--no-verify-weights or model.verify_weights=false (or rewrite the manifest's sha256)"
)
_RACY_S = 2.0

_verify_default: ContextVar[bool] = ContextVar("geogrpo_verify_weights", default=True)
_digests: dict[tuple[str, int, int, int, int], str] = {}


class IntegrityError(ValueError):
    """A file on disk is not what its manifest or format says it is; the message names it."""


class OutputPathError(ValueError):
    """An output path that cannot be written; raised before any work starts."""


# -- the verification switch ----------------------------------------------------------------------


def verification_enabled(verify: bool | None = None) -> bool:
    """``verify`` when given, else the process default (on unless :func:`weight_verification`
    turned it off around the current call)."""
    return _verify_default.get() if verify is None else bool(verify)


@contextlib.contextmanager
def weight_verification(enabled: bool | None) -> Iterator[None]:
    """Within the block, loaders called without ``verify=`` check (``True``) or skip (``False``)
    their manifests; ``None`` leaves the setting as it is. ``--no-verify-weights`` uses this."""
    if enabled is None:
        yield
        return
    token = _verify_default.set(bool(enabled))
    try:
        yield
    finally:
        _verify_default.reset(token)


# -- digests --------------------------------------------------------------------------------------


def cached_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, cached per (resolved path, inode, size, mtime, ctime) in this process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _digests:
        return _digests[key]
    digest = file_sha256(path)
    if time.time() - max(st.st_mtime, st.st_ctime) > _RACY_S:  # fresh files may change unseen
        _digests[key] = digest
    return digest


def clear_digest_cache() -> None:
    _digests.clear()


# -- manifests ------------------------------------------------------------------------------------


def load_json(path: str | os.PathLike[str], what: str = "file", hint: str = "") -> Any:
    """Parsed JSON of ``path``; a missing or unparsable file is an error naming it and ``what``
    it should be (and ``hint``: what to do)."""
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the {what}){tail}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise IntegrityError(f"{path}: not a text file, so not a valid {what}{tail}") from None
    except json.JSONDecodeError as err:
        raise IntegrityError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}), so not "
            f"a valid {what}{tail}"
        ) from None


def load_json_object(path: str | os.PathLike[str], what: str = "file", hint: str = "") -> dict:
    """:func:`load_json` that must be a JSON object (``{...}``)."""
    data = load_json(path, what, hint)
    if not isinstance(data, dict):
        tail = f"; {hint}" if hint else ""
        raise IntegrityError(
            f"{path}: holds a JSON {type(data).__name__}, not an object, so not a valid {what}"
            f"{tail}"
        )
    return data


def read_manifest_digests(folder: str | os.PathLike[str]) -> dict[str, str]:
    """The ``sha256`` table of ``folder/manifest.json``, checked for shape."""
    path = Path(folder) / MANIFEST
    hint = f"restore the folder, or {SKIP_HINT}"
    manifest = load_json_object(path, "model manifest", hint)
    table = manifest.get("sha256")
    if not isinstance(table, dict) or not table:
        raise IntegrityError(
            f"{path}: has no 'sha256' table of weight files and their digests; {hint}"
        )
    for rel, digest in table.items():
        if not (isinstance(digest, str) and len(digest) == 64 and _is_hex(digest)):
            raise IntegrityError(f"{path}: sha256 of {rel!r} is not a 64-digit hex digest; {hint}")
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts:
            raise IntegrityError(
                f"{path}: lists {rel!r}, a path outside its folder; a manifest lists files under "
                "its own folder only"
            )
    return table


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def weight_files(folder: str | os.PathLike[str]) -> list[str]:
    """Relative paths of the weight files under ``folder`` (see :data:`WEIGHT_SUFFIXES`)."""
    folder = Path(folder)
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.suffix in WEIGHT_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def weight_digests(folder: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of every weight file under ``folder``, by relative path: a manifest's table."""
    return {rel: file_sha256(Path(folder) / rel) for rel in weight_files(folder)}


def verify_manifest(
    folder: str | os.PathLike[str], *, verify: bool | None = None, required: bool = True
) -> bool:
    """Check every weight file of ``folder`` against ``folder/manifest.json``.

    Each listed file must exist and its sha256 match; a weight file that is not listed is an
    error too. A part of a model (a policy's ``text_encoder/``) loaded on its own is checked
    against its parent's manifest, which lists its files. Without a manifest: an error when
    ``required``, else nothing is checked (a diffusers folder downloaded from the Hub has
    none). Returns whether a check ran; ``verify=False`` (or :func:`weight_verification`
    ``(False)`` around the call) skips it."""
    if not verification_enabled(verify):
        return False
    folder = Path(folder)
    root, prefix = folder, ""
    if not (folder / MANIFEST).is_file():
        parent = folder.parent
        listed = (parent / MANIFEST).is_file() and any(
            rel.startswith(f"{folder.name}/") for rel in read_manifest_digests(parent)
        )
        if listed:
            root, prefix = parent, f"{folder.name}/"
        elif not required:
            return False
        else:
            raise IntegrityError(
                f"{folder}: no {MANIFEST}, so its weights cannot be checked; save models with "
                f"save_pretrained (it writes one), or {SKIP_HINT}"
            )
    table = {
        rel[len(prefix) :]: digest
        for rel, digest in read_manifest_digests(root).items()
        if rel.startswith(prefix)
    }
    manifest = root / MANIFEST
    for rel, expected in sorted(table.items()):
        path = folder / rel
        if not path.is_file():
            raise IntegrityError(
                f"{path}: missing; {manifest} lists it. Restore the folder (reinstall the package "
                "for a shipped model, re-save or re-export your own)"
            )
        actual = cached_sha256(path)
        if actual != expected.lower():
            raise IntegrityError(
                f"{path}: sha256 {actual[:12]}... does not match {expected[:12]}... recorded in "
                f"{manifest}: the file is corrupt, truncated or was changed. Restore it "
                f"(reinstall the package for a shipped model); {SKIP_HINT}"
            )
    unlisted = [rel for rel in weight_files(folder) if rel not in table]
    if unlisted:
        raise IntegrityError(
            f"{folder / unlisted[0]}: a weight file that {manifest} does not list"
            + (f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else "")
            + f"; remove it, or {SKIP_HINT}"
        )
    return True


def write_digests_manifest(
    folder: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Write ``folder/manifest.json`` with the sha256 of every weight file under ``folder``
    (plus ``extra`` fields); what ``save_pretrained`` calls after writing the weights."""
    from geogrpo.utils.io import atomic_write_json

    return atomic_write_json(
        Path(folder) / MANIFEST, {**(extra or {}), "sha256": weight_digests(folder)}
    )


def load_safetensors(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, Any]:
    """``safetensors.torch.load_file`` whose failure names the file and what to do."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; restore or re-save the model folder")
    try:
        return load_file(str(path), device=device)
    except Exception as err:  # SafetensorError, OSError, ...: name the file
        raise IntegrityError(
            f"{path}: not a readable safetensors file ({err}); it is truncated or corrupt: "
            "restore it (reinstall the package for a shipped model, re-save your own)"
        ) from None


# -- outputs --------------------------------------------------------------------------------------


def check_output_dir(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Create the output folder ``path`` (with its parents) and check that a file can be written
    in it, before any work; an :class:`OutputPathError` names the flag and the path otherwise."""
    folder = Path(path)
    if str(path) == "":
        raise OutputPathError(f"{flag}: empty; name an output folder")
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{flag}: {folder} is a file, not a folder; choose a folder")
    for parent in folder.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputPathError(
                f"{flag}: {folder} cannot be created: {parent} is a file, not a folder"
            )
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(
            f"{flag}: cannot create {folder} ({err.strerror or err}); choose a folder you can "
            "write to"
        ) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".geogrpo-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        for p in created:  # leave nothing behind that this check made
            with contextlib.suppress(OSError):
                p.rmdir()
        raise OutputPathError(
            f"{flag}: cannot write in {folder} ({err.strerror or err}); choose a folder you can "
            "write to"
        ) from None
    return folder


def check_output_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Check that the output file ``path`` can be written (its folder is created and written to
    by :func:`check_output_dir`; an existing ``path`` must be a writable file), before any work."""
    file = Path(path)
    if str(path) == "" or file.name in ("", ".", ".."):
        raise OutputPathError(f"{flag}: {str(path)!r} names no file; name an output file")
    if file.is_dir():
        raise OutputPathError(f"{flag}: {file} is a folder; name a file, e.g. {file / 'out'}")
    check_output_dir(file.parent if str(file.parent) else ".", flag)
    if file.exists() and not os.access(file, os.W_OK):
        raise OutputPathError(f"{flag}: {file} exists and is not writable")
    return file


def inside(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder / name`` when it stays inside ``folder`` (a name from user input: a prompt, a
    path name); an error otherwise."""
    base = Path(folder).resolve()
    target = (base / name).resolve()
    if name in ("", ".", "..") or base not in target.parents:
        raise OutputPathError(f"{name!r}: not a file name inside {folder}")
    return Path(folder) / name
