"""Marks the wheel as platform-specific: it bundles the core library (sdskit/_lib/*.so)."""

from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(distclass=BinaryDistribution)
