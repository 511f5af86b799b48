"""A model as one file, for moving it between clinic PCs: export, and a verified import.

The package is an uncompressed tar (weights do not compress) holding the model folder's plain files
and ``package.json``, which lists each file's sha256 and size. Import never extracts blindly: each
member must be a plain file with a bare name listed in ``package.json``; the bytes are checked against
that list, the card is validated, the weights' sha256 is checked against the card, and the model is
loaded once (its INT8 layers and backbone must be ones this version knows) before it is installed.
A tampered or incompatible package is refused with the reason, and nothing is installed.

Before anything is extracted, the members' declared sizes must fit inside the package file itself
(an uncompressed tar holds every byte it lists; a sparse member could otherwise expand an 18 MiB
file to gigabytes) and in the free space of the models folder. After extraction the package's
Ed25519 signature (``core.models.signing``) must be by a trusted key: an unsigned package or one
signed by an unknown key is installed only with explicit consent (``allow_unsigned``: the CLI's
``--allow-unsigned``, the viewer's confirmation), and one whose files changed after signing never.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from .card import CARD_FILE, ModelCardError, read_model_card, regular_file
from .errors import ModelLoadError
from .safe_weights import sha256_of
from .signing import SIGNATURE_FILE, SignatureStatus, folder_files, sign_files, verify_model_dir

PACKAGE_FORMAT = "adaqat-model-package/1"
PACKAGE_MANIFEST = "package.json"
PACKAGE_SUFFIX = ".adaqat-model"
MAX_MEMBER_BYTES = 8 * 2**30  # SAM ViT-H in FP32 is 2.6 GB; nothing real comes near this
CHUNK = 2**20


class PackageError(ModelLoadError):
    """A model package that cannot be written or must not be installed."""


class UntrustedPackageError(PackageError):
    """Unsigned, or signed by a key this computer does not trust: installable only with consent."""

    def __init__(self, message: str, status: SignatureStatus) -> None:
        super().__init__(message)
        self.status = status


def export_package(model_dir: str | Path, out_file: str | Path, sign_key: str | Path | None = None,
                   signer: str = "") -> tuple[Path, str]:
    """Write ``model_dir`` as one package file; returns (file, sha256 of the file).

    ``sign_key`` (a private key file) signs the package as ``signer``; without it, the folder's own
    ``signature.json`` (if any, e.g. the vendor's on the bundled model) travels in the package.
    """
    from .artifact import verified_weights_path

    model_dir, out_file = Path(model_dir), Path(out_file)
    card = read_model_card(model_dir)
    verified_weights_path(model_dir, card)
    if out_file.suffix != PACKAGE_SUFFIX:
        out_file = out_file.with_name(out_file.name + PACKAGE_SUFFIX)
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and not p.is_symlink())
    listed = {p.name: {"sha256": sha256_of(p), "size": p.stat().st_size} for p in files}
    extra: dict[str, bytes] = {}
    if sign_key is not None:
        files = [p for p in files if p.name != SIGNATURE_FILE]
        listed.pop(SIGNATURE_FILE, None)
        record = sign_files(folder_files(model_dir), Path(sign_key), signer or card.name)
        data = (json.dumps(record, indent=2) + "\n").encode("utf-8")
        extra[SIGNATURE_FILE] = data
        listed[SIGNATURE_FILE] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = {"format": PACKAGE_FORMAT, "model": {"name": card.name, "version": card.version}, "files": listed}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{out_file.name}.", suffix=".partial", dir=out_file.parent)
    os.close(handle)
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            data = json.dumps(manifest, indent=2).encode("utf-8")
            info = tarfile.TarInfo(PACKAGE_MANIFEST)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
            for path in files:
                info = tarfile.TarInfo(path.name)
                info.size, info.mode = path.stat().st_size, 0o644
                with path.open("rb") as source:
                    archive.addfile(info, source)
            for name, data in extra.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
        os.replace(partial, out_file)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return out_file, sha256_of(out_file)


def _read_manifest(archive: tarfile.TarFile, source: Path) -> dict:
    try:
        member = archive.getmember(PACKAGE_MANIFEST)
        raw = archive.extractfile(member).read(2**20) if member.isfile() else b""
        manifest = json.loads(raw.decode("utf-8"))
    except (KeyError, AttributeError, UnicodeDecodeError, json.JSONDecodeError):
        raise PackageError(f"{source}: not a model package (no readable {PACKAGE_MANIFEST})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != PACKAGE_FORMAT or not isinstance(files, dict) or CARD_FILE not in files:
        raise PackageError(f"{source}: not an {PACKAGE_FORMAT} package; export it again with this version")
    return manifest


def _check_member(member: tarfile.TarInfo, files: dict, source: Path) -> dict:
    name = member.name
    if name == PACKAGE_MANIFEST:
        return {}
    if not member.isfile() or member.issparse():
        raise PackageError(f"{source}: member '{name}' is not a plain file (a link, folder or sparse file); "
                           "package refused")
    if "/" in name or "\\" in name or name.startswith(".") or name not in files:
        raise PackageError(f"{source}: unexpected member '{name}'; the package was altered, refused")
    expected = files[name]
    if not isinstance(expected, dict) or expected.get("size") != member.size or member.size > MAX_MEMBER_BYTES:
        raise PackageError(f"{source}: '{name}' has the wrong size; the package was altered or cut short")
    return expected


def _check_sizes(members: list[tarfile.TarInfo], source: Path, target_root: Path) -> None:
    """Before extracting: the members must fit in the package file and on the disk."""
    declared = sum(max(member.size, 0) for member in members)
    size = source.stat().st_size
    if declared > size:
        raise PackageError(f"{source}: its members claim {declared / 2**20:.1f} MiB, more than the "
                           f"{size / 2**20:.1f} MiB file holds; the package was altered, refused")
    free = shutil.disk_usage(target_root).free
    if declared + 64 * 2**20 > free:
        raise PackageError(f"{source}: needs {declared / 2**20:.0f} MiB, only {free / 2**20:.0f} MiB free in "
                           f"{target_root}; free disk space and import again")


def _unpack(archive: tarfile.TarFile, manifest: dict, staging: Path, source: Path) -> None:
    files = manifest["files"]
    seen = set()
    members = archive.getmembers()
    for member in members:
        _check_member(member, files, source)
    _check_sizes(members, source, staging.parent)
    for member in members:
        expected = _check_member(member, files, source)
        if not expected:
            continue
        if member.name in seen:
            raise PackageError(f"{source}: '{member.name}' appears twice; package refused")
        seen.add(member.name)
        digest = hashlib.sha256()
        with archive.extractfile(member) as data, (staging / member.name).open("xb") as out:
            for block in iter(lambda: data.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != expected.get("sha256"):
            raise PackageError(f"{source}: sha256 of '{member.name}' does not match the package list; "
                               "the file was altered or damaged, refused")
    missing = sorted(set(files) - seen)
    if missing:
        raise PackageError(f"{source}: the package lacks {', '.join(missing)}; it was cut short, refused")


def import_package(package_file: str | Path, expected_sha256: str | None = None, allow_unsigned: bool = False) -> Path:
    """Verify a package and install its model into the user's models folder; returns the folder.

    ``expected_sha256`` (given by whoever sent the file) is checked against the whole file first.
    UntrustedPackageError when the package is unsigned or its signer is not trusted and
    ``allow_unsigned`` is False; PackageError when its signature does not match its files.
    """
    from .artifact import verified_weights_path
    from .catalog import install_label, user_models_dir
    from ..compute import torch_available
    from .loading import load_model_dir

    source = Path(package_file)
    try:
        regular_file(source, "model package")
    except ModelCardError as error:
        raise PackageError(str(error).replace(" from the model folder", "")) from None
    if expected_sha256 and sha256_of(source) != expected_sha256.strip().lower():
        raise PackageError(f"{source}: sha256 does not match the one given; the file is not the one exported")
    target_root = user_models_dir()
    target_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import.", dir=target_root))
    try:
        try:
            with tarfile.open(source, "r:") as archive:
                manifest = _read_manifest(archive, source)
                _unpack(archive, manifest, staging, source)
        except (tarfile.TarError, EOFError) as error:
            raise PackageError(f"{source}: not a readable model package ({type(error).__name__}); "
                               "it was cut short or is another kind of file") from None
        try:
            card = read_model_card(staging)
            verified_weights_path(staging, card)
            load_model_dir(staging)  # every layer and format must be one this version can run
            if torch_available():  # the ONNX route reads only its graphs: where torch is, check every INT8 layer too
                load_model_dir(staging, runtime="torch")
        except ModelLoadError as error:
            reason = str(error).replace(str(staging / CARD_FILE), "model.json").replace(str(staging) + os.sep, "")
            raise PackageError(f"{source}: refused: {reason}") from None
        status = _signature_status(staging, source)
        if not status.trusted and not allow_unsigned:
            raise UntrustedPackageError(
                f"{source}: {status.describe()}; install it only if you trust where it came from "
                "(adaqat models import FILE --allow-unsigned)", status)
        target = target_root / install_label(card)
        if (target / CARD_FILE).is_file():
            if read_model_card(target).weights_sha256 == card.weights_sha256:
                return target  # the same model is already installed
            raise PackageError(f"{source}: a different model named {card.name} {card.version} is already "
                               f"installed ({target}); delete or rename that one first")
        staging.chmod(0o755)
        os.replace(staging, target)
        staging = None
        return target
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _signature_status(staging: Path, source: Path) -> SignatureStatus:
    """The package's signature over its extracted (already verified) files; a mismatch is always refused."""
    status = verify_model_dir(staging)
    if status.state == "invalid":
        raise PackageError(f"{source}: its signature does not match its files; the package was altered after "
                           "it was signed, refused")
    return status
