"""Latency on the device: the device, its fingerprint and the host lock (device), one timed measurement
(latency), drift-corrected through the storage's calibration (timing), through the storage's latency cache
as every part of nasx takes it (cached), and the latency model fitted from measurements with the prefilter
built on it; the block latency table (blocks: each layer timed alone, once per device) and the block model
that predicts a network from its layers (block_model); and nasx's counts beside an external FLOP counter
(fvcore, ptflops, thop) run on the built module (compare).

May import: nasx.errors, nasx.util, core, nasx.store."""
