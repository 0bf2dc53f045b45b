"""Helpers shared by the lifecycle tests, and scripts the tests run as subprocesses."""
