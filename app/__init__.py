"""The AdaQAT desktop viewer (PySide6). Observes and drives ``core``; holds no engine logic."""
