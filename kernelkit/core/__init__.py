"""Layer 0: errors, bounded file reads and atomic writes, resource limits, safe XML, the kit's folders."""
