"""pytest plugin: fixtures for testing against the fake Ameyo server."""
