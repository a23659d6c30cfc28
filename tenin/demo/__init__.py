"""`tenin demo`: a simulated week of the whole product, driven through its real interfaces."""

from tenin.demo.cli import main

__all__ = ["main"]
