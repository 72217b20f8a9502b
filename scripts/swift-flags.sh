# Build flags of the scripts: the plain optimized build, exactly what a package importing
# SwiftONNX gets (the kernels pick AVX2 / AVX-512 at run time; no CPU flags are needed).
SWIFT_FAST_FLAGS=(-c release)
