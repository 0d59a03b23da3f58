"""torch.profiler sessions that store into torchscope, trace importers and exporters."""
