"""DICOM over TLS against a real Orthanc with DICOM TLS on: search works when the PACS certificate
chains to the configured CA, and is refused in one line when it does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from core.pacs import PacsConfig, PacsError
from core.pacs.query import StudyQuery, find_studies
from tests.pacs_orthanc import LOOPBACK, ORTHANC_AE, OUR_AE, OrthancServer, dicom_uids, loopback, our_port  # noqa: F401
from tests.shared_data import shared_file


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (certificate, key) for the test."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=folder)
    return folder / f"{name}.crt", folder / f"{name}.key"


def make_server_cert(folder: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP subjectAltName) signed by ``ca``."""
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=folder)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=folder)
    return folder / "server.crt", folder / "server.key"


@pytest.fixture
def tls_orthanc(tmp_path, our_port, loopback):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    certs = tmp_path / "certs"
    ca = make_ca(certs, "testca")
    cert, key = make_server_cert(certs, ca)
    server = OrthancServer(tmp_path / "orthanc", our_port, extra={
        "DicomTlsEnabled": True, "DicomTlsCertificate": str(cert), "DicomTlsPrivateKey": str(key),
        "DicomTlsTrustedCertificates": str(ca[0]), "DicomTlsRemoteCertificateRequired": False,
    })
    server.start()
    try:
        server.upload(shared_file("dicom", "RG1_UNCR.dcm"))
        yield server, ca[0], certs
    finally:
        server.stop()


def test_search_over_tls_with_the_right_ca(tls_orthanc, our_port):
    server, ca_file, _ = tls_orthanc
    config = PacsConfig(pacs_ae=ORTHANC_AE, pacs_host=LOOPBACK, pacs_port=server.dicom_port, our_ae=OUR_AE,
                        our_port=our_port, tls_ca_file=str(ca_file), connect_timeout_s=5, timeout_s=20)
    study_uid, _ = dicom_uids(shared_file("dicom", "RG1_UNCR.dcm"))
    assert [s.study_uid for s in find_studies(config, StudyQuery())] == [study_uid]


def test_a_pacs_certificate_from_another_ca_is_refused_in_one_line(tls_orthanc, our_port):
    server, _, certs = tls_orthanc
    other_ca, _ = make_ca(certs / "other", "otherca")
    config = PacsConfig(pacs_ae=ORTHANC_AE, pacs_host=LOOPBACK, pacs_port=server.dicom_port, our_ae=OUR_AE,
                        our_port=our_port, tls_ca_file=str(other_ca), connect_timeout_s=5, timeout_s=10)
    with pytest.raises(PacsError) as caught:
        find_studies(config, StudyQuery())
    message = str(caught.value)
    assert message.startswith(f"PACS ORTHANC (127.0.0.1:{server.dicom_port}, TLS): search: not reachable over TLS")
    assert "\n" not in message


def test_tls_settings_are_checked_before_connecting(tmp_path):
    config = PacsConfig(tls_ca_file=str(tmp_path / "missing-ca.pem"))
    assert any("TLS CA file" in p and "does not exist" in p for p in config.problems())
    half = PacsConfig(tls_ca_file=__file__, tls_cert_file=__file__)
    assert any("needs its key" in p for p in half.problems())
