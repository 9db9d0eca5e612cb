"""The standard library alone: for stackctl and the container checks, before any venv."""
