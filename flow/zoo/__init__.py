"""The model zoo: data sets, Brevitas models, quantization-aware training, ``gatemill train``.

Modules: ``data`` (digits and user ``.npz``), ``quantizers`` and ``models`` (the ``MODELS``
registry), ``lutnet`` and ``poetbin`` (the LUT families: sparse LogicNets-style layers, and a
binary extractor with a head of boosted LUT-sized trees), ``train`` (training and the files it
writes), ``cli`` (the command).
"""
