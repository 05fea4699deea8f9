"""The model zoo: data sets, Brevitas models, quantization-aware training, ``gatemill train``.

Modules: ``data`` (digits and user ``.npz``), ``quantizers`` and ``models`` (the ``MODELS``
registry), ``train`` (training and the files it writes), ``cli`` (the command).
"""
