"""Core: the config, the exceptions and the types of what a run produced. Imports nothing
else of custseg."""
