"""The SQL models: the registry read from sql/, one plan per model and window, running and compiling it."""
