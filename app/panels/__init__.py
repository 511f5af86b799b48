"""The dock panels beside the canvas: worklist, review, info, measurements, overlay, problems, status."""
