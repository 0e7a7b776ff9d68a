"""The blob interpreter: a compiled MYRIAD blob executed on the CPU, stage by stage, in numpy."""
