"""Where the PACS is, who we are on the network, and who may send us images.

Defaults are the safe ones: the listener binds to localhost only (a reading station is not a server
until the user opens it up) and accepts no calling AE title at all until one is listed, so an
unconfigured listener can receive nothing from anyone. The GUI keeps these values in its settings;
``adaqat listen`` takes them from its options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

LOCALHOST = "127.0.0.1"
DEFAULT_PACS_PORT = 4242  # Orthanc's; most PACS use 104 or 11112
DEFAULT_OUR_PORT = 11112
AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # 1-16 printable ASCII characters, no backslash


@dataclass(frozen=True)
class PacsConfig:
    pacs_ae: str = "ORTHANC"
    pacs_host: str = LOCALHOST
    pacs_port: int = DEFAULT_PACS_PORT
    our_ae: str = "ADAQAT"
    our_port: int = DEFAULT_OUR_PORT
    listen_host: str = LOCALHOST  # 0.0.0.0 only when the user opens the listener to the network
    accepted_calling_aes: tuple[str, ...] = field(default_factory=tuple)  # none: nobody may send to us
    connect_timeout_s: float = 5.0  # TCP connect
    timeout_s: float = 30.0  # association, each DIMSE message, and network silence
    send_on_accept: bool = False  # send the SEG and the lung-area report when a mask is accepted
    tls_ca_file: str = ""  # set: talk to the PACS over TLS, trusting only this CA (PEM)
    tls_cert_file: str = ""  # our client certificate (PEM), for a PACS that asks for one
    tls_key_file: str = ""  # its private key (PEM)

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca_file.strip())

    @property
    def label(self) -> str:
        """How messages name the PACS: ``PACS ORTHANC (127.0.0.1:4242)``."""
        return f"PACS {self.pacs_ae} ({self.pacs_host}:{self.pacs_port}{', TLS' if self.uses_tls else ''})"

    def with_changes(self, **changes) -> PacsConfig:
        return replace(self, **changes)

    def problems(self) -> list[str]:
        """What is wrong with these settings, one line each (empty when they can be used)."""
        out = []
        for name, value in (("PACS AE title", self.pacs_ae), ("our AE title", self.our_ae)):
            if not AE_TITLE.match(value.strip() or ""):
                out.append(f"{name} {value!r} is not a valid AE title (1-16 ASCII characters, no backslash)")
        for name, value in (("PACS port", self.pacs_port), ("our port", self.our_port)):
            if not 0 < int(value) < 65536:
                out.append(f"{name} {value} is not between 1 and 65535")
        if not self.pacs_host.strip():
            out.append("the PACS host is empty; enter its name or IP address")
        for title in self.accepted_calling_aes:
            if not AE_TITLE.match(title):
                out.append(f"accepted calling AE title {title!r} is not a valid AE title")
        for name, value in (("TLS CA file", self.tls_ca_file), ("TLS certificate", self.tls_cert_file),
                            ("TLS key", self.tls_key_file)):
            if value.strip() and not Path(value).expanduser().is_file():
                out.append(f"{name} {value} does not exist; choose the PEM file or clear the field")
        if bool(self.tls_cert_file.strip()) != bool(self.tls_key_file.strip()):
            out.append("a TLS client certificate needs its key (and a key its certificate)")
        if (self.tls_cert_file.strip() or self.tls_key_file.strip()) and not self.uses_tls:
            out.append("a TLS client certificate needs the CA file that the PACS certificate is checked against")
        if self.connect_timeout_s <= 0 or self.timeout_s <= 0:
            out.append("timeouts must be more than 0 seconds")
        return out


def parse_ae_list(text: str) -> tuple[str, ...]:
    """``"ORTHANC, PACS2"`` -> ("ORTHANC", "PACS2"): commas or spaces separate, duplicates dropped."""
    seen: list[str] = []
    for part in re.split(r"[,\s]+", text or ""):
        if part and part not in seen:
            seen.append(part)
    return tuple(seen)
