"""The lowest layer; it imports nothing else of the kit. `errors`: the user-facing error types (KernelkitError,
exit code 2; ToolchainUnavailable, exit code 3). `fsutil`: bounded reads of a user's files, atomic writes of
outputs. `limits`: resource limits, each overridable by a KERNELKIT_MAX_* variable. `xmlsafe`: XML parsing with
DTDs, entities and the network off. `npzfile`: bounded reading of a user's .npz. `paths`: the kit's folders and
the per-user cache. `locking`: a lock file for processes filling one cache entry."""
