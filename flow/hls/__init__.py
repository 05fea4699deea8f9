"""The HLS backend: HLS C++ from the IR, bit-exact C simulation with g++, Vitis HLS scripts,
and the hls4ml peer.

- :mod:`.plan`: IR -> config structs, parameter arrays, dataflow chain (pure data)
- :mod:`.writer`: renders ``DIR/hls/`` from the plan with the Jinja2 templates in
  ``templates/hls``
- :mod:`.csim`: g++ C simulation against the golden model (``csim.json``)
- :mod:`.hls4ml_bridge`: the same QONNX model through hls4ml (``hls4ml.json``)
- :mod:`.step`, :mod:`.cli`: the ``gatemill hls`` command

Nothing is imported here, so registering the command (:mod:`.cli`) keeps ``gatemill --help``
fast.
"""
