"""The mask being reviewed: its document, the undoable edits and the controller that applies them."""
