"""chatlog test suite."""
