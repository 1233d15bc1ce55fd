"""The Claude engine (`engine.py`, the only module that imports the SDK), with its answer schema,
prices and rate governor beside it."""
