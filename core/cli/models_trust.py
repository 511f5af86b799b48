"""``adaqat models keygen / trust / sign`` and the signer shown by ``import`` and the model list.

Why separate: signing is about who may vouch for a model (core.models.signing); the rest of
``adaqat models`` is about which model runs.
"""

from __future__ import annotations

from pathlib import Path

from ..models.signing import generate_key_pair, sign_model_dir, trust_key, verify_model_dir


def add_parsers(actions) -> None:
    keygen = actions.add_parser("keygen", help="make an Ed25519 key pair for signing model packages")
    keygen.add_argument("--signer", required=True, help="who signs (e.g. the clinic's name)")
    keygen.add_argument("--out", required=True, help="folder for NAME.private.pem (keep it private) and NAME.public.json")
    trust = actions.add_parser("trust", help="trust packages signed by this public key (NAME.public.json)")
    trust.add_argument("key", help="the .public.json file")
    sign = actions.add_parser("sign", help="sign a model folder with a private key (writes signature.json)")
    sign.add_argument("model", help="a model folder")
    sign.add_argument("--key", required=True, help="the .private.pem file")
    sign.add_argument("--signer", required=True, help="the name shown as the signer")


def run(args, model_folder) -> bool:
    """Handle the signing actions; False when ``args.action`` is not one of them."""
    if args.action == "keygen":
        private, public = generate_key_pair(args.signer, Path(args.out))
        print(f"private key: {private} (keep it secret; never put it in a package)\npublic key: {public} "
              f"(give it to the clinics: adaqat models trust {public.name})")
    elif args.action == "trust":
        signer, identity = trust_key(Path(args.key))
        print(f"trusted: packages signed by {signer} (key {identity})")
    elif args.action == "sign":
        folder = model_folder(args.model)
        sign_model_dir(folder, Path(args.key), args.signer)
        print(f"signed: {folder} ({verify_model_dir(folder).describe()})")
    else:
        return False
    return True


def signer_line(folder: Path) -> str:
    return verify_model_dir(folder).describe()
