"""The fake Ameyo server and pytest helpers (being built)."""
