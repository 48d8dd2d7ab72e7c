"""The command-line face: click commands, each in its own module, loaded on demand."""
