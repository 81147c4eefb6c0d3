"""Only the optional compiled hot path (binreplay/_hotpath.c); everything else is in pyproject.toml.

`optional=True`: without a C compiler or Python's headers the install still succeeds and binreplay
runs its pure-Python path (the same results, slower)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("binreplay._hotpath", ["binreplay/_hotpath.c"], optional=True,
                             extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"])])
