"""Framework integrations: record a Lightning, Hugging Face ``Trainer`` or Keras training run into the store.

Each module imports its framework only when one of its classes is first used, so ``import torchscope`` never pulls a
framework in; each framework is an optional extra (``pip install torchscope[lightning]``, ``[transformers]``,
``[keras]``). See docs/integrations.md.
"""
