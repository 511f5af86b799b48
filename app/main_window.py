"""The main window: wires the worklist, canvas, panels, actions and background services together.

It holds no engine logic: files are read by core.io (in the I/O thread), masks come from the
Predictor (in the model thread), and every mask and review goes to the annotation store at once.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QPixmap
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMessageBox, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from core.io.policy import not_chest
from core.review.lung_sides import side_layout
from core.review.measurements import measure
from core.review.quality_flags import images_that_teach_most
from core.review.status import status_after_edit
from core.safe_text import printable
from core.segment.resegment import unreviewed_keys
from core.store import AnnotationStore, StoreConflict, StoreError, image_ref

from .dialogs import help_dialogs
from .dialogs.conflict_dialog import KEEP_BOTH, RELOAD, ask_conflict
from .actions import ToolbarWidgets, WindowActions, build_menus, build_toolbar
from .canvas.canvas import ImageCanvas
from .editing.document import ImageDocument
from .export_actions import ExportActions
from .pacs_link import PacsLink
from .first_paint import AfterFirstPaint
from .icons import icon
from .panels.info_panel import InfoPanel
from .editing.mask_controller import MaskController
from .panels.measurements_panel import MeasurementsPanel
from .panels.overlay_panel import OverlayPanel
from .panels.problems_panel import ProblemsPanel
from .canvas.qimage import gray_to_qimage
from .panels.review_panel import ReviewPanel
from .mask_quality_link import MaskQualityLink
from .services.active_model_watch import ActiveModelWatch
from .services.precompute import PrecomputeQueue
from .services.segmentation_service import SegmentationService
from .services.settings import Settings
from .dialogs.settings_dialog import SettingsDialog
from .panels.status_bar import ViewerStatusBar
from .services.study_service import StudyService
from .canvas.preset_box import PresetBox
from .canvas.window_level import WindowLevel
from .panels.worklist import WorklistPanel

if TYPE_CHECKING:  # imported when first opened: they pull in the training stack, which a reader's start must not wait for
    from .dialogs import models_dialog, training_dialog

log = logging.getLogger(__name__)


SOURCE_TEXT = {"model": "automatic (model)", "prompt": "model with your prompts", "edit": "edited by reader"}


class MainWindow(QMainWindow):
    image_shown = Signal(str)  # image key
    mask_shown = Signal(str)  # image key
    open_failed_for_screenshot = Signal(str)
    resegmented = Signal(object)  # ResegmentReport

    def __init__(self, model_name: str | None = None, store_path: Path | None = None, loaded_model=None,
                 settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("AdaQAT Viewer")
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self._store_problem = ""
        self.store = self._open_store(store_path or self.settings.store_path())
        self.document = ImageDocument(self.store, self.settings.reader_name(), self)
        self._activate_batch: int | None = None
        self._opening_key: str | None = None
        self._closed = False
        self.training: training_dialog.TrainingDialog | None = None
        self.models_dialog: models_dialog.ModelsDialog | None = None

        self.canvas = ImageCanvas(self)
        self.setCentralWidget(self.canvas)
        self.window_level = WindowLevel(self)

        self.worklist = WorklistPanel()
        self.problems = ProblemsPanel()
        self.info = InfoPanel()
        self.overlay_panel = OverlayPanel(self.settings.overlay_opacity())
        self.measurements = MeasurementsPanel()
        self.review = ReviewPanel()
        self._build_docks()

        self.acts = WindowActions(self)
        self.undo_action = self.document.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        self.undo_action.setIcon(icon("undo"))
        self.redo_action = self.document.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.redo_action.setIcon(icon("redo"))
        self.addActions([self.undo_action, self.redo_action])
        self.toolbar_widgets = ToolbarWidgets()
        self.recent_menu = build_menus(self, self.acts, self.undo_action, self.redo_action, self._docks)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.toolbar = build_toolbar(self, self.acts, self.undo_action, self.redo_action, self.toolbar_widgets)
        self.preset_box = PresetBox(self.toolbar_widgets.presets, self.window_level, self.settings.window_preset,
                                    self.settings.set_window_preset, self)
        self.status = ViewerStatusBar(self)
        self.setStatusBar(self.status)
        self.exports = ExportActions(self, self.document, self.status.message)

        self.studies = StudyService(self)
        self.segmentation = SegmentationService(loaded_model, self)
        self.masks = MaskController(self.canvas, self.document, self.segmentation, self.status.message, self)
        self.precompute = PrecomputeQueue(self.segmentation, self.store, self)  # masks ready before they are opened
        self.quality = MaskQualityLink(self)
        self.tools, self.prompts = self.masks.tools, self.masks.prompts
        self.pacs = PacsLink(self)  # Open from PACS, PACS settings, Send to PACS, the listener
        self.model_watch = ActiveModelWatch(self)  # `adaqat models activate` / `rollback` run meanwhile
        self.model_watch.changed.connect(self._on_active_model_changed)
        self._connect()
        self._restore_window()
        self.canvas.overlay.set_opacity(self.settings.overlay_opacity() / 100.0)
        self._populate_from_store()
        self._update_enabled()
        model = (model_name or self.settings.model(), self.settings.device(), self.settings.threads())
        self._model_start = AfterFirstPaint(self, lambda: None if self._closed else self.segmentation.load_model(*model))

    # -- construction ---------------------------------------------------------------------------
    def _open_store(self, path: Path) -> AnnotationStore:
        """The configured store; if it can't be opened, a temporary one so viewing still works."""
        try:
            return AnnotationStore(path)
        except StoreError as error:
            self._store_problem = str(error)
            fallback = Path(tempfile.mkdtemp(prefix="adaqat-store-"))
            log.warning("annotation store unavailable; using a temporary store")
            return AnnotationStore(fallback)

    def _dock(self, title: str, name: str, widget: QWidget, area, scroll: bool = False) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        if scroll:
            area_widget = QScrollArea()
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QScrollArea.Shape.NoFrame)
            area_widget.setWidget(widget)
            widget = area_widget
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        self.worklist_dock = self._dock("Worklist", "worklistDock", self.worklist, left)
        mask_box = QWidget()
        layout = QVBoxLayout(mask_box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.overlay_panel)
        layout.addWidget(self.measurements)
        for compact in (mask_box, self.review):  # these keep their natural height; the info panel takes the rest
            compact.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.review_dock = self._dock("Review", "reviewDock", self.review, right)
        self.mask_dock = self._dock("Mask", "maskDock", mask_box, right)
        self.info_dock = self._dock("Image information", "infoDock", self.info, right, scroll=True)
        self.problems_dock = self._dock("Problems", "problemsDock", self.problems, bottom)
        self.problems_dock.hide()
        self._docks = [self.worklist_dock, self.review_dock, self.mask_dock, self.info_dock, self.problems_dock]
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self.resizeDocks([self.worklist_dock], [290], Qt.Orientation.Horizontal)
        self.resizeDocks([self.review_dock], [330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.review_dock, self.mask_dock],
                         [self.review.sizeHint().height() + 30, mask_box.sizeHint().height() + 30], Qt.Orientation.Vertical)

    def _connect(self) -> None:
        a = self.acts
        a.open_files.triggered.connect(lambda: self.open_dialog(folder=False))
        a.open_folder.triggered.connect(lambda: self.open_dialog(folder=True))
        a.save.triggered.connect(self.save_now)
        a.quit.triggered.connect(self.close)
        a.settings.triggered.connect(self.open_settings)
        a.fit.triggered.connect(self.canvas.fit)
        a.actual_size.triggered.connect(self.canvas.actual_size)
        a.zoom_in.triggered.connect(lambda: self.canvas.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: self.canvas.zoom_by(0.8))
        a.invert.toggled.connect(self.window_level.set_invert)
        a.reset_window.triggered.connect(self.preset_box.reset)
        a.toggle_mask.toggled.connect(self._set_mask_visible)
        a.contour_mode.toggled.connect(lambda on: self.overlay_panel.contour.setChecked(on) if on else self.overlay_panel.fill.setChecked(True))
        a.tool_group.triggered.connect(lambda action: self.set_tool(action.data()))
        a.brush_bigger.triggered.connect(lambda: self.toolbar_widgets.brush_size.setValue(int(self.toolbar_widgets.brush_size.value() * 1.25) + 1))
        a.brush_smaller.triggered.connect(lambda: self.toolbar_widgets.brush_size.setValue(max(1, int(self.toolbar_widgets.brush_size.value() / 1.25))))
        a.clear_prompts.triggered.connect(self.masks.clear_prompts)
        a.rerun_auto.triggered.connect(self.masks.rerun_automatic)
        self.masks.automatic_rerun_applied.connect(lambda key: self.set_review("unreviewed"))
        a.accept.triggered.connect(lambda: self.review_and_advance("accepted"))
        a.corrected.triggered.connect(lambda: self.review_and_advance("corrected"))
        a.reject.triggered.connect(lambda: self.review_and_advance("rejected"))
        a.next_unreviewed.triggered.connect(lambda: self.go_unreviewed(1))
        a.previous_unreviewed.triggered.connect(lambda: self.go_unreviewed(-1))
        a.export_png.triggered.connect(lambda: self.exports.export_png())
        a.export_seg.triggered.connect(lambda: self.exports.export_seg())
        a.export_csv.triggered.connect(lambda: self.exports.export_csv())
        a.open_from_pacs.triggered.connect(self.pacs.open_dialog)
        a.send_to_pacs.triggered.connect(self.pacs.send_current)
        a.pacs_settings.triggered.connect(self.pacs.open_settings)
        a.fine_tune.triggered.connect(lambda: self.open_training())
        a.models.triggered.connect(lambda: self.open_models())
        a.shortcuts_help.triggered.connect(lambda: help_dialogs.show_shortcuts(self))
        a.about.triggered.connect(lambda: help_dialogs.show_about(self, self.store.root, self.segmentation.model_info))

        self.toolbar_widgets.brush_size.valueChanged.connect(self.masks.set_brush_size)
        self.canvas.window_drag_started.connect(self.window_level.begin_drag)
        self.canvas.window_dragged.connect(self.window_level.drag)
        self.canvas.window_drag_finished.connect(self.window_level.end_drag)
        self.canvas.cursor_moved.connect(self._on_cursor)
        self.canvas.zoom_changed.connect(self.status.set_zoom)
        self.window_level.rendered.connect(lambda image: self.canvas.set_pixmap(QPixmap.fromImage(image)))
        self.window_level.changed.connect(self.status.window_text.setText)

        self.worklist.image_activated.connect(self.open_key)
        self.problems.problems_added.connect(self._show_problems)
        self.review.review_requested.connect(self.review_and_advance)
        self.review.navigate_requested.connect(self.go_unreviewed)
        self.overlay_panel.opacity_changed.connect(self._set_opacity)
        self.overlay_panel.mode_changed.connect(self._set_overlay_mode)
        self.overlay_panel.visibility_changed.connect(a.toggle_mask.setChecked)

        self.document.mask_changed.connect(self._on_mask_changed)
        self.document.edited.connect(self._on_edited)
        self.document.save_failed.connect(lambda message: self.status.message(f"Not saved: {message}"))
        self.document.conflict.connect(self._on_conflict)
        self.ask_conflict = ask_conflict  # (parent, message, can_keep_both) -> choice; tests answer it
        self.document.undo_stack.cleanChanged.connect(lambda _c: self._update_enabled())
        self.document.undo_stack.indexChanged.connect(lambda _i: self._update_enabled())

        self.studies.file_indexed.connect(self._on_file_indexed)
        self.studies.problem.connect(self.problems.add_problem)
        self.studies.import_finished.connect(self._on_import_finished)
        self.studies.opened.connect(self._on_opened)
        self.studies.open_failed.connect(self._on_open_failed)

        self.segmentation.error.connect(self._on_segmentation_error)
        self.segmentation.model_ready.connect(self._on_model_ready)
        self.segmentation.model_failed.connect(self._on_model_failed)
        self.segmentation.busy_changed.connect(self._on_busy)
        self.segmentation.resegment_progress.connect(
            lambda done, total: self.status.message(f"Re-segmenting unreviewed images: {done} of {total}"))
        self.segmentation.resegment_done.connect(self._on_resegment_done)
        if self._store_problem:
            QTimer.singleShot(0, lambda: self.problems.add_problem("annotation store", self._store_problem))

    def _show_problems(self, _count: int = 0) -> None:
        """Raise the Problems dock without taking focus or much room from the image."""
        if not self.problems_dock.isVisible():
            self.problems_dock.show()
            self.resizeDocks([self.problems_dock], [150], Qt.Orientation.Vertical)

    def _restore_window(self) -> None:
        geometry, state = self.settings.geometry(), self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 950)
        if state is not None:
            self.restoreState(state)
            self.problems_dock.setVisible(False)

    def _populate_from_store(self) -> None:
        """The worklist is the store's: images from earlier sessions are listed with their status."""
        try:
            for record in self.store.list_images():
                self.worklist.add_record(record)
        except StoreError as error:
            self.problems.add_problem("annotation store", str(error))
        self.quality.refresh_all()
        self.precompute.enqueue(self.worklist.keys())  # masks of another model (or none yet) are redone in the background

    # -- opening --------------------------------------------------------------------------------
    def open_dialog(self, folder: bool) -> None:
        if folder:
            chosen = QFileDialog.getExistingDirectory(self, "Open folder")
            paths = [chosen] if chosen else []
        else:
            paths, _ = QFileDialog.getOpenFileNames(
                self, "Open file(s)", "", "Studies (*.dcm *.dicom *.png *.jpg *.jpeg);;All files (*)")
        if paths:
            self.open_paths(paths, activate_first=True)

    def open_paths(self, paths: list[str | Path], activate_first: bool = True) -> int:
        """Import files and folders into the worklist (in the background); optionally show the first."""
        paths = [str(p) for p in paths]
        for path in paths:
            self.settings.add_recent(path)
        batch = self.studies.import_paths(paths)
        if activate_first:
            self._activate_batch = batch
        self.status.message(f"Importing {len(paths)} item{'s' if len(paths) != 1 else ''}…")
        return batch

    def _on_file_indexed(self, batch: int, study) -> None:
        try:
            record = self.store.register_image(study)
        except StoreError as error:
            self.problems.add_problem(str(study.path), str(error))
            return
        self.worklist.add_record(record)
        for warning in study.warnings:  # two files, one row, or one UID on two pictures: said, never silent
            if "same image as" in warning or "same SOPInstanceUID as" in warning:
                self.problems.add_problem(str(study.path), warning)
                self.status.message(warning)
        if batch == self._activate_batch:
            self._activate_batch = None
            self.worklist.select(record.key)
            if self.document.key != record.key and self._opening_key != record.key:
                self.open_key(record.key)
        self.precompute.enqueue([record.key])

    def _on_import_finished(self, batch: int) -> None:
        if batch == self._activate_batch:
            self._activate_batch = None
            self.open_failed_for_screenshot.emit("no file in the list could be opened")
        self.status.message(f"{self.worklist.count()} image(s) in the worklist")

    def open_key(self, key: str) -> None:
        """Show the image ``key`` (a store key); loading happens in the I/O thread."""
        if key == self.document.key or key == self._opening_key:
            return
        record = self.store.get_image(key)
        if record is None:
            return
        self.segmentation.cancel_pending()
        self.precompute.opened(key)  # the reader's image jumps the background queue
        self.masks.clear_prompts()
        self._opening_key = key
        self.status.message(f"Opening {record.display_name}…")
        self.studies.open(str(record.path))

    def _on_opened(self, opened) -> None:
        key = self._opening_key
        if key is None or self._closed:  # a study that finished decoding after the window closed
            return
        self._opening_key = None
        key, record = self._record_made_on(key, opened.study)
        self.document.load(key, opened.study, opened.gray, opened.presets)
        self.canvas.overlay.set_mask(None)
        self.canvas.set_image(gray_to_qimage(opened.display), fit=True)
        self.window_level.set_study(opened.study, opened.presets)
        self.preset_box.fill()
        if self.acts.invert.isChecked():
            self.acts.invert.setChecked(False)
        layout = side_layout(opened.study.patient_orientation)
        self.canvas.set_side_markers((layout.image_left, layout.image_right, layout.from_file))
        self.info.show_study(opened.study)
        self.measurements.clear()
        self.overlay_panel.set_provenance(None, "")
        if record is not None:
            self.review.show_status(record.status, record.note, record.reader)
            self.review.show_quality(self.quality.current(key))
            self.worklist.select(key, emit=False)
        self.review.set_enabled(True)
        self.setWindowTitle(f"{opened.study.display_name} — AdaQAT Viewer")
        self.image_shown.emit(key)
        try:
            has_mask = record is not None and self.document.load_stored_mask()
            if has_mask and self.precompute.is_stale(key):
                has_mask = False  # an unreviewed automatic mask of another model: redo it with the active one
        except StoreError as error:
            self.status.message(str(error))
            has_mask = False
        if has_mask:
            self.status.message("Showing the saved mask")
        else:
            self._model_start.fire_now()  # the model request must be queued before this image's run
            self.segmentation.segment(key, opened.gray)
        self._update_enabled()

    def _record_made_on(self, key: str, study) -> tuple[str, object | None]:
        """The store record of the image actually decoded, never another image's.

        A file replaced on disk since it was listed is a different image: it gets its own record (no
        saved mask, status "new") and the old record's mask is not shown on it. Returns ``(key, record)``;
        ``record`` is None when the store cannot vouch for the image, so no saved mask is shown.
        """
        record = self.store.get_image(key)
        if record is not None and not record.made_on(study):
            try:
                record = self.store.register_image(study)
            except StoreError as error:
                self.problems.add_problem(str(study.path), str(error))
                return key, None
            if record.key != key:  # the same key means one image whose record was re-keyed (now "inverted")
                self.worklist.add_record(record)
                self.worklist.select(record.key, emit=False)
                self.problems.add_problem(str(study.path), (
                    "the file changed since it was listed: it holds another image, so the saved mask of the "
                    "earlier image is not shown on it; it is listed as a new image"))
                key = record.key
        named = any("same SOPInstanceUID as" in warning for warning in study.warnings)  # the store's, naming files
        if record is not None and record.warning and record.warning not in study.warnings and not named:
            study.warnings.append(record.warning)  # shown in the info panel with the loader's warnings
        return key, record

    def _on_open_failed(self, path: str, reason: str) -> None:
        self._opening_key = None
        self.problems.add_problem(path, reason)
        self.status.message(reason)
        self.open_failed_for_screenshot.emit(reason)

    # -- masks ----------------------------------------------------------------------------------
    def _on_segmentation_error(self, key: str, message: str) -> None:
        if key == self.document.key:
            self.status.message(f"Segmentation failed: {message}")
            self.overlay_panel.set_state(f"Segmentation failed: {message}")

    def _on_mask_changed(self) -> None:
        doc = self.document
        self.canvas.overlay.set_mask(doc.mask)
        origin = doc.origin
        model = origin.model
        self.overlay_panel.set_provenance(model, SOURCE_TEXT.get(origin.source, origin.source))
        if doc.mask is not None and doc.study is not None:
            self.measurements.show_measurements(
                measure(doc.mask, doc.study.pixel_spacing_mm, doc.study.patient_orientation))
        self._update_enabled()
        if doc.key is not None and doc.mask is not None:
            self.mask_shown.emit(doc.key)

    def save_now(self) -> None:
        if not self.document.save_now():
            return
        key, human = self.document.key, self.document.origin.source in ("edit", "prompt")
        record = self.store.get_image(key) if key is not None and human else None
        if record is not None and status_after_edit(record.status):
            self.status.message(f"Mask saved, but it is still marked {record.status}: mark it corrected")
        else:
            self.status.message("All changes are saved")

    def _on_conflict(self, message: str, can_keep_both: bool = True) -> None:
        """Another reader saved or reviewed this image since it was opened: never overwrite silently."""
        key = self.document.key
        choice = self.ask_conflict(self, message, can_keep_both)
        if choice == RELOAD and key is not None:
            self.document.reload_from_store()
            record = self.store.get_image(key)
            if record is not None:
                self.worklist.set_status(key, record.status)
                self.review.show_status(record.status, record.note, record.reader)
            self.status.message("Reloaded: showing the other reader's version")
        elif choice == KEEP_BOTH and key is not None and self.document.keep_both():
            self._on_edited(key)
            self.status.message("Both kept in the history: yours is now the current mask; review it")
        else:
            self.status.message(f"Not saved: {message}")

    # -- review and navigation --------------------------------------------------------------------
    def set_review(self, status: str, note: str | None = None) -> bool:
        key = self.document.key
        if key is None:
            return False
        note = self.review.note.text().strip() if note is None else note
        if status in ("accepted", "corrected") and not self._confirm_not_chest(status):
            self.status.message("Not marked: the image is not a chest X-ray")
            return False
        try:
            self.store.set_review(key, status, note, self.document.reader, base_version=self.document.base_version)
        except StoreConflict as error:
            self._on_conflict(str(error), can_keep_both=False)
            return False
        except StoreError as error:
            self.status.message(f"Review not saved: {error}")
            return False
        self.document.base_version = self.store.own_version(key)
        self.worklist.set_status(key, status)
        self.review.show_status(status, note, self.document.reader)
        self.status.message(f"Marked {status}")
        self.pacs.on_review(status)  # sends the SEG and lung area if the PACS settings say so
        return True

    def _confirm_not_chest(self, status: str) -> bool:
        """A lung mask on a tibia must not be approved with one keystroke: ask (No by default)."""
        study = self.document.study
        if study is None or not not_chest(study):
            return True
        answer = QMessageBox.question(
            self, "Not a chest X-ray",
            f"{study.display_name} is not a chest X-ray (body part '{printable(study.body_part)}'); the model was made "
            f"for chest X-rays and its 'lungs' here mean nothing.\n\nMark it {status} anyway? Its mask will not be "
            "used to fine-tune the model.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def review_and_advance(self, status: str, note: str | None = None) -> None:
        """The reader's verdict (Accept/Corrected/Reject), then the next unreviewed image (a setting, on by default)."""
        if not self.set_review(status, note) or not self.settings.advance_after_review():
            return
        key = self.worklist.neighbour(self.document.key, 1, only_unreviewed=True)
        if key is None:
            self.status.message(f"Marked {status}; no other unreviewed image in the worklist")
        else:
            self.worklist.select(key)

    def _on_edited(self, key: str) -> None:
        """A person changed the mask: it is the reader's now, "corrected" (core.review.status says when)."""
        record = self.store.get_image(key)
        new_status = status_after_edit(record.status) if record is not None else None
        if new_status and key == self.document.key:
            self.set_review(new_status)
            when = "Edited" if record.status == "unreviewed" else "Edited after review"
            self.status.message(f"{when}: marked {new_status}")

    def go_unreviewed(self, step: int) -> None:
        key = self.worklist.neighbour(self.document.key, step, only_unreviewed=True)
        if key is None:
            self.status.message("No other unreviewed image in the worklist")
            return
        self.worklist.select(key)

    # -- view -----------------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        if name not in self.tools:
            return
        self.acts.tools[name].setChecked(True)
        self.canvas.set_tool(self.tools[name], hand=name == "hand")
        self.canvas.setFocus()

    def _set_mask_visible(self, visible: bool) -> None:
        self.canvas.overlay.set_visible(visible)
        if self.overlay_panel.show_mask.isChecked() != visible:
            self.overlay_panel.show_mask.setChecked(visible)

    def _set_opacity(self, opacity: float) -> None:
        self.canvas.overlay.set_opacity(opacity)
        self.settings.set_overlay_opacity(round(opacity * 100))

    def _set_overlay_mode(self, mode: str) -> None:
        self.canvas.overlay.set_mode(mode)
        self.acts.contour_mode.setChecked(mode == "contour")

    def _on_cursor(self, x: int, y: int) -> None:
        study = self.document.study
        self.status.show_pixel(x, y, study.pixels if study is not None else None)

    def _on_model_ready(self, info) -> None:
        precision = "INT8" if info.precision == "int8" else info.precision.upper()
        self.status.model.setText(f"Model: {info.name} {info.version} · {precision}")
        if self.segmentation.loaded_model is not None and self.segmentation.loaded_model.info is info:
            self.precompute.set_model(self.segmentation.loaded_model, info)  # a new model: its masks, in the background

    def _on_model_failed(self, message: str) -> None:
        self.status.model.setText("Model: unavailable")
        self.problems.add_problem("model", message)
        self.overlay_panel.set_state(f"Model unavailable: {message}")

    def _on_busy(self, busy: bool) -> None:
        self.status.set_busy(busy, "Segmenting…" if busy else "")
        if not busy and self.segmentation.model_info is not None:
            self._on_model_ready(self.segmentation.model_info)
        self.overlay_panel.set_state("Segmenting…" if busy else "")

    def _update_enabled(self) -> None:
        has_image = self.document.is_open
        self.acts.export_png.setEnabled(self.exports.can_export_mask())
        self.acts.export_seg.setEnabled(self.exports.can_export_seg())
        self.acts.send_to_pacs.setEnabled(self.pacs.can_send())
        for action in (self.acts.accept, self.acts.corrected, self.acts.reject, self.acts.rerun_auto,
                       self.acts.fit, self.acts.actual_size, self.acts.invert):
            action.setEnabled(has_image)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files()
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self.settings.clear_recent)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    # -- dialogs --------------------------------------------------------------------------------
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        before = (str(self.settings.store_path()), self.settings.model(), self.settings.device(), self.settings.threads())
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        dialog.apply()
        self.document.reader = self.settings.reader_name()
        after = (str(self.settings.store_path()), self.settings.model(), self.settings.device(), self.settings.threads())
        if after[0] != before[0]:
            self._switch_store(Path(after[0]))
        if after[1:] != before[1:]:
            self.segmentation.load_model(*after[1:])

    def open_training(self) -> training_dialog.TrainingDialog | QMessageBox:
        """Tools > Fine-tune model…: one dialog per window, re-shown while a run goes on.

        Without torch (the reader bundle) a notice says fine-tuning needs the annotator bundle and
        offers to import a model package instead."""
        from core import compute

        if not compute.torch_available():
            from .dialogs.reader_notice import fine_tune_notice

            return fine_tune_notice(self, lambda: self.open_models().import_file())
        if self.training is None:
            from .dialogs import training_dialog

            self.training = training_dialog.TrainingDialog(lambda: self.store, self.settings, self)
            self.training.model_chosen.connect(self.activate_model)
        try:
            self.training.show_teaching_images(images_that_teach_most(self.store))
        except StoreError:
            pass  # the dialog's own count line reports an unreadable store
        self.training.show()
        self.training.raise_()
        self.training.activateWindow()
        return self.training

    def open_models(self) -> models_dialog.ModelsDialog:
        """Tools > Models…: the model manager (one per window)."""
        if self.models_dialog is None:
            from .dialogs import models_dialog

            self.models_dialog = models_dialog.ModelsDialog(self)
            self.models_dialog.model_activated.connect(self.activate_model)
        self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def activate_model(self, name_or_path: str) -> None:
        """A model was made the active one: use it here, and offer to redo the unreviewed images."""
        self.model_watch.acknowledge()
        self.settings.set_model(name_or_path)
        self.use_model(name_or_path)
        self.offer_resegment()

    def _on_active_model_changed(self, name_or_path: str) -> None:
        """Another program (``adaqat models activate`` / ``rollback``) changed the active model: follow it."""
        self.status.message(f"The active model was changed outside the viewer; now using {Path(name_or_path).name}")
        self.settings.set_model(name_or_path)
        self.use_model(name_or_path)

    def offer_resegment(self) -> bool:
        count = len(unreviewed_keys(self.store))
        if not count:
            return False
        answer = QMessageBox.question(
            self, "Re-segment with the new model",
            f"Re-segment the {count} unreviewed image(s) with the new model?\n"
            "Reviewed and edited masks are never changed.")
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.segmentation.resegment_unreviewed(self.store)
        return True

    def _on_resegment_done(self, report) -> None:
        if self._closed:  # finished after the window closed: the store is gone
            return
        for line in report.failed:
            self.problems.add_problem("re-segmentation", line)
        self.quality.refresh_all()
        self.status.message(report.summary())
        doc = self.document
        record = self.store.get_image(doc.key) if doc.key is not None else None
        if record is not None and record.status == "unreviewed":
            try:
                doc.load_stored_mask()  # the open image's new mask
            except StoreError as error:
                self.status.message(str(error))
        self.resegmented.emit(report)

    def use_model(self, name_or_path: str) -> None:
        """Switch to another model now (the setting is the caller's): a fine-tuned one, for instance."""
        self.status.message(f"Loading model {name_or_path}…")
        self.segmentation.load_model(name_or_path, self.settings.device(), self.settings.threads())

    def _switch_store(self, path: Path) -> None:
        self.segmentation.cancel_pending()
        self._opening_key = None  # a study still opening belongs to the old store
        self.document.close()
        self.canvas.clear()
        self.store.close()
        self._store_problem = ""
        self.store = self._open_store(path)
        if self._store_problem:
            self.problems.add_problem("annotation store", self._store_problem)
        self.document.store = self.store
        self.precompute.set_store(self.store)
        self.worklist.clear()
        self._populate_from_store()
        self._update_enabled()

    # -- drag and drop, closing -----------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths, activate_first=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the worker threads and close the store (idempotent; tests call it via close())."""
        if self._closed:
            return
        self._closed = True
        self._opening_key = None
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        if self.training is not None:
            self.training.shutdown()
        self.studies.shutdown()
        self.segmentation.shutdown()
        self.pacs.shutdown()  # the listener's segmenter writes to the store: stop it before the store closes
        self.model_watch.stop()
        self.precompute.shutdown()  # waits for the image in progress, which may be saving to the store
        if self.document.key is not None:
            log.info("closing with image %s open", image_ref(self.document.key))
        self.store.close()
