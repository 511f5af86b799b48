"""Every command of the window as a QAction with its shortcut, and the menus and toolbars built from them.

Keeping them in one table makes the shortcut map reviewable in one place; the window only connects
``triggered`` to its handlers. Single-key shortcuts do not fire while a text field has focus (Qt lets
line edits claim printable keys first), so typing a note never switches tools.
"""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMainWindow, QMenu, QSpinBox, QToolBar

from .icons import icon

TOOLS = (
    # name, text, shortcuts, icon
    ("hand", "Pan", ["H"], "hand"),
    ("brush", "Brush", ["B"], "brush"),
    ("eraser", "Eraser", ["E"], "eraser"),
    ("polygon_add", "Polygon add", ["P"], "polygon_add"),
    ("polygon_erase", "Polygon erase", ["Shift+P"], "polygon_erase"),
    ("box", "Box prompt", ["X"], "box"),
    ("point_positive", "Lung point (+)", ["+", "=", "Shift+="], "point_positive"),
    ("point_negative", "Not-lung point (−)", ["-"], "point_negative"),
)


def _action(window: QMainWindow, text: str, shortcuts=(), icon_name: str | None = None, tip: str = "", checkable=False) -> QAction:
    action = QAction(text, window)
    if icon_name:
        action.setIcon(icon(icon_name))
    keys = [QKeySequence(s) for s in shortcuts]
    if keys:
        action.setShortcuts(keys)
    shortcut_text = keys[0].toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
    action.setToolTip(f"{tip or text}" + (f" ({shortcut_text})" if shortcut_text else ""))
    action.setStatusTip(tip or text)
    action.setCheckable(checkable)
    window.addAction(action)  # shortcuts work even when the toolbar or menu is hidden
    return action


class WindowActions:
    def __init__(self, window: QMainWindow) -> None:
        a = _action
        S = QKeySequence.StandardKey
        self.open_files = a(window, "&Open file(s)…", [S.Open], "open", "Open DICOM, PNG or JPEG files")
        self.open_folder = a(window, "Open &folder…", ["Ctrl+Shift+O"], "folder", "Import every study in a folder")
        self.save = a(window, "&Save mask", [S.Save], None, "Masks are saved after every edit; this retries a failed save")
        self.quit = a(window, "&Quit", [S.Quit])
        self.settings = a(window, "&Settings…", ["Ctrl+,"])

        self.fit = a(window, "&Fit to window", ["F"], "fit")
        self.actual_size = a(window, "&Actual pixels (1:1)", ["1"], "actual")
        self.zoom_in = a(window, "Zoom &in", [S.ZoomIn])
        self.zoom_out = a(window, "Zoom &out", [S.ZoomOut])
        self.invert = a(window, "&Invert", ["I"], "invert", "Invert the display (not the model input)", checkable=True)
        self.toggle_mask = a(window, "Show &mask", ["M"], "mask", "Show or hide the mask overlay", checkable=True)
        self.toggle_mask.setChecked(True)
        self.contour_mode = a(window, "&Contour only", ["O"], None, "Outline instead of a filled mask", checkable=True)
        self.reset_window = a(window, "&Reset window/level", ["Ctrl+R"])

        self.tool_group = QActionGroup(window)
        self.tool_group.setExclusive(True)
        self.tools: dict[str, QAction] = {}
        for name, text, keys, icon_name in TOOLS:
            action = a(window, text, keys, icon_name, checkable=True)
            action.setData(name)
            self.tool_group.addAction(action)
            self.tools[name] = action
        self.tools["hand"].setChecked(True)
        self.brush_bigger = a(window, "Bigger brush", ["]"])
        self.brush_smaller = a(window, "Smaller brush", ["["])
        self.clear_prompts = a(window, "Clear prompts / cancel", ["Esc"])
        self.rerun_auto = a(window, "Re-run automatic segmentation", ["Ctrl+Shift+A"])

        self.accept = a(window, "&Accept", ["A"], "accept", "The mask is right as shown")
        self.corrected = a(window, "&Corrected", ["C"], None, "I corrected the mask and it is right now")
        self.reject = a(window, "&Reject", ["R"], "reject", "The mask is unusable")
        self.next_unreviewed = a(window, "&Next unreviewed", ["N", "PgDown"], "next")
        self.previous_unreviewed = a(window, "&Previous unreviewed", ["Shift+N", "PgUp"], "previous")

        self.export_png = a(window, "Mask as &PNG…")
        self.export_seg = a(window, "Mask as &DICOM SEG…")
        self.export_csv = a(window, "Review &CSV (all images)…")
        self.open_from_pacs = a(window, "Open from &PACS…", ["Ctrl+Shift+D"], None, "Search the PACS and retrieve studies")
        self.send_to_pacs = a(window, "Send to PAC&S (SEG + lung area)", [], None, "Send the mask and its lung area to the PACS")
        self.pacs_settings = a(window, "&PACS settings…")
        self.fine_tune = a(window, "&Fine-tune model…")
        self.models = a(window, "&Models…", ["Ctrl+Shift+M"], None, "List, activate, roll back, export and import models")
        self.shortcuts_help = a(window, "&Keyboard shortcuts", [S.HelpContents])
        self.about = a(window, "&About")


def build_menus(window: QMainWindow, acts: WindowActions, undo, redo, docks) -> QMenu:
    """Menus; returns the (initially empty) Open Recent submenu for the window to fill."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addActions([acts.open_files, acts.open_folder])
    file_menu.addAction(acts.open_from_pacs)
    recent = file_menu.addMenu("Open &recent")
    file_menu.addSeparator()
    file_menu.addAction(acts.save)
    file_menu.addSeparator()
    file_menu.addActions([acts.settings, acts.quit])

    edit = bar.addMenu("&Edit")
    edit.addActions([undo, redo])
    edit.addSeparator()
    edit.addActions(list(acts.tools.values()))
    edit.addSeparator()
    edit.addActions([acts.brush_bigger, acts.brush_smaller, acts.clear_prompts, acts.rerun_auto])

    view = bar.addMenu("&View")
    view.addActions([acts.fit, acts.actual_size, acts.zoom_in, acts.zoom_out])
    view.addSeparator()
    view.addActions([acts.invert, acts.reset_window, acts.toggle_mask, acts.contour_mode])
    view.addSeparator()
    panels = view.addMenu("&Panels")
    for dock in docks:
        panels.addAction(dock.toggleViewAction())

    review = bar.addMenu("&Review")
    review.addActions([acts.accept, acts.corrected, acts.reject])
    review.addSeparator()
    review.addActions([acts.next_unreviewed, acts.previous_unreviewed])

    export_menu = bar.addMenu("E&xport")
    export_menu.addActions([acts.export_png, acts.export_seg, acts.export_csv])
    export_menu.addSeparator()
    export_menu.addAction(acts.send_to_pacs)

    tools = bar.addMenu("&Tools")
    tools.addActions([acts.fine_tune, acts.models])
    tools.addAction(acts.pacs_settings)
    tools.addSeparator()
    tools.addAction(acts.settings)

    help_menu = bar.addMenu("&Help")
    help_menu.addActions([acts.shortcuts_help, acts.about])
    return recent


class ToolbarWidgets:
    """The non-action widgets of the toolbar (preset combo, brush size)."""

    def __init__(self) -> None:
        self.presets = QComboBox()
        self.presets.setToolTip("Window/level preset (right-drag on the image to adjust)")
        self.presets.setMinimumContentsLength(14)
        self.presets.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.brush_size = QSpinBox()
        self.brush_size.setRange(1, 400)
        self.brush_size.setValue(25)
        self.brush_size.setSuffix(" px")
        self.brush_size.setToolTip("Brush and eraser diameter in image pixels ([ and ])")


def build_toolbar(window: QMainWindow, acts: WindowActions, undo, redo, widgets: ToolbarWidgets) -> QToolBar:
    bar = QToolBar("Main toolbar", window)
    bar.setObjectName("mainToolbar")
    bar.setMovable(False)
    bar.setIconSize(QSize(22, 22))
    bar.addActions([acts.open_files, acts.open_folder])
    bar.addSeparator()
    bar.addActions([acts.fit, acts.actual_size, acts.invert])
    bar.addWidget(QLabel(" W/L "))
    bar.addWidget(widgets.presets)
    bar.addSeparator()
    bar.addActions(list(acts.tools.values()))
    bar.addWidget(QLabel(" Size "))
    bar.addWidget(widgets.brush_size)
    bar.addSeparator()
    bar.addActions([undo, redo])
    bar.addSeparator()
    bar.addActions([acts.toggle_mask])
    bar.addSeparator()
    bar.addActions([acts.accept, acts.reject, acts.previous_unreviewed, acts.next_unreviewed])
    window.addToolBar(bar)
    return bar
