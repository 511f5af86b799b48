"""Work the window hands off: threads that decode and segment, the training child process, settings."""
