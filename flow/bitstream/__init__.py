"""Bitstreams for open boards (ECP5, through amaranth-boards and the yowasp tools), the UART
protocol of the bridged accelerator, and the host side that runs vectors on a board."""
