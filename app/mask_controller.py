"""Routes every source of a new mask into the open document: model results, prompts and tool edits.

Automatic results go through the store's "only if nobody worked on it" rule; prompt results and
brush/polygon edits become undoable steps. The prompts drawn so far (one box, any number of points)
are sent together on every click, so each answer reflects all of them.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from .canvas import ImageCanvas
from .document import ImageDocument
from .segmentation_service import SegmentationService
from .tools import BoxPromptTool, BrushTool, PointPromptTool, PolygonTool, PromptMarks, Tool

PROMPT_TEXT = {"box": "Box prompt", "points": "Point prompt", "box+points": "Box + point prompt", "auto": "Automatic re-run"}


class MaskController(QObject):
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

    def set_brush_size(self, size: int) -> None:
        for name in ("brush", "eraser"):
            self.tools[name].set_size(size)

    def clear_prompts(self) -> None:
        """Esc: cancel any gesture in progress and forget the prompts of this image."""
        for tool in self.tools.values():
            if tool is not None:
                tool.cancel()
        self.prompts.clear()

    def rerun_automatic(self) -> None:
        doc = self.document
        if doc.key is not None and doc.gray is not None:
            self.clear_prompts()
            self.segmentation.prompt(doc.key, doc.gray)  # no prompt = automatic, applied as an undoable step

    def _on_result(self, key: str, result, kind: str) -> None:
        if key != self.document.key:
            return
        if kind == "auto":
            if not self.document.accept_model_mask(result.mask, result.model):
                self.notify("Kept the reviewed/edited mask; the automatic result was not saved")
                return
        else:
            self.document.edit(result.mask, PROMPT_TEXT.get(result.prompt, "Prompt"), source="prompt", model=result.model)
        self.notify(f"Mask by {result.model.label} in {result.seconds:.1f} s")

    def _on_edit_finished(self, mask, text: str) -> None:
        if self.document.edit(mask, text, source="edit"):
            self.notify(f"{text} saved")

    def _run_prompt(self) -> None:
        doc = self.document
        if doc.gray is None or doc.key is None:
            return
        box = self.prompts.box
        if box is None:  # points alone: keep the whole-image box so the model still looks for both lungs
            box = (0.0, 0.0, float(doc.study.width - 1), float(doc.study.height - 1))
        points = [list(p) for p in self.prompts.points]
        labels = list(self.prompts.labels)
        self.segmentation.prompt(doc.key, doc.gray, box=box, points=points or None, labels=labels or None)

    def _on_box_prompt(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.prompts.set_box((x0, y0, x1, y1))
        self._run_prompt()

    def _on_point_prompt(self, x: float, y: float, label: int) -> None:
        self.prompts.add_point(x, y, label)
        self._run_prompt()
