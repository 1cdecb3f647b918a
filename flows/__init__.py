"""Prefect flows, tasks and the callqa command-line interface."""
