// TensorCore: Float32 tensors on OpenBLAS with reverse-mode automatic differentiation.
// The only module that imports CBLAS (see BLAS.swift).
