"""Latency on the device: one timed measurement (latency), drift-corrected through the storage's
calibration and cached (timing), and the latency model fitted from measurements with the prefilter built
on it.

May import: nasx.errors, nasx.util, core, nasx.store."""
