"""Facts of the Myriad X itself that the model flow and the compiler both need."""

MAX_SHAVES = 16           # SHAVE cores (and CMX slices) on a Myriad X
DEFAULT_SHAVES = 6        # DepthAI/blobconverter's usual choice; CMX slices follow the SHAVE count
