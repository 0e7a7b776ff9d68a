"""Layer 7: orchestration of the model doctor (inspect, patch, verify, compile) and plugin-check."""
