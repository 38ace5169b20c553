"""MusiCNN and VGG music taggers (Pons & Serra 2019) in PyTorch, from the weights in the ``musicnn`` wheel.

``checkpoint`` reads the wheel's TensorFlow checkpoints without TensorFlow,
``frontend`` computes the original log-mel patches, ``model`` holds the ported
networks and ``tagger`` the ``mgdata tag`` command. The port is checked against
the original TensorFlow extractor by ``tests/test_musicnn_reference.py``.
"""
