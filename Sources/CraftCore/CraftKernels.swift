// Which of Craft's own kernels run on this CPU, in one line for diagnostics (`craft --version`,
// every `craft-bench` header).
import TensorCore

/// The instruction sets of Craft's own kernels on this CPU (the BLAS is ``BLAS/Kernels``).
public enum CraftKernels {
    /// For example "elementwise avx512f, attention avx512f, matrix-vector avx2-fma-f16c,
    /// nearest-code search int8 avx512-vnni". The search names what a codebook of at least 256
    /// codes runs with the automatic pass (``SearchPass/automatic``). A `CRAFT_MAX_ISA` setting is
    /// noted at the end ("(capped by CRAFT_MAX_ISA=avx2)", ``InstructionSetCap``).
    public static var summary: String {
        "elementwise \(Tensor.elementwiseKernelName), attention \(Tensor.fusedAttentionKernelName), "
            + "matrix-vector \(HalfMatrix.kernelName), nearest-code search "
            + (SearchPass.int8IsFast ? "int8 \(SearchPass.int8KernelName)" : "float32 (sgemm)")
            + (InstructionSetCap.note.map { " (\($0))" } ?? "")
    }
}
