"""Who made a model: Ed25519 signatures over a model folder's file list, checked against trusted keys.

Why: the sha256 values in ``model.json`` and ``package.json`` detect damage, not tampering; whoever
swaps a graph can rewrite both lists, and the masks would still carry the genuine model's name. A
signature by a key the clinic trusts makes the provenance checkable.

- What is signed: the canonical JSON of ``{name: {sha256, size}}`` for every file of the model
  folder except ``signature.json`` itself (so a folder signature travels unchanged in a package);
  ``model.json`` is hashed without its ``label`` (the clinic's own display name).
- ``signature.json``: ``{"format", "signer", "key_id", "signature"}`` (base64 Ed25519 signature).
- Trusted keys: ``resources/keys/*.json`` (the vendor's public key ships with the product) and the
  clinic's own, added with ``adaqat models trust KEY.json`` (``$ADAQAT_HOME/keys/``). A key file is
  ``{"signer": NAME, "public_key": base64 of the 32 raw bytes}``; its id is the first 16 hex digits of
  the key's sha256. Private keys (PEM, mode 0600) never go into a package or the repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import AdaqatError
from .safe_weights import sha256_of

SIGNATURE_FILE = "signature.json"
CARD_FILE = "model.json"
SIGNATURE_FORMAT = "adaqat-model-signature/1"
KEY_FORMAT = "adaqat-public-key/1"


class SigningError(AdaqatError):
    """A key or signature file that cannot be used; ``str()`` is one line naming the file."""


@dataclass(frozen=True)
class SignatureStatus:
    """``state``: "trusted" (a trusted key signed exactly these files), "unknown-signer" (valid
    signature by a key that is not trusted), "unsigned", or "invalid" (the files changed after signing)."""

    state: str
    signer: str = ""
    key_id: str = ""

    @property
    def trusted(self) -> bool:
        return self.state == "trusted"

    def describe(self) -> str:
        if self.state == "trusted":
            return f"signed by {self.signer} (key {self.key_id}), verified"
        if self.state == "unknown-signer":
            return f"signed by an unknown key {self.key_id} (claims '{self.signer}'), not trusted on this computer"
        if self.state == "invalid":
            return "signature does not match the files: altered after signing"
        return "unsigned"


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def folder_files(model_dir: Path) -> dict[str, dict]:
    """{name: {sha256, size}} of the folder's plain files, ``signature.json`` left out.

    ``model.json`` counts as its content without ``label``: the annotator's own name for a model
    (``adaqat models rename``) is not provenance and must not break the signature.
    """
    files = {}
    for path in sorted(Path(model_dir).iterdir()):
        if not path.is_file() or path.is_symlink() or path.name == SIGNATURE_FILE:
            continue
        if path.name == CARD_FILE:
            data = _card_without_label(path)
            files[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        else:
            files[path.name] = {"sha256": sha256_of(path), "size": path.stat().st_size}
    return files


def _card_without_label(path: Path) -> bytes:
    raw = path.read_bytes()
    try:
        card = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return raw
    if not isinstance(card, dict):
        return raw
    card.pop("label", None)
    return json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _payload(files: dict[str, dict]) -> bytes:
    listed = {name: {"sha256": str(entry.get("sha256")), "size": int(entry.get("size"))}
              for name, entry in files.items() if name != SIGNATURE_FILE}
    return json.dumps({"format": SIGNATURE_FORMAT, "files": listed}, sort_keys=True, separators=(",", ":")).encode()


def generate_key_pair(signer: str, out_dir: Path) -> tuple[Path, Path]:
    """A new Ed25519 pair: ``NAME.private.pem`` (mode 0600) and ``NAME.public.json``; returns both paths."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in signer.lower()) or "key"
    private_path, public_path = out_dir / f"{stem}.private.pem", out_dir / f"{stem}.public.json"
    if private_path.exists() or public_path.exists():
        raise SigningError(f"{private_path}: a key of that name already exists; choose another folder or name")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public_path.write_text(json.dumps({"format": KEY_FORMAT, "signer": signer, "public_key": base64.b64encode(raw).decode(),
                                       "key_id": key_id(raw)}, indent=2) + "\n", encoding="utf-8")
    return private_path, public_path


def _private_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise SigningError(f"{path}: not a readable private key ({type(error).__name__}); "
                           "give the .private.pem file made by 'adaqat models keygen'") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key; make one with 'adaqat models keygen'")
    return key


def sign_files(files: dict[str, dict], private_key_file: Path, signer: str) -> dict:
    """The ``signature.json`` record for ``files`` signed with the key in ``private_key_file``."""
    from cryptography.hazmat.primitives import serialization

    key = _private_key(private_key_file)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"format": SIGNATURE_FORMAT, "signer": signer, "key_id": key_id(raw),
            "signature": base64.b64encode(key.sign(_payload(files))).decode()}


def sign_model_dir(model_dir: Path, private_key_file: Path, signer: str) -> Path:
    """Write ``signature.json`` into ``model_dir`` over its current files; returns its path."""
    record = sign_files(folder_files(model_dir), private_key_file, signer)
    target = Path(model_dir) / SIGNATURE_FILE
    target.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target


def user_keys_dir() -> Path:
    from .catalog import user_models_dir

    return user_models_dir().parent / "keys"


def _read_key(path: Path) -> tuple[str, bytes] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        raw = base64.b64decode(record["public_key"], validate=True)
        signer = str(record["signer"])
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return (signer, raw) if len(raw) == 32 else None


def trusted_keys(extra_dirs: tuple[Path, ...] = ()) -> dict[str, tuple[str, bytes]]:
    """{key_id: (signer, raw public key)} from the vendor folder, the user's keys folder and ``extra_dirs``."""
    from ..paths import resources_dir

    keys = {}
    for folder in (resources_dir() / "keys", user_keys_dir(), *extra_dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            found = _read_key(path)
            if found:
                keys[key_id(found[1])] = found
    return keys


def trust_key(public_key_file: Path) -> tuple[str, str]:
    """Copy a public key into the user's trusted keys; returns (signer, key id)."""
    found = _read_key(Path(public_key_file))
    if found is None:
        raise SigningError(f"{public_key_file}: not a public key file (JSON with 'signer' and 'public_key'); "
                           "give the .public.json file made by 'adaqat models keygen'")
    signer, raw = found
    folder = user_keys_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key_id(raw)}.json").write_text(
        json.dumps({"format": KEY_FORMAT, "signer": signer, "public_key": base64.b64encode(raw).decode(),
                    "key_id": key_id(raw)}, indent=2) + "\n", encoding="utf-8")
    return signer, key_id(raw)


def verify_files(files: dict[str, dict], record: dict | None, keys: dict | None = None) -> SignatureStatus:
    """The status of ``record`` (a parsed signature.json, or None) over ``files``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if record is None:
        return SignatureStatus("unsigned")
    if not isinstance(record, dict) or record.get("format") != SIGNATURE_FORMAT:
        return SignatureStatus("invalid")
    keys = trusted_keys() if keys is None else keys
    claimed = str(record.get("signer", ""))[:80]
    identity = str(record.get("key_id", ""))[:16]
    try:
        signature = base64.b64decode(str(record.get("signature", "")), validate=True)
    except ValueError:
        return SignatureStatus("invalid", claimed, identity)
    if identity not in keys:
        return SignatureStatus("unknown-signer", claimed, identity)
    signer, raw = keys[identity]
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, _payload(files))
    except InvalidSignature:
        return SignatureStatus("invalid", signer, identity)
    return SignatureStatus("trusted", signer, identity)


def read_signature(model_dir: Path) -> dict | None:
    """The folder's parsed ``signature.json``; None when absent; {} when unreadable (counts as invalid)."""
    path = Path(model_dir) / SIGNATURE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def verify_model_dir(model_dir: Path, keys: dict | None = None) -> SignatureStatus:
    """Is this folder, as it is now, signed by a trusted key?"""
    return verify_files(folder_files(model_dir), read_signature(model_dir), keys)
