"""Benchmarks: the connector's own cost, measured side by side with the floor and the official SDK.

Run ``python -m bench`` from the repository root (``--help`` for the options). Every baseline is
measured in the same run as the connector, in alternating rounds, so they share the machine's
noise; a figure is only ever compared with a figure from the same run.
"""
