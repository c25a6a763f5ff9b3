"""RQ job functions. Each is thin: ids in, everything else resolved through
`sync.runtime.current_runtime()`, the work itself done by plain modules of `sync/`."""
