"""Open an association with the configured PACS, turning every way it can fail into a ``PacsError``.

pynetdicom reports a refused association, a PACS that is down and one that does not answer in time
the same way (an association that is not established); the three are told apart here so the user
reads what to fix. pynetdicom's own log lines (which can quote dataset contents, identifiers
included) are held at CRITICAL unless the application configured that logger itself.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

from .config import PacsConfig
from .errors import PacsError


def quiet_pynetdicom() -> None:
    logger = logging.getLogger("pynetdicom")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


def make_ae(config: PacsConfig):
    """An ApplicationEntity with our AE title and the configured timeouts."""
    from pynetdicom import AE

    quiet_pynetdicom()
    ae = AE(ae_title=config.our_ae)
    ae.connection_timeout = config.connect_timeout_s
    ae.acse_timeout = config.timeout_s
    ae.dimse_timeout = config.timeout_s
    ae.network_timeout = config.timeout_s
    return ae


@contextlib.contextmanager
def associated(config: PacsConfig, ae, what: str, **options) -> Iterator[object]:
    """An established association with the PACS (released on exit, aborted if the block raised).

    ``what`` names the operation and study for the messages ("search", "retrieve of study 20240101 CHEST").
    ``options`` go to ``AE.associate`` (``ext_neg``, ``evt_handlers``).
    """
    problems = config.problems()
    if problems:
        raise PacsError(f"{config.label}: {what}: {problems[0]}; fix it in Settings > PACS")
    from pynetdicom import evt

    opened: list[bool] = []  # a TCP connection was made: tells "not reachable" from "aborted" below
    handlers = list(options.pop("evt_handlers", [])) + [(evt.EVT_CONN_OPEN, lambda _event: opened.append(True))]
    started = time.monotonic()
    try:
        assoc = ae.associate(config.pacs_host, int(config.pacs_port), ae_title=config.pacs_ae,
                             bind_address=_local_bind(config.pacs_host), evt_handlers=handlers,
                             tls_args=tls_args(config), **options)
    except ssl.SSLError as error:
        raise PacsError(f"{config.label}: {what}: the TLS files could not be used ({error.reason or error}); "
                        "check the CA, certificate and key in Settings > PACS") from None
    except (OSError, ValueError, RuntimeError) as error:
        raise PacsError(f"{config.label}: {what}: could not connect ({error}); check the host and port") from None
    if assoc.is_rejected:
        raise PacsError(
            f"{config.label}: {what}: association rejected; ask the PACS administrator to allow our AE title "
            f"{config.our_ae!r} from this computer"
        )
    if opened and not assoc.is_established and time.monotonic() - started >= config.timeout_s * 0.9:
        raise PacsError(
            f"{config.label}: {what}: connected, but no answer to the association request within "
            f"{config.timeout_s:g} s; the PACS is overloaded or this port is not a DICOM service"
        )
    if assoc.is_aborted and opened:
        raise PacsError(f"{config.label}: {what}: the PACS aborted the association; check our AE title and its logs")
    if not assoc.is_established and config.uses_tls:
        raise PacsError(
            f"{config.label}: {what}: not reachable over TLS (connection refused, no answer within "
            f"{config.connect_timeout_s:g} s, or a certificate the CA file does not trust); check the PACS, "
            "the port and the CA file"
        )
    if not assoc.is_established:
        raise PacsError(
            f"{config.label}: {what}: not reachable (connection refused or no answer within "
            f"{config.connect_timeout_s:g} s); the PACS is down or the host/port are wrong"
        )
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()


def tls_args(config: PacsConfig):
    """(SSLContext, server name) for pynetdicom when TLS is configured, else None.

    The PACS certificate must chain to the configured CA and name the host we dial (an IP address
    matches an IP subjectAltName); our certificate is presented when one is set.
    """
    if not config.uses_tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(Path(config.tls_ca_file).expanduser()))
    if config.tls_cert_file.strip():
        context.load_cert_chain(str(Path(config.tls_cert_file).expanduser()), str(Path(config.tls_key_file).expanduser()))
    return context, config.pacs_host


def _local_bind(host: str) -> tuple[str, int]:
    """A PACS on this computer is reached from the loopback address; any other from the default route."""
    return (host, 0) if host in ("127.0.0.1", "::1", "localhost") else ("", 0)


def check_alive(assoc, config: PacsConfig, what: str) -> None:
    """Raise if the association dropped during an operation (the PACS went away or timed out)."""
    if not assoc.is_established:
        raise PacsError(
            f"{config.label}: {what}: the connection was lost or timed out after {config.timeout_s:g} s; try again"
        )
