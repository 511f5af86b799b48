"""Modal windows: settings, models, fine-tune, help."""
