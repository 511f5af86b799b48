"""Routes every source of a new mask into the open document: model results, prompts and tool edits.

Automatic results go through the store's "only if nobody worked on it" rule; prompt results and
brush/polygon edits become undoable steps. Prompts act locally: a box (one per lung) re-runs the
model on that box, together with the points inside it, and replaces the mask inside the box only;
points outside every box re-run on the whole image and change only the regions they touch
(``core.review.prompt_merge``), so refining one lung never alters the other.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from core.review.prompt_merge import merge_box_result, merge_point_result

from ..canvas.canvas import ImageCanvas
from .document import ImageDocument
from ..services.segmentation_service import SegmentationService
from ..canvas.tools import BoxPromptTool, BrushTool, PointPromptTool, PolygonTool, PromptMarks, Tool

# A prompt whose answer leaves the mask as it was: said plainly, so the reader tries another tool
# instead of believing a fresh mask was made.
NO_CHANGE = "No change: try a box or the brush"
PROMPT_TEXT = {"box": "Box prompt", "points": "Point prompt", "box+points": "Box + point prompt", "auto": "Automatic re-run"}


class MaskController(QObject):
    # A re-run replaced a person's mask with the model's: the window marks it unreviewed, so a raw model
    # mask never goes into training labelled as a correction.
    automatic_rerun_applied = Signal(str)

    def __init__(self, canvas: ImageCanvas, document: ImageDocument, segmentation: SegmentationService,
                 notify: Callable[[str], None], parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.segmentation = segmentation
        self.notify = notify
        self.prompts = PromptMarks(canvas.scene())
        scene, source = canvas.scene(), document.mask_or_empty
        self.tools: dict[str, Tool | None] = {
            "hand": None,
            "brush": BrushTool(scene, source, paint=True, parent=self),
            "eraser": BrushTool(scene, source, paint=False, parent=self),
            "polygon_add": PolygonTool(scene, source, paint=True, parent=self),
            "polygon_erase": PolygonTool(scene, source, paint=False, parent=self),
            "box": BoxPromptTool(scene, source, parent=self),
            "point_positive": PointPromptTool(scene, source, positive=True, parent=self),
            "point_negative": PointPromptTool(scene, source, positive=False, parent=self),
        }
        for tool in self.tools.values():
            if tool is not None:
                tool.edit_finished.connect(self._on_edit_finished)
        self.tools["box"].box_prompted.connect(self._on_box_prompt)
        self.tools["point_positive"].point_prompted.connect(self._on_point_prompt)
        self.tools["point_negative"].point_prompted.connect(self._on_point_prompt)
        segmentation.result.connect(self._on_result)
        self._sent: tuple | None = None  # ("box", box) or ("points", points) of the latest prompt request

    def set_brush_size(self, size: int) -> None:
        for name in ("brush", "eraser"):
            self.tools[name].set_size(size)

    def clear_prompts(self) -> None:
        """Esc: cancel any gesture in progress and forget the prompts of this image."""
        for tool in self.tools.values():
            if tool is not None:
                tool.cancel()
        self.prompts.clear()

    def rerun_automatic(self) -> bool:
        """Ctrl+Shift+A: a new automatic mask; over a person's mask only after ``confirm`` says yes."""
        doc = self.document
        if doc.key is None or doc.gray is None:
            return False
        if doc.origin.source in ("edit", "prompt") and not self.confirm(
                "Replace the reader's mask with a new automatic one?\n\nThe current mask stays in the history; "
                "the image becomes unreviewed until someone reviews the new mask."):
            self.notify("Kept the reader's mask")
            return False
        self.clear_prompts()
        self._sent = None
        self._rerun_key = doc.key
        self.segmentation.prompt(doc.key, doc.gray)  # no prompt = automatic, applied as an undoable step
        return True

    def confirm(self, text: str) -> bool:
        """Ask the reader (a dialog; tests replace this)."""
        from PySide6.QtWidgets import QApplication, QMessageBox

        answer = QMessageBox.question(QApplication.activeWindow(), "Re-run automatic segmentation", text)
        return answer == QMessageBox.StandardButton.Yes

    def _on_result(self, key: str, result, kind: str) -> None:
        if key != self.document.key:
            return
        if kind == "auto":
            if not self.document.accept_model_mask(result.mask, result.model, getattr(result, "quality", None)):
                self.notify("Kept the reviewed/edited mask; the automatic result was not saved")
                return
        else:
            mask = self._local_answer(result.mask)
            rerun, self._rerun_key = getattr(self, "_rerun_key", None) == key, None
            if not self.document.edit(mask, PROMPT_TEXT.get(result.prompt, "Prompt"), source="prompt", model=result.model):
                self.notify(NO_CHANGE)  # e.g. a "+" inside a lung the mask already covers
                return
            if rerun:
                self.automatic_rerun_applied.emit(key)
        self.notify(f"Mask by {result.model.label} in {result.seconds:.1f} s")

    def _local_answer(self, answer):
        """The prompt's answer restricted to where the prompt acts (see the module docstring)."""
        before, sent = self.document.mask_or_empty(), self._sent
        if before is None or sent is None or before.shape != answer.shape:
            return answer
        where, value = sent
        if where == "box":
            return merge_box_result(before, answer, value)
        if where == "points":
            return merge_point_result(before, answer, value)
        return answer  # an automatic re-run replaces the whole mask, as asked

    def _on_edit_finished(self, mask, text: str) -> None:
        if self.document.edit(mask, text, source="edit"):
            self.notify(f"{text} saved")

    def prompt_group(self, x: float, y: float) -> tuple | None:
        """The latest box containing (x, y), or None (the point stands on its own)."""
        for box in reversed(self.prompts.boxes):
            x0, y0, x1, y1 = box
            if x0 <= x <= x1 and y0 <= y <= y1:
                return box
        return None

    def _run_prompt(self, box=None) -> None:
        """Re-run the model for ``box`` (with the points inside it), or for the points outside every box."""
        doc = self.document
        if doc.gray is None or doc.key is None:
            return
        chosen = [(p, label) for p, label in zip(self.prompts.points, self.prompts.labels)
                  if self.prompt_group(*p) == box]
        points = [list(p) for p, _ in chosen]
        labels = [label for _, label in chosen]
        if box is None:  # points alone: keep the whole-image box so the model still looks for both lungs
            self._sent = ("points", [tuple(p) for p in points])
            box = (0.0, 0.0, float(doc.study.width - 1), float(doc.study.height - 1))
        else:
            self._sent = ("box", box)
        self.segmentation.prompt(doc.key, doc.gray, box=box, points=points or None, labels=labels or None)

    def _on_box_prompt(self, x0: float, y0: float, x1: float, y1: float) -> None:
        box = (x0, y0, x1, y1)
        self.prompts.add_box(box)
        self._run_prompt(box)

    def _on_point_prompt(self, x: float, y: float, label: int) -> None:
        self.prompts.add_point(x, y, label)
        self._run_prompt(self.prompt_group(x, y))
