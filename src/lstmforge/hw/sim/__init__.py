"""Cycle-level simulator of the ESE accelerator (Han et al., FPGA 2017, chapter 5)."""
