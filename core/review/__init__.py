"""Review rules that do not depend on the GUI: status after an edit, local prompt merges, lung sides."""
