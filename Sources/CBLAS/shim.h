// OpenBLAS's CBLAS interface; imported only by TensorCore (Sources/TensorCore/BLAS.swift).
#include <cblas.h>
