"""Tools > Models…: the manager lists, activates, rolls back, exports and imports (refusing a tampered
package), and after activation the viewer redraws only the unreviewed images (pytest-qt, real models)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from core.models import catalog
from tests.shared_data import shared_file
from tests.test_app_viewer import MASK_TIMEOUT_MS, open_and_wait


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def pretrained_installed(home):
    """The generic LiteMedSAM as an installed FP32 model: it draws visibly different masks."""
    from core.models import lite_medsam
    from core.models.artifact import write_model_dir

    card = {"name": "generic-litemedsam", "version": "1", "backbone": "lite_medsam", "precision": "fp32",
            "backbone_config": {"image_size": 256}}
    return write_model_dir(home / "models" / "generic-litemedsam-1", card, lite_medsam.build("pretrained").state_dict())


@pytest.fixture
def window(qtbot, viewer_settings, tmp_path, home):
    """A window that loads its model by name, as the installed viewer does (no injected model)."""
    from app.main_window import MainWindow
    from app.services.settings import Settings

    win = MainWindow(store_path=tmp_path / "store", settings=Settings())
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    qtbot.waitUntil(lambda: win.segmentation.model_info is not None, timeout=60_000)
    yield win
    win.close()


def test_manager_activates_and_the_viewer_redraws_only_unreviewed_images(qtbot, window, pretrained_installed,
                                                                        monkeypatch, tmp_path):
    images = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[:2]
    for image in images:
        open_and_wait(qtbot, window, image)
    window.set_review("accepted")  # the second image is reviewed, the first is not
    keys = [r.key for r in window.store.list_images()]
    accepted_revision = window.store.latest_revision(window.document.key).id

    dialog = window.open_models()
    names = [r.card.name for r in dialog.records]
    assert names == ["cxr-lungs-adaqat", "generic-litemedsam"]
    assert dialog.table.item(0, 0).text() == "●" and dialog.table.item(1, 5).text() == "FP32"
    assert not dialog.delete_button.isEnabled() or dialog.selected() is None
    dialog.grab().save(str(tmp_path / "models.png"))

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kw: asked.append(args[2]) or QMessageBox.StandardButton.Yes)
    dialog.select_path(pretrained_installed)
    with qtbot.waitSignal(window.resegmented, timeout=MASK_TIMEOUT_MS * 2) as done:
        assert dialog.activate_selected()
    report = done.args[0]
    assert "1 unreviewed image" in asked[0]
    assert (report.updated, report.kept, report.failed) == (1, 0, [])
    assert catalog.active_model() == str(pretrained_installed.resolve())
    assert window.settings.model() == str(pretrained_installed.resolve())
    assert window.segmentation.model_info.name == "generic-litemedsam"
    unreviewed = [k for k in keys if window.store.get_image(k).status == "unreviewed"][0]
    assert window.store.latest_revision(unreviewed).model_name == "generic-litemedsam"
    reviewed = [k for k in keys if k != unreviewed][0]
    assert window.store.latest_revision(reviewed).id == accepted_revision  # never overwritten
    assert dialog.table.item(1, 0).text() == "●"

    # roll back: the shipped model is active again, and redraws the unreviewed image
    with qtbot.waitSignal(window.resegmented, timeout=MASK_TIMEOUT_MS * 2):
        assert dialog.roll_back() and catalog.active_model() == "default"
    assert window.store.latest_revision(unreviewed).model_name == "cxr-lungs-adaqat"
    qtbot.waitUntil(lambda: window.segmentation.model_info is not None
                    and window.segmentation.model_info.name == "cxr-lungs-adaqat", timeout=60_000)


def test_manager_exports_imports_and_refuses_a_tampered_package(qtbot, window, tmp_path, home):
    dialog = window.open_models()
    dialog.table.selectRow(0)
    assert dialog.export_selected(tmp_path / "shipped")
    package = tmp_path / "shipped.adaqat-model"
    assert "sha256" in dialog.message.text() and package.is_file()

    tampered = tmp_path / "tampered.adaqat-model"
    data = bytearray(package.read_bytes())
    data[-20000] ^= 0xFF  # inside the weights
    tampered.write_bytes(bytes(data))
    assert not dialog.import_file(tampered)
    assert "does not match" in dialog.message.text() and str(tampered) in dialog.message.text()
    assert len(dialog.records) == 1  # nothing installed

    assert dialog.import_file(package)
    assert len(dialog.records) == 2 and dialog.selected().path != dialog.records[0].path
    assert dialog.rename_selected("Ward B")
    assert any(r.card.display_name == "Ward B" for r in dialog.records)
    dialog.select_path(dialog.records[1].path)
    assert dialog.delete_button.isEnabled()
    assert dialog.delete_selected(confirm=False) and len(dialog.records) == 1
