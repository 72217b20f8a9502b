# Build flags for speed (CPU-specific code generation); sourced by the other scripts.
# The library itself carries no unsafeFlags, so it stays importable as a versioned dependency.
SWIFT_FAST_FLAGS=(-c release -Xswiftc -target-cpu -Xswiftc native -Xcc -march=native)
