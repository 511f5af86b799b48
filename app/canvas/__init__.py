"""Drawing the study: the zoomable canvas, the mask overlay, window/level, the drawing tools."""
