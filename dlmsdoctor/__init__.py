"""dlmsdoctor: diagnostics for DLMS/COSEM electricity meters."""

__version__ = "0.1.0"
