"""``adaqat train`` exit statuses: one definition for the command line and the viewer's dialog."""

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # unusable data or options, disk full (one ``error:`` line says which)
EXIT_DIVERGED = 3
EXIT_OUT_OF_MEMORY = 4
EXIT_CANCELLED = 130
