"""Layer 3, the kernel flow: spec -> render -> bindings -> builder (check/clc) -> emulator."""
