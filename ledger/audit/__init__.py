"""Audit: verification of the stored history, replays as of a date, exports."""
