"""The network layer: one folder of the core shared by both backends (see docs/network.md)."""

from .registrar import EsrdRegistrar, Registrar, RegistrarLog, Route

__all__ = ["EsrdRegistrar", "Registrar", "RegistrarLog", "Route"]
